"""The checklist's criteria: one ``check_*`` function per line, each returning a :class:`Criterion`.

Each criterion is ``pass``, ``fail`` or ``unknown``, with the evidence (numbers and the run
they came from), the headroom, and what would flip it. Hard criteria (throughput, latency,
downtime, data loss, single writer, one region, ecosystem) decide the verdict (see
:func:`sqlitequeue.bench.decide.verdict.verdict_of`); soft criteria (cost, team) become caveats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.evidence import Capacity, Evidence, Recovery, is_sqlite, scalars
from sqlitequeue.bench.decide.team_profile import Profile

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


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


def fmt(x: float) -> str:
    """A number as "1,234" (from 100 up) or "12.3" (three significant digits below)."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def times(ratio: float) -> str:
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
    target = f" at p99 <= {fmt(capacity.p99_target_ms)} ms" if capacity.p99_target_ms else ""
    bound = " (a lower bound: every ramp step passed)" if capacity.lower_bound else ""
    others = ", ".join(f"{b} {fmt(r)}" for b, r in sorted(capacity.others.items()))
    evidence = (
        f"{capacity.backend} sustained {fmt(capacity.rate)} msg/s{target} on "
        f"{capacity.workload}{bound}; need {fmt(profile.peak_rate)} peak x "
        f"{profile.headroom:g} headroom = {fmt(need)} msg/s (all SQLite backends: {others}; "
        f"run {capacity.run})"
    )
    ratio = capacity.rate / profile.peak_rate
    ok = capacity.rate >= need
    change = (
        f"a peak above {fmt(capacity.rate / profile.headroom)} msg/s"
        if ok
        else f"a peak at or below {fmt(capacity.rate / profile.headroom)} msg/s, less "
        "required headroom, a faster machine, or batching producers"
    )
    if not ok and capacity.lower_bound:
        return Criterion(
            "throughput",
            title,
            UNKNOWN,
            True,
            evidence,
            f"{times(ratio)} peak (at least)",
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
        f"{times(ratio)} peak",
        change,
        capacity.rate,
        need,
        "msg/s",
    )


def check_latency(profile: Profile, evidence: Evidence, capacity: Capacity | None) -> Criterion:
    """End-to-end p99 at a fixed rate >= peak vs the profile's p99 target."""
    title = "Latency: end-to-end p99 within target"
    assert profile.p99_target_ms is not None
    df = scalars(evidence)
    df = df[df.backend.map(is_sqlite)]
    if capacity is not None and (df.backend == capacity.backend).any():
        df = df[df.backend == capacity.backend]
    needed = {"target_rate", "e2e_latency_ms.p99"}
    wide = (
        df.pivot_table(
            index=["backend", "workload", "run"], columns="metric", values="value", aggfunc="first"
        )
        if not df.empty
        else df
    )
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
            f"fixed-rate runs reach only {fmt(top)} msg/s, below the "
            f"{fmt(profile.peak_rate)} msg/s peak",
            would_change=f"a workload at {fmt(profile.peak_rate)} msg/s or more",
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
        f"worst e2e p99 {fmt(p99)} ms ({b} on {w} at {fmt(fixed.loc[worst_idx, 'target_rate'])} "
        f"msg/s, run {run}) vs target {fmt(target)} ms",
        times(target / p99) if p99 > 0 else "",
        f"a p99 target below {fmt(p99)} ms" if ok else f"a p99 target of {fmt(p99)} ms or more",
        p99,
        target,
        "ms",
        higher_is_better=False,
    )


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
        f"worst RTO {fmt(rec.rto_s)} s over {rec.runs} runs of {', '.join(rec.experiments)} "
        f"(durability {rec.durability}; run {rec.source}) vs tolerance "
        f"{fmt(profile.downtime_tolerance_s)} s{_controls(rec)}",
        times(profile.downtime_tolerance_s / rec.rto_s) if rec.rto_s > 0 else "no downtime",
        f"a downtime tolerance below {fmt(rec.rto_s)} s"
        if ok
        else f"a downtime tolerance of {fmt(rec.rto_s)} s or a faster restore",
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
    headroom = times(profile.data_loss_tolerance_s / rec.rpo_s) if rec.rpo_s > 0 else "no loss"
    return Criterion(
        "data_loss",
        title,
        PASS if ok else FAIL,
        True,
        f"worst RPO {fmt(rec.rpo_s)} s, {rec.lost} acknowledged message(s) lost over "
        f"{rec.runs} runs (durability {rec.durability}; run {rec.source}) vs tolerance "
        f"{fmt(profile.data_loss_tolerance_s)} s{_controls(rec)}",
        headroom,
        f"a data-loss tolerance below {fmt(rec.rpo_s)} s"
        if ok
        else f"a tolerance of {fmt(rec.rpo_s)} s, a shorter Litestream sync interval, or "
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
            f"{sqlite.label} cannot carry the {fmt(profile.peak_rate)} msg/s peak on one "
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
