"""What results folders say, reduced to what the decision's criteria need, for SQLite and Kafka.

:func:`gather_evidence` loads results folders (``kind: bench`` for throughput and latency,
``kind: faults`` for recovery). For either system (:data:`SQLITE` or :data:`KAFKA`):

* :func:`capacity` reads the max sustainable rates of the bench runs;
* :func:`fixed_rate_latency` the worst end-to-end p99 of the fixed-rate runs at a given rate
  (for Kafka, optionally only the runs over one network: :func:`kafka_network_of`);
* :func:`recovery_by_durability` the failure lab's figures per durability setting: *write
  unavailability* (:data:`UNAVAILABILITY`: SQLite's host loss, Kafka's broker kill and leader
  failover), *redelivery delay* (:data:`REDELIVERY`: a consumer kill, set by SQLite's lease
  and Kafka's ``session.timeout.ms``) and data loss (every experiment). The same for the
  :data:`GATEWAY` (``sqlitequeue serve``: its server's kill), shown beside, never judged.

Reads results files only (never a backend).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sqlitequeue.bench.results import Results

SQLITE, KAFKA = "sqlite", "kafka"
#: ``sqlitequeue serve`` (Kafka clients -> the gateway -> one SQLite file): the failure lab's
#: server kill, shown beside SQLite's and Kafka's figures (not judged)
GATEWAY = "gateway"

#: failure-lab experiments in which producers cannot write, and what each one measures
UNAVAILABILITY = {
    "host-loss": "host loss: restore from Litestream + reopen",
    "broker-kill": "broker kill (1 broker, RF=1: until it is back)",
    "leader-failover": "leader failover (3 brokers, RF=3)",
}
#: failure-lab experiments in which a crashed consumer's work waits to be delivered again
REDELIVERY = {"consumer-kill": "consumer kill"}
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

    def runs(self) -> list[dict[str, Any]]:
        """Each folder used: path, kind, run id, creation time and quick mode (from run.json)."""
        return [
            {
                "path": str(r.path),
                "kind": "faults" if r in self.faults else "bench",
                "run_id": r.meta.get("run_id"),
                "created": r.meta.get("created"),
                "quick": r.meta.get("quick"),
            }
            for r in self.bench + self.faults
        ]


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


def system_of(backend: str) -> str | None:
    """:data:`SQLITE` for ``sqlite*`` backends, :data:`KAFKA` for ``kafka*``,
    :data:`GATEWAY` for ``gateway*``, else None."""
    name = str(backend)
    if name.startswith("sqlite"):
        return SQLITE
    if name.startswith("gateway"):
        return GATEWAY
    return KAFKA if name.startswith("kafka") else None


def is_sqlite(backend: str) -> bool:
    """True for a SQLite backend (its name starts with ``sqlite``)."""
    return system_of(backend) == SQLITE


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


# -- bench: capacity and latency -------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """A system's best backend's conservative maximum sustainable rate."""

    rate: float
    backend: str
    workload: str
    run: str
    p99_target_ms: float | None
    lower_bound: bool
    others: dict[str, float]


def capacity(evidence: Evidence, system: str = SQLITE) -> Capacity | None:
    """Return the highest, over the system's backends, of each one's lowest max sustainable rate.

    A team picks its best implementation; within it the lowest rate over the max-rate
    workloads is used (conservative). ``lower_bound`` is True when its search did not
    converge (it ended at the harness's ceiling, on its time budget or on a backlog, so the
    true capacity is higher); for runs that did not record how, when every step passed.
    None without data.
    """
    df = scalars(evidence)
    rows = df[(df.metric == "max_sustainable_rate") & (df.backend.map(system_of) == system)]
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
        lower_bound=_is_lower_bound(evidence, str(best.backend), str(best.workload)),
        others={str(r.backend): float(r.value) for r in worst.itertuples()},
    )


def sqlite_capacity(evidence: Evidence) -> Capacity | None:
    """:func:`capacity` of the SQLite backends (None without data)."""
    return capacity(evidence, SQLITE)


def kafka_capacity(evidence: Evidence) -> Capacity | None:
    """:func:`capacity` of the Kafka backends (None without data, or when every search failed)."""
    found = capacity(evidence, KAFKA)
    return found if found is not None and found.rate > 0 else None


def _is_lower_bound(evidence: Evidence, backend: str, workload: str) -> bool:
    from sqlitequeue.bench.report.capacity import SearchOutcome, search_outcomes

    for res in evidence.bench:
        for found in search_outcomes(res):
            if (found.backend, found.workload) == (backend, workload) and found.outcomes:
                return not found.converged and SearchOutcome.FLOOR not in found.outcomes
    return _all_steps_passed(evidence, backend, workload)


def _all_steps_passed(evidence: Evidence, backend: str, workload: str) -> bool:
    for res in evidence.bench:
        steps = res.tables.get("rate_steps")
        if steps is None or "ok" not in steps:
            continue
        mine = steps[(steps.backend == backend) & (steps.workload == workload)]
        if not mine.empty:
            return bool(mine.ok.astype(str).str.lower().isin(["true", "1", "1.0"]).all())
    return False


@dataclass(frozen=True)
class Latency:
    """The worst end-to-end p99 over a system's fixed-rate runs at or above a rate."""

    p99_ms: float
    backend: str
    workload: str
    rate: float
    run: str


def kafka_network_of(meta: Mapping[str, Any], backend: str) -> str | None:
    """The network Kafka backend ``backend`` ran over in a run described by ``meta`` (run.json).

    A label names it (``kafka-managed@cross-az``); else the run's ``--network`` (loopback when
    unrecorded), except that a managed-shaped cluster on a loopback run spans zones over
    ``cross-az`` (as ``bench compare`` starts it). None for a backend that is not Kafka.
    """
    from sqlitequeue.bench.kafka import deployments

    name, network = deployments.split_label(str(backend))
    if system_of(name) != KAFKA:
        return None
    if network:
        return network
    run_network = str((meta.get("network") or {}).get("name") or "loopback")
    if deployments.DEPLOYMENT_OF.get(name) == "managed" and run_network == "loopback":
        return deployments.MANAGED_DEFAULT_NETWORK
    return run_network


def measure_network_command(network: str, quick: bool = True) -> str:
    """The command that measures Kafka over ``network`` (the managed shape teams run)."""
    quick_flag = " --quick" if quick else ""
    return f"sqlitequeue bench compare{quick_flag} --backends kafka-managed@{network}"


def has_kafka_runs_over(evidence: Evidence, network: str) -> bool:
    """True when some bench run holds a Kafka backend that ran over ``network``."""
    return any(
        kafka_network_of(res.meta, backend) == network
        for res in evidence.bench
        for backend in res.metrics.backend.unique()
    )


def _over_network(evidence: Evidence, df: pd.DataFrame, network: str) -> pd.DataFrame:
    """Kafka rows of ``df`` that ran over ``network``, backends labelled ``name@network``."""
    metas = {str(res.path): res.meta for res in evidence.bench}
    keep = [
        kafka_network_of(metas.get(run, {}), backend) == network
        for backend, run in zip(df.backend, df.run, strict=True)
    ]
    df = df.loc[keep].copy()
    df["backend"] = [b if "@" in str(b) else f"{b}@{network}" for b in df.backend]
    return df


def fixed_rate_latency(
    evidence: Evidence,
    system: str,
    min_rate: float,
    backend: str | None = None,
    network: str | None = None,
) -> Latency | float | None:
    """Return the worst e2e p99 over the system's fixed-rate runs at >= ``min_rate`` msg/s.

    ``backend`` narrows to one backend when it has runs; ``network`` (Kafka only) to the
    runs over that network, each backend labelled ``name@network``. Returns the highest
    fixed rate measured (a float) when every run is below ``min_rate``, and None without
    fixed-rate runs with an e2e p99.
    """
    df = scalars(evidence)
    df = df[df.backend.map(system_of) == system]
    if network is not None and system == KAFKA:
        df = _over_network(evidence, df, network)
    if backend is not None and (df.backend == backend).any():
        df = df[df.backend == backend]
    if df.empty:
        return None
    wide = df.pivot_table(
        index=["backend", "workload", "run"], columns="metric", values="value", aggfunc="first"
    )
    if not {"target_rate", "e2e_latency_ms.p99"} <= set(wide.columns):
        return None
    wide = wide[(wide.target_rate > 0) & wide["e2e_latency_ms.p99"].notna()]
    if wide.empty:
        return None
    fixed = wide[wide.target_rate >= min_rate]
    if fixed.empty:
        return float(wide.target_rate.max())
    idx = fixed["e2e_latency_ms.p99"].idxmax()
    b, w, run = idx
    return Latency(
        p99_ms=float(fixed.loc[idx, "e2e_latency_ms.p99"]),
        backend=str(b),
        workload=str(w),
        rate=float(fixed.loc[idx, "target_rate"]),
        run=str(run),
    )


# -- failure lab: unavailability, redelivery, loss --------------------------------------------


@dataclass(frozen=True)
class Outage:
    """A system's measured times for one kind of failure (seconds, over failure-lab rows)."""

    backends: tuple[str, ...]
    worst_s: float
    median_s: float
    runs: int
    #: (experiment, worst seconds), worst first
    by_experiment: tuple[tuple[str, float], ...]
    #: what sets the time, e.g. "lease 6 s" or "session.timeout.ms 6000"; "" when unknown
    setting: str
    #: the setting's value in seconds, when known
    setting_s: float | None
    source: str

    @property
    def experiments(self) -> tuple[str, ...]:
        """The experiments measured, worst first."""
        return tuple(name for name, _ in self.by_experiment)


@dataclass(frozen=True)
class Recovery:
    """What one system's failure-lab runs say at one durability setting.

    ``unavailability`` and ``redelivery`` are None when not measured; ``rpo_s`` is NaN when
    no experiment measured it. ``lost`` counts acknowledged messages lost over ``runs``.
    """

    system: str
    durability: str
    unavailability: Outage | None
    redelivery: Outage | None
    rpo_s: float
    lost: int
    experiments: tuple[str, ...]
    runs: int
    source: str
    controls: tuple[str, ...] = ()


def faults_table(evidence: Evidence) -> pd.DataFrame:
    """Every failure-lab row of the systems, with ``system``, ``control`` and ``run`` columns.

    ``rto_s``, ``rpo_s``, ``lost`` and ``acknowledged`` are numeric (NaN where missing);
    ``durability`` is text (``default`` where missing). Rows of other systems are dropped.
    """
    import pandas as pd

    frames = []
    for res in evidence.faults:
        table = res.tables.get("faults")
        if table is not None and not table.empty:
            frames.append(table.assign(run=str(res.path), setting=_lab_timeout(res)))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df["system"] = df.backend.map(system_of)
    df = df[df.system.notna()].copy()
    df["experiment"] = df.experiment.astype(str)
    df["control"] = df.experiment.map(lambda n: any(m in n for m in CONTROL_EXPERIMENTS))
    for column in ("rto_s", "rpo_s", "lost", "acknowledged"):
        df[column] = pd.to_numeric(df.get(column), errors="coerce")
    if "durability" not in df:
        df["durability"] = "default"
    df["durability"] = df.durability.fillna("default").astype(str)
    notes = df["notes"] if "notes" in df else pd.Series(None, index=df.index, dtype=object)
    df["notes"] = notes.astype(object).where(notes.notna(), "").astype(str)
    return df


def _lab_timeout(res: Results) -> float:
    scale = res.meta.get("scale") or {}
    value = scale.get("failure_timeout_s") if isinstance(scale, dict) else None
    return float(value) if isinstance(value, (int, float)) else math.nan


_LEASE = re.compile(r"lease ([0-9.]+) s")
_SESSION = re.compile(r"session\.timeout\.ms (\d+)")


def _setting(rows: pd.DataFrame, system: str) -> tuple[str, float | None]:
    """What sets a redelivery delay: the lease (SQLite) or session.timeout.ms (Kafka)."""
    notes = " ".join(rows.notes)
    timeouts = rows.setting.dropna()
    lab = float(timeouts.iloc[0]) if not timeouts.empty else None
    if system == SQLITE:
        found = _LEASE.search(notes)
        seconds = float(found.group(1)) if found else lab
        return ("", None) if seconds is None else (f"lease {seconds:g} s", seconds)
    session = _SESSION.search(notes)
    if session:
        return f"session.timeout.ms {session.group(1)}", int(session.group(1)) / 1000
    if lab is not None:
        return f"session.timeout.ms {lab * 1000:.0f}", lab
    return "", None


def _outage(
    rows: pd.DataFrame, system: str, names: dict[str, str], *, with_setting: bool = False
) -> Outage | None:
    rows = rows[rows.experiment.isin(list(names)) & rows.rto_s.notna()]
    if rows.empty:
        return None
    worst = rows.groupby("experiment").rto_s.max().sort_values(ascending=False)
    setting, setting_s = _setting(rows, system) if with_setting else ("", None)
    return Outage(
        backends=tuple(sorted(map(str, rows.backend.unique()))),
        worst_s=float(rows.rto_s.max()),
        median_s=float(rows.rto_s.median()),
        runs=len(rows),
        by_experiment=tuple((str(k), float(v)) for k, v in worst.items()),
        setting=setting,
        setting_s=setting_s,
        source=str(rows.run.iloc[0]),
    )


def recovery_by_durability(evidence: Evidence, system: str = SQLITE) -> list[Recovery]:
    """Per durability setting of ``system``: unavailability, redelivery, worst RPO and loss.

    For a setting, every (non-control) experiment counts: with its rows at that setting
    when it ran at it, else with all its rows (e.g. a consumer kill measured only at
    ``normal`` also counts for ``full``). RPO is the measured ``rpo_s``; where it is missing
    but no acknowledged message was lost, the RPO is 0. Control experiments
    (:data:`CONTROL_EXPERIMENTS`) are named in ``controls`` but do not count.
    """
    import pandas as pd

    df = faults_table(evidence)
    out: list[Recovery] = []
    if df.empty:
        return out
    df = df[df.system == system]
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
                system=system,
                durability=str(durability),
                unavailability=_outage(group, system, UNAVAILABILITY),
                redelivery=_outage(group, system, REDELIVERY, with_setting=True),
                rpo_s=float(rpo.max()),
                lost=int(group.lost.fillna(0).sum()),
                experiments=tuple(sorted(map(str, group.experiment.unique()))),
                runs=len(group),
                source=str(group.run.iloc[0]),
                controls=controls,
            )
        )
    return out
