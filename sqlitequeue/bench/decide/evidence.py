"""What results folders say, reduced to what the decision's criteria need.

:func:`gather_evidence` loads results folders (``kind: bench`` for throughput and latency,
``kind: faults`` for recovery); :func:`sqlite_capacity` and :func:`kafka_capacity` read the
max sustainable rates of the bench runs, :func:`recovery_by_durability` the worst RTO, RPO and
loss per SQLite durability setting from the failure lab. Reads results files only (never a
backend).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from sqlitequeue.bench.results import Results

#: failure-lab experiments that are controls (e.g. Litestream killed before the host, to prove
#: loss is detected): shown in the evidence, left out of the worst case
CONTROL_EXPERIMENTS = ("litestream-down", "control")


@dataclass
class Evidence:
    """What the results folders say, reduced to what the criteria need."""

    bench: list[Results] = field(default_factory=list)
    faults: list[Results] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        """The results folders used, as strings."""
        return [str(r.path) for r in self.bench + self.faults]


def gather_evidence(folders: Sequence[str | os.PathLike[str]]) -> Evidence:
    """Load results folders and sort them by kind (``faults`` or anything else = bench).

    Raises BenchError (from :func:`results.load`) when a folder is not a results folder.
    """
    from sqlitequeue.bench.results import load

    evidence = Evidence()
    for folder in folders:
        res = load(folder)
        if res.meta.get("kind") == "faults" or "faults" in res.tables:
            evidence.faults.append(res)
        if res.meta.get("kind") != "faults":
            evidence.bench.append(res)
    return evidence


def is_sqlite(backend: str) -> bool:
    """True for a SQLite backend (its name starts with ``sqlite``)."""
    return str(backend).startswith("sqlite")


def scalars(evidence: Evidence) -> pd.DataFrame:
    """Run-level scalars of every bench run, long format plus a ``run`` column."""
    import pandas as pd

    frames = []
    for res in evidence.bench:
        df = res.metrics[res.metrics.t.isna()].copy()
        df["run"] = str(res.path)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["backend", "workload", "metric", "value", "run"])
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Capacity:
    """The best SQLite backend's conservative maximum sustainable rate."""

    rate: float
    backend: str
    workload: str
    run: str
    p99_target_ms: float | None
    lower_bound: bool
    others: dict[str, float]


def sqlite_capacity(evidence: Evidence) -> Capacity | None:
    """Return the highest, over SQLite backends, of each one's lowest max sustainable rate.

    A team picks its best implementation; within it the lowest rate over the max-rate
    workloads is used (conservative). ``lower_bound`` is True when every ramp step passed
    (the search hit its ceiling, so the true capacity is higher). None without data.
    """
    df = scalars(evidence)
    rows = df[(df.metric == "max_sustainable_rate") & df.backend.map(is_sqlite)]
    rows = rows[rows.value.notna()]
    if rows.empty:
        return None
    worst = rows.loc[rows.groupby("backend").value.idxmin()]
    best = worst.loc[worst.value.idxmax()]
    target = df[
        (df.metric == "p99_target_ms")
        & (df.backend == best.backend)
        & (df.workload == best.workload)
    ]
    return Capacity(
        rate=float(best.value),
        backend=str(best.backend),
        workload=str(best.workload),
        run=str(best.run),
        p99_target_ms=None if target.empty else float(target.value.iloc[0]),
        lower_bound=_all_steps_passed(evidence, str(best.backend), str(best.workload)),
        others={str(r.backend): float(r.value) for r in worst.itertuples()},
    )


def _all_steps_passed(evidence: Evidence, backend: str, workload: str) -> bool:
    for res in evidence.bench:
        steps = res.tables.get("rate_steps")
        if steps is None or "ok" not in steps:
            continue
        mine = steps[(steps.backend == backend) & (steps.workload == workload)]
        if not mine.empty:
            return bool(mine.ok.astype(str).str.lower().isin(["true", "1", "1.0"]).all())
    return False


def kafka_capacity(evidence: Evidence) -> tuple[float, str, str] | None:
    """Return the best measured Kafka max rate as ``(msg/s, backend, workload)``, or None."""
    df = scalars(evidence)
    rows = df[(df.metric == "max_sustainable_rate") & df.backend.str.startswith("kafka")]
    if rows.empty or rows.value.max() <= 0:
        return None
    best = rows.loc[rows.value.idxmax()]
    return float(best.value), str(best.backend), str(best.workload)


def _faults(evidence: Evidence) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for res in evidence.faults:
        table = res.tables.get("faults")
        if table is not None and not table.empty:
            frames.append(table.assign(run=str(res.path)))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df = df[df.backend.map(is_sqlite)].copy()
    df["control"] = df.experiment.astype(str).map(
        lambda name: any(marker in name for marker in CONTROL_EXPERIMENTS)
    )
    for column in ("rto_s", "rpo_s", "lost", "acknowledged"):
        df[column] = pd.to_numeric(df.get(column), errors="coerce")
    if "durability" not in df:
        df["durability"] = "default"
    df["durability"] = df.durability.fillna("default").astype(str)
    return df


@dataclass(frozen=True)
class Recovery:
    """Worst-case recovery of one SQLite durability setting over its experiments."""

    durability: str
    rto_s: float
    rpo_s: float
    lost: int
    experiments: tuple[str, ...]
    runs: int
    source: str
    controls: tuple[str, ...] = ()


def recovery_by_durability(evidence: Evidence) -> list[Recovery]:
    """Worst RTO, RPO and loss per SQLite durability setting (NaN where not measured).

    For a setting, every (non-control) experiment counts: with its rows at that setting
    when it ran at it, else with all its rows (e.g. a consumer kill measured only at
    ``normal`` also counts for ``full``). RPO is the measured ``rpo_s``; where it is missing
    but no acknowledged message was lost, the RPO is 0. Control experiments
    (:data:`CONTROL_EXPERIMENTS`) are named in ``controls`` but do not count.
    """
    import pandas as pd

    df = _faults(evidence)
    out: list[Recovery] = []
    if df.empty:
        return out
    controls = tuple(sorted(map(str, df[df.control].experiment.unique())))
    df = df[~df.control]
    for durability in sorted(df.durability.unique()):
        parts = []
        for _, rows in df.groupby("experiment"):
            mine = rows[rows.durability == durability]
            parts.append(mine if not mine.empty else rows)
        group = pd.concat(parts)
        rpo = group.rpo_s.where(group.rpo_s.notna() | (group.lost.fillna(1) > 0), 0.0)
        out.append(
            Recovery(
                durability=str(durability),
                rto_s=float(group.rto_s.max()),
                rpo_s=float(rpo.max()),
                lost=int(group.lost.fillna(0).sum()),
                experiments=tuple(sorted(map(str, group.experiment.unique()))),
                runs=len(group),
                source=str(group.run.iloc[0]),
                controls=controls,
            )
        )
    return out
