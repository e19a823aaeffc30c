"""The seed's "when this makes sense" checklist, answered with a team's profile and measurements.

A team profile (YAML, see ``examples/profiles/``) states peak and average rate, message size,
writers and regions, downtime and data-loss tolerance, retention, consumer groups, Kafka
ecosystem needs and team capacity. :func:`evaluate` checks it, criterion by criterion,
against results folders (``kind: bench`` for throughput and latency, ``kind: faults`` for
recovery) and the cost model, and returns a :class:`Decision`:

* each :class:`Criterion` is ``pass``, ``fail`` or ``unknown``, with the evidence (numbers
  and the run they came from), the headroom, and what would flip it;
* hard criteria (throughput, latency, downtime, data loss, single writer, one region,
  ecosystem) decide the verdict: any fail -> "stay on Kafka"; else any unknown ->
  "inconclusive"; else "SQLite fits". Soft criteria (cost, team capacity) become caveats.

:func:`write_report` writes ``decision-<profile>.md``, ``.html`` (a fragment) and ``.json``
into a results folder. Verdicts read only results files (never a backend).
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench import cost
from sqlitequeue.errors import ProfileError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from sqlitequeue.bench.results import Results

SQLITE_FITS = "SQLite fits"
STAY_ON_KAFKA = "stay on Kafka"
INCONCLUSIVE = "inconclusive"
PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"

#: Kafka ecosystem pieces a profile may name under ``kafka_ecosystem``
ECOSYSTEM = ("kafka-streams", "ksqldb", "kafka-connect", "schema-registry", "mirrormaker", "flink")
TEAM_CAPACITY = ("small", "kafka-ops")
OBJECT_STORES = ("s3", "r2", "b2")
#: failure-lab experiments that are controls (e.g. Litestream killed before the host, to prove
#: loss is detected): shown in the evidence, left out of the worst case
CONTROL_EXPERIMENTS = ("litestream-down", "control")

# ------------------------------------------------------------------------------ profile

#: field -> (kind, required, what it means); kinds: num, int, bool, str, list
FIELDS: dict[str, tuple[str, bool, str]] = {
    "name": ("str", False, "a short name for the report (default: the file name)"),
    "description": ("str", False, "free text"),
    "peak_rate": ("num", True, "peak messages per second, e.g. 300"),
    "average_rate": ("num", False, "average messages per second (default: peak_rate)"),
    "message_bytes": ("int", True, "typical message size in bytes, e.g. 1024"),
    "writers": ("int", True, "hosts that must write to the log, e.g. 1"),
    "writers_can_funnel": ("bool", False, "true if several writers can go through one service"),
    "regions": ("int", True, "regions that must accept writes, e.g. 1"),
    "downtime_tolerance_s": ("num", True, "seconds of write downtime acceptable, e.g. 30"),
    "data_loss_tolerance_s": (
        "num",
        True,
        "seconds of acknowledged writes that may be lost when the host is lost, e.g. 5",
    ),
    "retention_hours": ("num", True, "how long messages are kept, e.g. 168"),
    "consumer_groups": ("int", True, "independent consumer groups reading everything, e.g. 2"),
    "kafka_ecosystem": ("list", True, f"Kafka tools you rely on: [] or some of {list(ECOSYSTEM)}"),
    "team_capacity": ("str", True, f"one of {list(TEAM_CAPACITY)}"),
    "headroom": ("num", False, "measured capacity required per unit of peak (default 2.0)"),
    "p99_target_ms": ("num", False, "end-to-end p99 latency the team needs, in ms"),
    "monthly_budget_usd": ("num", False, "what the team is willing to pay per month"),
    "vm_exists": ("bool", False, "true if the queue can ride on a VM you already pay for"),
    "object_store": ("str", False, f"Litestream target, one of {list(OBJECT_STORES)}"),
}


@dataclass(frozen=True)
class Profile:
    """A validated team profile (see :data:`FIELDS` for the meaning of each field)."""

    name: str
    peak_rate: float
    message_bytes: int
    writers: int
    regions: int
    downtime_tolerance_s: float
    data_loss_tolerance_s: float
    retention_hours: float
    consumer_groups: int
    kafka_ecosystem: tuple[str, ...]
    team_capacity: str
    average_rate: float | None = None
    writers_can_funnel: bool = False
    headroom: float = 2.0
    p99_target_ms: float | None = None
    monthly_budget_usd: float | None = None
    vm_exists: bool = False
    object_store: str = "s3"
    description: str = ""

    def traffic(self) -> cost.Traffic:
        """The profile as cost-model input."""
        return cost.Traffic(
            peak_rate=self.peak_rate,
            average_rate=self.average_rate,
            message_bytes=self.message_bytes,
            retention_hours=self.retention_hours,
            consumer_groups=self.consumer_groups,
        )


def _bad(where: str, name: str, problem: str) -> ProfileError:
    return ProfileError(f"profile {where}: field {name!r} {problem} ({FIELDS[name][2]})")


def _check_kind(where: str, name: str, value: Any) -> Any:
    kind = FIELDS[name][0]
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "num" and not (is_num and math.isfinite(value)):
        raise _bad(where, name, f"must be a number, got {value!r}")
    if kind == "int" and not (is_num and float(value).is_integer()):
        raise _bad(where, name, f"must be a whole number, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise _bad(where, name, f"must be true or false, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        raise _bad(where, name, f"must be text, got {value!r}")
    if kind == "list":
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(where, name, f"must be a list of names, got {value!r}")
        return tuple(value)
    return int(value) if kind == "int" else value


def _check_ranges(where: str, v: dict[str, Any]) -> None:
    positive = ("peak_rate", "message_bytes", "writers", "regions", "headroom")
    non_negative = (
        "average_rate",
        "downtime_tolerance_s",
        "data_loss_tolerance_s",
        "retention_hours",
        "consumer_groups",
        "p99_target_ms",
        "monthly_budget_usd",
    )
    for name in positive:
        if name in v and v[name] <= 0:
            raise _bad(where, name, f"must be > 0, got {v[name]!r}")
    for name in non_negative:
        if v.get(name) is not None and v[name] < 0:
            raise _bad(where, name, f"must be >= 0, got {v[name]!r}")
    if v.get("average_rate") is not None and v["average_rate"] > v["peak_rate"]:
        raise _bad(where, "average_rate", f"must not exceed peak_rate ({v['peak_rate']})")
    if v["team_capacity"] not in TEAM_CAPACITY:
        raise _bad(where, "team_capacity", f"is {v['team_capacity']!r}")
    if v.get("object_store", "s3") not in OBJECT_STORES:
        raise _bad(where, "object_store", f"is {v['object_store']!r}")
    unknown = [e for e in v["kafka_ecosystem"] if e not in ECOSYSTEM]
    if unknown:
        raise _bad(where, "kafka_ecosystem", f"names unknown tool(s) {unknown}")


def load_profile(source: Mapping[str, Any] | str | os.PathLike[str]) -> Profile:
    """Return the validated profile from a YAML file path or a dict.

    Raises ProfileError naming the field when one is missing, unknown, of the wrong type or
    out of range, and when the file is missing or is not a YAML mapping.
    """
    where, name = "(dict)", "profile"
    if not isinstance(source, Mapping):
        path = Path(source)
        where, name = str(path), path.stem
        if not path.is_file():
            raise ProfileError(f"profile {path} does not exist; see examples/profiles/")
        import yaml

        try:
            source = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ProfileError(f"profile {path} is not valid YAML: {exc}") from exc
        if not isinstance(source, Mapping):
            raise ProfileError(f"profile {path} must be a mapping of field: value")
    unknown = sorted(set(source) - set(FIELDS))
    if unknown:
        raise ProfileError(
            f"profile {where}: unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}"
        )
    values: dict[str, Any] = {"name": name}
    for key, (_, required, _) in FIELDS.items():
        if key not in source or (source[key] is None and key != "kafka_ecosystem"):
            if required:
                raise _bad(where, key, "is missing")
            continue
        values[key] = _check_kind(where, key, source[key])
    _check_ranges(where, values)
    return Profile(**values)


# ------------------------------------------------------------------------------ evidence


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


def _is_sqlite(backend: str) -> bool:
    return str(backend).startswith("sqlite")


def _scalars(evidence: Evidence) -> pd.DataFrame:
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
    df = _scalars(evidence)
    rows = df[(df.metric == "max_sustainable_rate") & df.backend.map(_is_sqlite)]
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
    df = _scalars(evidence)
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
    df = df[df.backend.map(_is_sqlite)].copy()
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


# ------------------------------------------------------------------------------ criteria


@dataclass(frozen=True)
class Criterion:
    """One checklist line: status, evidence, headroom, and what would flip it."""

    key: str
    title: str
    status: str
    hard: bool
    evidence: str
    headroom: str = ""
    would_change: str = ""
    measured: float | None = None
    threshold: float | None = None
    unit: str = ""
    higher_is_better: bool = True

    @property
    def margin(self) -> float | None:
        """How far from flipping: > 1 passes with room, < 1 fails (None without numbers)."""
        if self.measured is None or self.threshold is None:
            return None
        good, bad = (
            (self.measured, self.threshold)
            if self.higher_is_better
            else (self.threshold, self.measured)
        )
        return math.inf if bad == 0 else good / bad


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def _times(ratio: float) -> str:
    """A ratio as "15x", "1.04x" or "0.0282x" (three significant digits below 10)."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.3g}x"


def check_throughput(profile: Profile, capacity: Capacity | None) -> Criterion:
    """Measured max sustainable rate vs peak x required headroom."""
    title = "Throughput: peak rate within measured capacity"
    need = profile.peak_rate * profile.headroom
    if capacity is None:
        return Criterion(
            "throughput",
            title,
            UNKNOWN,
            True,
            "no max_sustainable_rate for a SQLite backend in the bench results",
            would_change="run `sqlitequeue bench compare` (it includes max-rate-1kb)",
        )
    if capacity.rate <= 0:
        return Criterion(
            "throughput",
            title,
            UNKNOWN,
            True,
            f"every SQLite backend failed even the first step of the max-rate search "
            f"(run {capacity.run}): an overloaded machine or a harness problem",
            would_change="rerun `sqlitequeue bench compare` on a quieter machine",
        )
    target = f" at p99 <= {_fmt(capacity.p99_target_ms)} ms" if capacity.p99_target_ms else ""
    bound = " (a lower bound: every ramp step passed)" if capacity.lower_bound else ""
    others = ", ".join(f"{b} {_fmt(r)}" for b, r in sorted(capacity.others.items()))
    evidence = (
        f"{capacity.backend} sustained {_fmt(capacity.rate)} msg/s{target} on "
        f"{capacity.workload}{bound}; need {_fmt(profile.peak_rate)} peak x "
        f"{profile.headroom:g} headroom = {_fmt(need)} msg/s (all SQLite backends: {others}; "
        f"run {capacity.run})"
    )
    ratio = capacity.rate / profile.peak_rate
    ok = capacity.rate >= need
    change = (
        f"a peak above {_fmt(capacity.rate / profile.headroom)} msg/s"
        if ok
        else f"a peak at or below {_fmt(capacity.rate / profile.headroom)} msg/s, less "
        "required headroom, a faster machine, or batching producers"
    )
    if not ok and capacity.lower_bound:
        return Criterion(
            "throughput",
            title,
            UNKNOWN,
            True,
            evidence,
            f"{_times(ratio)} peak (at least)",
            "a max-rate search with a higher ceiling (producerMaxRate)",
            capacity.rate,
            need,
            "msg/s",
        )
    return Criterion(
        "throughput",
        title,
        PASS if ok else FAIL,
        True,
        evidence,
        f"{_times(ratio)} peak",
        change,
        capacity.rate,
        need,
        "msg/s",
    )


def check_latency(profile: Profile, evidence: Evidence, capacity: Capacity | None) -> Criterion:
    """End-to-end p99 at a fixed rate >= peak vs the profile's p99 target."""
    title = "Latency: end-to-end p99 within target"
    assert profile.p99_target_ms is not None
    df = _scalars(evidence)
    df = df[df.backend.map(_is_sqlite)]
    if capacity is not None and (df.backend == capacity.backend).any():
        df = df[df.backend == capacity.backend]
    wide = df.pivot_table(
        index=["backend", "workload", "run"], columns="metric", values="value", aggfunc="first"
    )
    needed = {"target_rate", "e2e_latency_ms.p99"}
    if wide.empty or not needed <= set(wide.columns):
        return Criterion(
            "latency",
            title,
            UNKNOWN,
            True,
            "no fixed-rate SQLite runs with e2e p99",
            would_change="run `sqlitequeue bench compare`",
        )
    fixed = wide[(wide.target_rate >= profile.peak_rate) & wide["e2e_latency_ms.p99"].notna()]
    if fixed.empty:
        top = wide.target_rate.max()
        return Criterion(
            "latency",
            title,
            UNKNOWN,
            True,
            f"fixed-rate runs reach only {_fmt(top)} msg/s, below the "
            f"{_fmt(profile.peak_rate)} msg/s peak",
            would_change=f"a workload at {_fmt(profile.peak_rate)} msg/s or more",
        )
    worst_idx = fixed["e2e_latency_ms.p99"].idxmax()
    p99 = float(fixed.loc[worst_idx, "e2e_latency_ms.p99"])
    b, w, run = worst_idx
    target = profile.p99_target_ms
    ok = p99 <= target
    return Criterion(
        "latency",
        title,
        PASS if ok else FAIL,
        True,
        f"worst e2e p99 {_fmt(p99)} ms ({b} on {w} at {_fmt(fixed.loc[worst_idx, 'target_rate'])} "
        f"msg/s, run {run}) vs target {_fmt(target)} ms",
        _times(target / p99) if p99 > 0 else "",
        f"a p99 target below {_fmt(p99)} ms" if ok else f"a p99 target of {_fmt(p99)} ms or more",
        p99,
        target,
        "ms",
        higher_is_better=False,
    )


def _pick_recovery(profile: Profile, recoveries: list[Recovery]) -> Recovery | None:
    def meets(r: Recovery) -> bool:
        return r.rto_s <= profile.downtime_tolerance_s and r.rpo_s <= profile.data_loss_tolerance_s

    good = [r for r in recoveries if meets(r)]
    pool = good or [r for r in recoveries if not math.isnan(r.rto_s)] or recoveries
    return min(pool, key=lambda r: (r.rpo_s, r.rto_s)) if pool else None


def _controls(rec: Recovery) -> str:
    return f"; controls not counted: {', '.join(rec.controls)}" if rec.controls else ""


def check_downtime(profile: Profile, rec: Recovery | None) -> Criterion:
    """Worst measured RTO (failure lab) vs downtime tolerance."""
    title = "Downtime: recovery time within tolerance"
    if rec is None or math.isnan(rec.rto_s):
        return Criterion(
            "downtime",
            title,
            UNKNOWN,
            True,
            "no SQLite RTO in the failure-lab results",
            would_change="run `sqlitequeue bench faults`",
        )
    ok = rec.rto_s <= profile.downtime_tolerance_s
    return Criterion(
        "downtime",
        title,
        PASS if ok else FAIL,
        True,
        f"worst RTO {_fmt(rec.rto_s)} s over {rec.runs} runs of {', '.join(rec.experiments)} "
        f"(durability {rec.durability}; run {rec.source}) vs tolerance "
        f"{_fmt(profile.downtime_tolerance_s)} s{_controls(rec)}",
        _times(profile.downtime_tolerance_s / rec.rto_s) if rec.rto_s > 0 else "no downtime",
        f"a downtime tolerance below {_fmt(rec.rto_s)} s"
        if ok
        else f"a downtime tolerance of {_fmt(rec.rto_s)} s or a faster restore",
        rec.rto_s,
        profile.downtime_tolerance_s,
        "s",
        higher_is_better=False,
    )


def check_data_loss(profile: Profile, rec: Recovery | None) -> Criterion:
    """Worst measured RPO (failure lab) vs data-loss tolerance."""
    title = "Data loss: recovery point within tolerance"
    if rec is None or math.isnan(rec.rpo_s):
        return Criterion(
            "data_loss",
            title,
            UNKNOWN,
            True,
            "no SQLite RPO in the failure-lab results",
            would_change="run `sqlitequeue bench faults`",
        )
    ok = rec.rpo_s <= profile.data_loss_tolerance_s
    headroom = _times(profile.data_loss_tolerance_s / rec.rpo_s) if rec.rpo_s > 0 else "no loss"
    return Criterion(
        "data_loss",
        title,
        PASS if ok else FAIL,
        True,
        f"worst RPO {_fmt(rec.rpo_s)} s, {rec.lost} acknowledged message(s) lost over "
        f"{rec.runs} runs (durability {rec.durability}; run {rec.source}) vs tolerance "
        f"{_fmt(profile.data_loss_tolerance_s)} s{_controls(rec)}",
        headroom,
        f"a data-loss tolerance below {_fmt(rec.rpo_s)} s"
        if ok
        else f"a tolerance of {_fmt(rec.rpo_s)} s, a shorter Litestream sync interval, or "
        "synchronous replication",
        rec.rpo_s,
        profile.data_loss_tolerance_s,
        "s",
        higher_is_better=False,
    )


def check_writers(profile: Profile) -> Criterion:
    """One writer host, or several that can funnel through one writer service."""
    title = "Single writer"
    if profile.writers == 1:
        return Criterion(
            "writers", title, PASS, True, "1 writer host", would_change="a second writer host"
        )
    if profile.writers_can_funnel:
        return Criterion(
            "writers",
            title,
            PASS,
            True,
            f"{profile.writers} writers funnel through one writer service (its rate is "
            "what the throughput check measures)",
            would_change="writers that cannot go through one service",
        )
    return Criterion(
        "writers",
        title,
        FAIL,
        True,
        f"{profile.writers} writer hosts that cannot funnel: one SQLite file has one writer",
        would_change="routing all writes through one service (writers_can_funnel: true)",
    )


def check_regions(profile: Profile) -> Criterion:
    """Writes from one region only."""
    title = "One region"
    ok = profile.regions == 1
    return Criterion(
        "regions",
        title,
        PASS if ok else FAIL,
        True,
        f"{profile.regions} region(s) accept writes",
        would_change="writes from a second region" if ok else "writes from a single region",
    )


def check_ecosystem(profile: Profile) -> Criterion:
    """No reliance on Kafka Streams, ksqlDB, Connect and friends."""
    title = "No Kafka ecosystem dependency"
    if not profile.kafka_ecosystem:
        return Criterion(
            "ecosystem",
            title,
            PASS,
            True,
            "no Kafka ecosystem tools needed",
            would_change="adopting Kafka Streams, ksqlDB or Connect",
        )
    return Criterion(
        "ecosystem",
        title,
        FAIL,
        True,
        f"relies on {', '.join(profile.kafka_ecosystem)}",
        would_change="replacing those tools",
    )


def check_cost(profile: Profile, projections: list[cost.Projection]) -> Criterion:
    """The SQLite projection vs the cheapest Kafka option (and the budget, if any)."""
    title = "Cost: SQLite cheaper than Kafka"
    sqlite = next(p for p in projections if p.architecture == f"sqlite-{profile.object_store}")
    kafka = min(
        (p for p in projections if p.architecture in cost.KAFKA_ARCHITECTURES),
        key=lambda p: p.total,
    )
    ok = sqlite.total < kafka.total
    over_budget = (
        profile.monthly_budget_usd is not None and sqlite.total > profile.monthly_budget_usd
    )
    budget = (
        "" if profile.monthly_budget_usd is None else f"; budget ${profile.monthly_budget_usd:,.2f}"
    )
    evidence = (
        f"{sqlite.label} ${sqlite.total:,.2f}/month vs cheapest Kafka, {kafka.label}, "
        f"${kafka.total:,.2f}/month{budget}"
    )
    if not sqlite.feasible:
        return Criterion(
            "cost",
            title,
            FAIL,
            False,
            f"{sqlite.label} cannot carry the {_fmt(profile.peak_rate)} msg/s peak on one "
            f"machine (over its measured capacity), so its ${sqlite.total:,.2f}/month is moot; "
            f"cheapest Kafka: {kafka.label}, ${kafka.total:,.2f}/month",
            "over capacity",
            "a peak within the measured SQLite capacity",
        )
    saving = kafka.total - sqlite.total
    return Criterion(
        "cost",
        title,
        PASS if ok and not over_budget else FAIL,
        False,
        evidence,
        f"saves ${saving:,.2f}/month" if ok else f"costs ${-saving:,.2f}/month more",
        "prices or traffic that make Kafka cheaper (see the break-even chart)"
        if ok
        else "more traffic (usage-priced Kafka grows with bytes) or cheaper object storage",
        sqlite.total,
        kafka.total,
        "USD/month",
        higher_is_better=False,
    )


def check_team(profile: Profile) -> Criterion:
    """Whether operational simplicity is a primary concern for this team."""
    title = "Team: simplicity matters more than Kafka's features"
    if profile.team_capacity == "small":
        return Criterion(
            "team",
            title,
            PASS,
            False,
            "a small team without capacity to run a distributed system",
            would_change="a team with engineers to run Kafka properly",
        )
    return Criterion(
        "team",
        title,
        FAIL,
        False,
        "the team has engineers to run Kafka properly; simplicity gains are smaller",
        would_change="losing that capacity",
    )


# ------------------------------------------------------------------------------ decision


@dataclass
class Decision:
    """The verdict with every criterion, the cost projections, and the sources used."""

    profile: Profile
    verdict: str
    criteria: list[Criterion]
    changes: list[str]
    projections: list[cost.Projection]
    assumptions: list[str]
    sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (criteria, verdict, costs, sources)."""
        return {
            "profile": asdict(self.profile),
            "verdict": self.verdict,
            "criteria": [{**asdict(c), "margin": c.margin} for c in self.criteria],
            "what_would_change_it": self.changes,
            "monthly_cost_usd": {p.architecture: round(p.total, 2) for p in self.projections},
            "assumptions": self.assumptions,
            "sources": self.sources,
        }


def verdict_of(criteria: Sequence[Criterion]) -> str:
    """Any hard fail -> stay on Kafka; else any hard unknown -> inconclusive; else SQLite fits."""
    hard = [c for c in criteria if c.hard]
    if any(c.status == FAIL for c in hard):
        return STAY_ON_KAFKA
    if any(c.status == UNKNOWN for c in hard):
        return INCONCLUSIVE
    return SQLITE_FITS


def _changes(verdict: str, criteria: Sequence[Criterion]) -> list[str]:
    if verdict == STAY_ON_KAFKA:
        chosen = [c for c in criteria if c.hard and c.status == FAIL]
        return [f"{c.title}: {c.would_change}" for c in chosen] + [
            f"and then: {c.title}: {c.would_change}"
            for c in criteria
            if c.hard and c.status == UNKNOWN
        ]
    if verdict == INCONCLUSIVE:
        return [f"{c.title}: {c.would_change}" for c in criteria if c.hard and c.status == UNKNOWN]
    return [f"{c.title}: {c.would_change}" for c in criteria if c.hard] + [
        f"caveat: {c.title}: {c.evidence}" for c in criteria if not c.hard and c.status == FAIL
    ]


def evaluate(
    profile: Profile, evidence: Evidence, params: cost.Parameters | None = None
) -> Decision:
    """Check ``profile`` against ``evidence`` and the cost model; return the :class:`Decision`."""
    params = params or cost.load_parameters()
    if profile.vm_exists:
        params = params.override({"vm_exists": True}, origin=f"profile {profile.name}")
    capacity = sqlite_capacity(evidence)
    recovery = _pick_recovery(profile, recovery_by_durability(evidence))
    traffic = profile.traffic()
    projections = cost.project(traffic, params, sqlite_capacity=capacity.rate if capacity else None)
    criteria = [check_throughput(profile, capacity)]
    if profile.p99_target_ms is not None:
        criteria.append(check_latency(profile, evidence, capacity))
    criteria += [
        check_downtime(profile, recovery),
        check_data_loss(profile, recovery),
        check_writers(profile),
        check_regions(profile),
        check_ecosystem(profile),
        check_cost(profile, projections),
        check_team(profile),
    ]
    verdict = verdict_of(criteria)
    assumptions = cost.common_assumptions(traffic, params)
    kafka = kafka_capacity(evidence)
    if kafka is not None:
        assumptions.append(
            f"measured here, one Kafka broker ({kafka[1]}): {_fmt(kafka[0])} msg/s on {kafka[2]}; "
            "Kafka is sized by the published per-broker rule, not by this machine"
        )
    return Decision(
        profile,
        verdict,
        criteria,
        _changes(verdict, criteria),
        projections,
        assumptions,
        evidence.sources,
    )


def summary_text(decision: Decision) -> str:
    """Return a plain-language reading of the decision, computed from its criteria and costs."""
    hard = [c for c in decision.criteria if c.hard]
    failed = [c.title for c in hard if c.status == FAIL]
    unknown = [c.title for c in hard if c.status == UNKNOWN]
    name = decision.profile.name
    if failed:
        lines = [
            f"For profile '{name}': {decision.verdict}. {len(failed)} of {len(hard)} hard "
            f"criteria fail: {'; '.join(failed)}."
        ]
    elif unknown:
        lines = [
            f"For profile '{name}': {decision.verdict}. Nothing fails, but {len(unknown)} hard "
            f"criteria lack measurements: {'; '.join(unknown)}."
        ]
    else:
        lines = [f"For profile '{name}': {decision.verdict}. All {len(hard)} hard criteria pass."]
    numeric = [c for c in hard if c.status == PASS and c.margin is not None]
    if numeric:
        tight = min(numeric, key=lambda c: c.margin or math.inf)
        margin = (
            "no measured loss or delay" if tight.margin == math.inf else _times(tight.margin or 0)
        )
        lines.append(
            f"The tightest passing criterion is '{tight.title}': measured "
            f"{_fmt(tight.measured or 0)} {tight.unit} against {_fmt(tight.threshold or 0)} "
            f"{tight.unit} ({margin}); it flips with {tight.would_change}."
        )
    cost_c = next((c for c in decision.criteria if c.key == "cost"), None)
    if cost_c is not None:
        lines.append(f"Cost: {cost_c.evidence} ({cost_c.headroom}).")
    soft = [c.title for c in decision.criteria if not c.hard and c.status == FAIL]
    if soft and not failed:
        lines.append(f"Caveats (soft criteria that do not hold): {'; '.join(soft)}.")
    return " ".join(lines)


def plot_criteria(decision: Decision) -> Figure:
    """Bar chart of each numeric criterion's margin (log scale; 1 = the threshold).

    Bars right of 1 pass with that much room; left of 1 fail. Criteria without numbers
    (writers, regions, ecosystem, team) are listed in the title instead.
    """
    from matplotlib.figure import Figure

    numeric = [c for c in decision.criteria if c.margin is not None]
    fig = Figure(figsize=(8, 0.5 * max(len(numeric), 1) + 1.8))
    ax = fig.subplots()
    colours = {PASS: "tab:green", FAIL: "tab:red", UNKNOWN: "tab:grey"}
    for y, c in enumerate(numeric):
        margin = min(c.margin or 1.0, 1000.0)
        ax.barh(y, margin, left=0, color=colours[c.status])
        ax.text(
            margin,
            y,
            f" {_fmt(c.measured or 0)} vs {_fmt(c.threshold or 0)} {c.unit}",
            va="center",
            fontsize=8,
        )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(numeric)), [c.title.split(":")[0] for c in numeric])
    ax.invert_yaxis()
    ax.set_xlabel("margin (x): > 1 passes, < 1 fails")
    others = ", ".join(f"{c.key} {c.status}" for c in decision.criteria if c.margin is None)
    ax.set_title(f"{decision.profile.name}: {decision.verdict}\n{others}", fontsize=9)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ reports

_MARK = {PASS: "pass", FAIL: "FAIL", UNKNOWN: "unknown"}


def render_markdown(decision: Decision) -> str:
    """Return the decision as a markdown report section."""
    p = decision.profile
    lines = [
        f"## Decision for profile `{p.name}`: **{decision.verdict}**",
        "",
        f"{p.description}".strip(),
        "",
        summary_text(decision),
        "",
        "| criterion | kind | status | evidence | headroom |",
        "|---|---|---|---|---|",
    ]
    for c in decision.criteria:
        kind = "hard" if c.hard else "soft"
        lines.append(
            f"| {c.title} | {kind} | {_MARK[c.status]} | {c.evidence.replace('|', '/')} "
            f"| {c.headroom} |"
        )
    lines += ["", "**What would change it**", ""]
    lines += [f"- {line}" for line in decision.changes] or ["- nothing found"]
    lines += [
        "",
        "**Monthly cost projection**",
        "",
        "```",
        cost.format_table(decision.projections),
        "```",
    ]
    lines += ["", "**Assumptions**", ""] + [f"- {a}" for a in decision.assumptions]
    lines += ["", "**Sources**: " + (", ".join(f"`{s}`" for s in decision.sources) or "none")]
    return "\n".join(line for line in lines if line is not None) + "\n"


def render_html(decision: Decision) -> str:
    """Return the decision as an HTML fragment (no <html>/<body>), escaped."""
    e = html.escape
    p = decision.profile
    rows = "".join(
        f"<tr class='{c.status}'><td>{e(c.title)}</td><td>{'hard' if c.hard else 'soft'}</td>"
        f"<td>{e(_MARK[c.status])}</td><td>{e(c.evidence)}</td><td>{e(c.headroom)}</td></tr>"
        for c in decision.criteria
    )
    costs = "".join(
        f"<tr><td>{e(x.label)}</td><td>${x.total:,.2f}</td></tr>" for x in decision.projections
    )
    changes = "".join(f"<li>{e(x)}</li>" for x in decision.changes)
    assumptions = "".join(f"<li>{e(x)}</li>" for x in decision.assumptions)
    sources = ", ".join(f"<code>{e(s)}</code>" for s in decision.sources) or "none"
    return (
        f"<section class='decision'><h2>Decision for profile <code>{e(p.name)}</code>: "
        f"<strong>{e(decision.verdict)}</strong></h2><p>{e(p.description)}</p>"
        f"<p>{e(summary_text(decision))}</p>"
        "<table><thead><tr><th>criterion</th><th>kind</th><th>status</th><th>evidence</th>"
        f"<th>headroom</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<h3>What would change it</h3><ul>{changes}</ul>"
        "<h3>Monthly cost projection</h3><table><thead><tr><th>architecture</th>"
        f"<th>USD/month</th></tr></thead><tbody>{costs}</tbody></table>"
        f"<h3>Assumptions</h3><ul>{assumptions}</ul><p>Sources: {sources}</p></section>\n"
    )


def write_report(decision: Decision, folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``decision-<profile>.md``, ``.html`` and ``.json`` into ``folder``.

    Returns the three paths; overwrites an earlier decision for the same profile.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"decision-{decision.profile.name}"
    paths = [stem.with_suffix(".md"), stem.with_suffix(".html"), stem.with_suffix(".json")]
    paths[0].write_text(render_markdown(decision))
    paths[1].write_text(render_html(decision))
    paths[2].write_text(json.dumps(decision.to_dict(), indent=2, default=str) + "\n")
    return paths


def run_measurements(quick: bool = True, out: str | os.PathLike[str] | None = None) -> list[Path]:
    """Run the bench comparison and the failure lab; return their results folders.

    Imports :mod:`sqlitequeue.bench.compare` and :mod:`sqlitequeue.bench.faults` lazily;
    raises whatever they raise (BenchError subclasses) on failure.
    """
    from sqlitequeue.bench.compare import run_compare
    from sqlitequeue.bench.faults import run_faults

    return [run_compare(quick=quick, out=out), run_faults(quick=quick, out=out)]


def decide(
    profile: str | os.PathLike[str] | Mapping[str, Any],
    results: Sequence[str | os.PathLike[str]] | None = None,
    *,
    quick: bool = True,
    out: str | os.PathLike[str] | None = None,
    params: cost.Parameters | None = None,
) -> tuple[Decision, list[Path]]:
    """Load ``profile``, gather (or measure) evidence, evaluate, and write the report.

    Without ``results`` the measurements run first (quick mode by default). The report goes
    into the first bench results folder (else the first folder). Returns the decision and
    the report paths. Raises ProfileError for a bad profile, BenchError for bad results.
    """
    prof = load_profile(profile)
    folders = list(results) if results else run_measurements(quick=quick, out=out)
    evidence = gather_evidence(folders)
    decision = evaluate(prof, evidence, params)
    target = evidence.bench[0].path if evidence.bench else Path(folders[0])
    return decision, write_report(decision, target)
