"""The checklist's criteria: one ``check_*`` function per line, each returning a :class:`Criterion`.

Each criterion is ``pass``, ``fail`` or ``unknown`` for SQLite, with its evidence (numbers and
the run they came from), the headroom, and what would flip it; beside it, Kafka's figure from
the same runs judged against the same threshold (``kafka_status``; "" where the line is not a
measurement Kafka could fail). Hard criteria (throughput, latency, write unavailability,
redelivery delay, data loss, single writer, one region, ecosystem) decide the verdict (see
:func:`sqlitequeue.bench.decide.verdict.verdict_of`); soft criteria (cost, team) become caveats.
The profile-only lines (writers, regions, ecosystem, cost, team) are in
:mod:`~sqlitequeue.bench.decide.fit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlitequeue.bench.decide.evidence import (
    KAFKA,
    REDELIVERY,
    SQLITE,
    UNAVAILABILITY,
    Capacity,
    Evidence,
    Latency,
    Outage,
    Recovery,
    fixed_rate_latency,
    measure_network_command,
)
from sqlitequeue.bench.decide.team_profile import Profile

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
RUN_COMPARE = "run `sqlitequeue bench compare` (or `sqlitequeue decide --measure`)"
RUN_FAULTS = "run `sqlitequeue bench faults` (or `sqlitequeue decide --measure`)"


@dataclass(frozen=True)
class Criterion:
    """One checklist line: SQLite's status and evidence, Kafka's beside it, what would flip it.

    ``measured`` and ``kafka_measured`` are the two systems' figures in ``unit`` against the
    same ``threshold``; ``kafka_status`` is "" where Kafka is not judged.
    """

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
    kafka_evidence: str = ""
    kafka_status: str = ""
    kafka_measured: float | None = None

    @property
    def margin(self) -> float | None:
        """How far from flipping: > 1 passes with room, < 1 fails (None without numbers)."""
        return _margin(self.measured, self.threshold, self.higher_is_better)

    @property
    def kafka_margin(self) -> float | None:
        """Kafka's margin against the same threshold (None without numbers)."""
        return _margin(self.kafka_measured, self.threshold, self.higher_is_better)

    def figures(self) -> dict[str, Any]:
        """Both systems' figures: ``{"sqlite": {...}, "kafka": {...}}`` (JSON-ready)."""
        return {
            "sqlite": {
                "status": self.status,
                "measured": _clean(self.measured),
                "margin": _clean(self.margin),
                "evidence": self.evidence,
            },
            "kafka": {
                "status": self.kafka_status,
                "measured": _clean(self.kafka_measured),
                "margin": _clean(self.kafka_margin),
                "evidence": self.kafka_evidence,
            },
        }


def _margin(value: float | None, threshold: float | None, higher: bool) -> float | None:
    if value is None or threshold is None or math.isnan(value):
        return None
    good, bad = (value, threshold) if higher else (threshold, value)
    return math.inf if bad == 0 else good / bad


def _clean(x: float | None) -> float | str | None:
    """A float for JSON: rounded to 4 significant digits, "inf" for infinity, None for NaN."""
    if x is None or math.isnan(x):
        return None
    return "inf" if math.isinf(x) else float(f"{x:.4g}")


def fmt(x: float | None) -> str:
    """A number as "1,234" (from 100 up) or "12.3" (three significant digits below).

    None and NaN read "not measured".
    """
    if x is None or math.isnan(x):
        return "not measured"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def times(ratio: float) -> str:
    """A ratio as "15x", "1.04x" or "0.0282x" (three significant digits below 10)."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.3g}x"


def room(tolerance: float, measured: float, nothing: str) -> str:
    """Headroom of a lower-is-better figure: "5x", ``nothing`` when it measured 0, or "none"."""
    if measured <= 0:
        return nothing
    return times(tolerance / measured) if tolerance > 0 else "none: the tolerance is 0"


def judge(value: float | None, threshold: float, higher_is_better: bool = False) -> str:
    """PASS when ``value`` meets ``threshold``, FAIL when not, UNKNOWN without a value."""
    if value is None or math.isnan(value):
        return UNKNOWN
    ok = value >= threshold if higher_is_better else value <= threshold
    return PASS if ok else FAIL


def against(status: str, what: str) -> str:
    """How a figure does against the threshold, as a clause: "; fails the same 1 s tolerance"."""
    if status == FAIL:
        return f"; fails the same {what}"
    return f"; meets the same {what}" if status == PASS else ""


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, pluralised: "1 run", "3 runs"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# -- throughput and latency ------------------------------------------------------------------


def _capacity_text(cap: Capacity) -> str:
    target = f" at p99 <= {fmt(cap.p99_target_ms)} ms" if cap.p99_target_ms else ""
    bound = ", a lower bound as its search ended before converging" if cap.lower_bound else ""
    others = ", ".join(f"{b} {fmt(r)}" for b, r in sorted(cap.others.items()))
    return (
        f"{cap.backend} sustained {fmt(cap.rate)} msg/s{target} on {cap.workload}{bound} "
        f"(all: {others}; run {cap.run})"
    )


def _capacity_status(cap: Capacity | None, need: float) -> str:
    if cap is None or cap.rate <= 0:
        return UNKNOWN
    status = judge(cap.rate, need, higher_is_better=True)
    return UNKNOWN if status == FAIL and cap.lower_bound else status


def check_throughput(
    profile: Profile, capacity: Capacity | None, kafka: Capacity | None = None
) -> Criterion:
    """Measured max sustainable rate vs peak x required headroom, for SQLite and Kafka."""
    need = profile.peak_rate * profile.headroom
    kafka_status = _capacity_status(kafka, need)
    common: dict[str, Any] = {
        "key": "throughput",
        "title": "Throughput: peak rate within measured capacity",
        "hard": True,
        "threshold": need,
        "unit": "msg/s",
        "kafka_evidence": (
            "no Kafka max-rate search in the bench results"
            if kafka is None
            else _capacity_text(kafka) + against(kafka_status, "need")
        ),
        "kafka_status": kafka_status,
        "kafka_measured": None if kafka is None else kafka.rate,
    }
    if capacity is None:
        return Criterion(
            status=UNKNOWN,
            evidence="no max_sustainable_rate for a SQLite backend in the bench results",
            would_change=RUN_COMPARE,
            **common,
        )
    if capacity.rate <= 0:
        return Criterion(
            status=UNKNOWN,
            evidence="every SQLite backend failed even the first step of the max-rate search "
            f"(run {capacity.run}): an overloaded machine or a harness problem",
            would_change="rerun `sqlitequeue bench compare` on a quieter machine",
            **common,
        )
    status = _capacity_status(capacity, need)
    evidence = (
        f"{_capacity_text(capacity)}; need {fmt(profile.peak_rate)} peak x "
        f"{profile.headroom:g} headroom = {fmt(need)} msg/s"
    )
    top = fmt(capacity.rate / profile.headroom)
    change = {
        PASS: f"a peak above {top} msg/s",
        FAIL: f"a peak at or below {top} msg/s, less required headroom, a faster machine, "
        "or batching producers",
        UNKNOWN: "a max-rate search that converges (a longer max-rate-1kb budget, or a "
        "quieter machine)",
    }[status]
    ratio = times(capacity.rate / profile.peak_rate)
    return Criterion(
        status=status,
        evidence=evidence,
        headroom=f"{ratio} peak (at least)" if capacity.lower_bound else f"{ratio} peak",
        would_change=change,
        measured=capacity.rate,
        **common,
    )


def _latency_text(found: Latency | float | None, peak: float, system: str) -> str:
    if found is None:
        return f"no fixed-rate {system} runs with an end-to-end p99"
    if isinstance(found, float):
        return f"fixed-rate runs reach only {fmt(found)} msg/s, below the {fmt(peak)} msg/s peak"
    return (
        f"worst e2e p99 {fmt(found.p99_ms)} ms ({found.backend} on {found.workload} at "
        f"{fmt(found.rate)} msg/s, run {found.run})"
    )


def check_latency(profile: Profile, evidence: Evidence, capacity: Capacity | None) -> Criterion:
    """End-to-end p99 at a fixed rate >= peak vs the profile's p99 target, both systems."""
    assert profile.p99_target_ms is not None
    target = profile.p99_target_ms
    mine = fixed_rate_latency(
        evidence, SQLITE, profile.peak_rate, capacity.backend if capacity else None
    )
    network = profile.kafka_network
    theirs = fixed_rate_latency(evidence, KAFKA, profile.peak_rate, network=network)
    kafka_p99 = theirs.p99_ms if isinstance(theirs, Latency) else None
    kafka_status = judge(kafka_p99, target)
    kafka_text = _latency_text(theirs, profile.peak_rate, "Kafka")
    if network is not None and theirs is None:
        kafka_text = (
            f"no fixed-rate Kafka runs over {network} (the profile's kafka_network); "
            f"measure them: `{measure_network_command(network)}`"
        )
    common: dict[str, Any] = {
        "key": "latency",
        "title": "Latency: end-to-end p99 within target",
        "hard": True,
        "threshold": target,
        "unit": "ms",
        "higher_is_better": False,
        "kafka_evidence": kafka_text + against(kafka_status, f"{fmt(target)} ms target"),
        "kafka_status": kafka_status,
        "kafka_measured": kafka_p99,
    }
    text = _latency_text(mine, profile.peak_rate, "SQLite")
    if not isinstance(mine, Latency):
        change = f"a workload at {fmt(profile.peak_rate)} msg/s or more" if mine else RUN_COMPARE
        return Criterion(status=UNKNOWN, evidence=text, would_change=change, **common)
    p99 = mine.p99_ms
    status = judge(p99, target)
    return Criterion(
        status=status,
        evidence=f"{text} vs target {fmt(target)} ms",
        headroom=times(target / p99) if p99 > 0 else "",
        would_change=f"a p99 target below {fmt(p99)} ms"
        if status == PASS
        else f"a p99 target of {fmt(p99)} ms or more",
        measured=p99,
        **common,
    )


# -- the failure lab: unavailability, redelivery, data loss ----------------------------------


def _experiments(outage: Outage, names: dict[str, str]) -> str:
    if len(outage.by_experiment) == 1:
        return names.get(outage.by_experiment[0][0], outage.by_experiment[0][0])
    return ", ".join(f"{names.get(e, e)} {fmt(s)} s" for e, s in outage.by_experiment)


def _outage_text(
    outage: Outage | None, names: dict[str, str], rec: Recovery | None, *, durability: bool
) -> str:
    """The figure in words; ``durability`` names SQLite's durability setting (it matters for
    a host loss, not for a consumer kill)."""
    if outage is None or rec is None:
        return "not measured in the failure-lab results"
    setting = f"; {outage.setting}" if outage.setting else ""
    setting_text = f"durability {rec.durability}; " if durability and rec.system == SQLITE else ""
    return (
        f"worst {fmt(outage.worst_s)} s (median {fmt(outage.median_s)} s) over "
        f"{count(outage.runs, 'run')} of {_experiments(outage, names)}{setting} "
        f"({setting_text}{', '.join(outage.backends)}; run {outage.source})"
    )


#: how the gateway's failure-lab figures are named beside SQLite's (they are not judged)
GATEWAY_OUTAGES = {"broker-kill": "server kill (SIGKILL, restarted at once)"}


def _gateway_outage(gateway: Recovery | None) -> str:
    """ "; through sqlitequeue serve (not judged): ...", or "" when the lab did not measure it."""
    outage = gateway.unavailability if gateway else None
    if outage is None:
        return ""
    return (
        f"; through sqlitequeue serve (not judged): writes back within {fmt(outage.worst_s)} s "
        f"(median {fmt(outage.median_s)} s) over {count(outage.runs, 'run')} of "
        f"{_experiments(outage, GATEWAY_OUTAGES)} (run {outage.source})"
    )


def _gateway_loss(gateway: Recovery | None) -> str:
    """ "; through sqlitequeue serve (not judged): N acknowledged lost ...", or ""."""
    if gateway is None or math.isnan(gateway.rpo_s):
        return ""
    return (
        f"; through sqlitequeue serve (not judged): {count(gateway.lost, 'acknowledged message')}"
        f" lost over {count(gateway.runs, 'run')} (run {gateway.source})"
    )


def _controls(rec: Recovery) -> str:
    return f"; controls not counted: {', '.join(rec.controls)}" if rec.controls else ""


def check_write_unavailability(
    profile: Profile,
    rec: Recovery | None,
    kafka: Recovery | None = None,
    gateway: Recovery | None = None,
) -> Criterion:
    """How long producers cannot write when the host (SQLite) or a broker (Kafka) is lost.

    SQLite: the failure lab's host loss (restore from Litestream, reopen); Kafka: broker kill
    and leader failover. Judged against ``downtime_tolerance_s``, worst case of each system.
    ``gateway``'s server kill (``sqlitequeue serve``), when measured, is named in SQLite's
    evidence, not judged.
    """
    tolerance = profile.downtime_tolerance_s
    outage = rec.unavailability if rec else None
    theirs = kafka.unavailability if kafka else None
    kafka_status = judge(theirs.worst_s if theirs else None, tolerance)
    common: dict[str, Any] = {
        "key": "write_unavailability",
        "title": "Write unavailability: host or broker loss within tolerance",
        "hard": True,
        "threshold": tolerance,
        "unit": "s",
        "higher_is_better": False,
        "kafka_evidence": _outage_text(theirs, UNAVAILABILITY, kafka, durability=True)
        + against(kafka_status, f"{fmt(tolerance)} s tolerance"),
        "kafka_status": kafka_status,
        "kafka_measured": theirs.worst_s if theirs else None,
    }
    if outage is None or rec is None:
        return Criterion(
            status=UNKNOWN,
            evidence="no SQLite host-loss experiment in the failure-lab results"
            + _gateway_outage(gateway),
            would_change=RUN_FAULTS + " (its host-loss experiment needs Litestream)",
            **common,
        )
    status = judge(outage.worst_s, tolerance)
    worst = fmt(outage.worst_s)
    return Criterion(
        status=status,
        evidence=_outage_text(outage, UNAVAILABILITY, rec, durability=True)
        + f" vs tolerance {fmt(tolerance)} s "
        "(downtime_tolerance_s); not counted: noticing the loss and starting the replacement "
        "host, and restore time grows with the file's size" + _gateway_outage(gateway),
        headroom=room(tolerance, outage.worst_s, "no downtime"),
        would_change=f"a downtime tolerance below {worst} s, or a larger file that restores "
        "more slowly"
        if status == PASS
        else f"a downtime tolerance of {worst} s or more, a smaller file (restore time grows "
        "with it), or a standby that keeps restoring from the replica",
        measured=outage.worst_s,
        **common,
    )


def check_redelivery(
    profile: Profile, rec: Recovery | None, kafka: Recovery | None = None
) -> Criterion:
    """How long a crashed consumer's work waits before another consumer gets it.

    SQLite: the failure lab's consumer kill, whose delay is the lease (``lease=`` of
    ``Queue`` and ``Stream.consumer``); Kafka: the same experiment, whose delay is the
    group's ``session.timeout.ms``. Judged against ``redelivery_tolerance_s``.
    """
    tolerance = profile.redelivery_tolerance_s
    outage = rec.redelivery if rec else None
    theirs = kafka.redelivery if kafka else None
    kafka_status = judge(theirs.worst_s if theirs else None, tolerance)
    kafka_fix = (
        f" (set by session.timeout.ms: at most {fmt(_budget(theirs, tolerance) * 1000)} ms "
        "would meet it)"
        if theirs and kafka_status == FAIL
        else ""
    )
    common: dict[str, Any] = {
        "key": "redelivery",
        "title": "Redelivery delay: a crashed consumer's work picked up in time",
        "hard": True,
        "threshold": tolerance,
        "unit": "s",
        "higher_is_better": False,
        "kafka_evidence": _outage_text(theirs, REDELIVERY, kafka, durability=False)
        + against(kafka_status, f"{fmt(tolerance)} s tolerance")
        + kafka_fix,
        "kafka_status": kafka_status,
        "kafka_measured": theirs.worst_s if theirs else None,
    }
    if outage is None or rec is None:
        return Criterion(
            status=UNKNOWN,
            evidence="no SQLite consumer-kill experiment in the failure-lab results",
            would_change=RUN_FAULTS,
            **common,
        )
    status = judge(outage.worst_s, tolerance)
    lease = fmt(_budget(outage, tolerance))
    used = f" (this run used {outage.setting})" if outage.setting else ""
    return Criterion(
        status=status,
        evidence=_outage_text(outage, REDELIVERY, rec, durability=False)
        + f" vs tolerance {fmt(tolerance)} s "
        "(redelivery_tolerance_s); the delay is the consumer's lease, set with lease= "
        "(Queue(path, lease=...), Stream.consumer(group, lease=...))",
        headroom=room(tolerance, outage.worst_s, "no delay"),
        would_change=f"a redelivery tolerance below {fmt(outage.worst_s)} s, or a lease= "
        f"above {lease} s{used}"
        if status == PASS
        else f"a lease= of at most {lease} s{used}, still longer than your slowest message "
        f"takes to process; or a redelivery tolerance of {fmt(outage.worst_s)} s",
        measured=outage.worst_s,
        **common,
    )


def _budget(outage: Outage, tolerance: float) -> float:
    """The longest setting that meets ``tolerance``: tolerance minus the measured overhead."""
    overhead = outage.worst_s - outage.setting_s if outage.setting_s is not None else 0.0
    return max(tolerance - max(overhead, 0.0), 0.0)


def _loss_text(rec: Recovery | None) -> str:
    if rec is None or math.isnan(rec.rpo_s):
        return "not measured in the failure-lab results"
    lost = (
        "no acknowledged message lost"
        if rec.lost == 0
        else f"{count(rec.lost, 'acknowledged message')} lost"
    )
    durability = f"durability {rec.durability}" if rec.system == SQLITE else rec.durability
    return (
        f"worst RPO {fmt(rec.rpo_s)} s, {lost} over {count(rec.runs, 'run')} "
        f"({durability}; run {rec.source})"
    )


def check_data_loss(
    profile: Profile,
    rec: Recovery | None,
    kafka: Recovery | None = None,
    gateway: Recovery | None = None,
) -> Criterion:
    """Worst measured RPO (failure lab) vs data-loss tolerance, for SQLite and Kafka.

    ``gateway``'s losses (``sqlitequeue serve``), when measured, are named in SQLite's
    evidence, not judged.
    """
    tolerance = profile.data_loss_tolerance_s
    kafka_rpo = None if kafka is None or math.isnan(kafka.rpo_s) else kafka.rpo_s
    kafka_status = judge(kafka_rpo, tolerance)
    common: dict[str, Any] = {
        "key": "data_loss",
        "title": "Data loss: recovery point within tolerance",
        "hard": True,
        "threshold": tolerance,
        "unit": "s",
        "higher_is_better": False,
        "kafka_evidence": _loss_text(kafka)
        + against(kafka_status, f"{fmt(tolerance)} s tolerance"),
        "kafka_status": kafka_status,
        "kafka_measured": kafka_rpo,
    }
    if rec is None or math.isnan(rec.rpo_s):
        return Criterion(
            status=UNKNOWN,
            evidence="no SQLite RPO in the failure-lab results" + _gateway_loss(gateway),
            would_change=RUN_FAULTS,
            **common,
        )
    status = judge(rec.rpo_s, tolerance)
    return Criterion(
        status=status,
        evidence=f"{_loss_text(rec)} vs tolerance {fmt(tolerance)} s{_controls(rec)}"
        + _gateway_loss(gateway),
        headroom=room(tolerance, rec.rpo_s, "no loss"),
        would_change=f"a data-loss tolerance below {fmt(rec.rpo_s)} s"
        if status == PASS
        else f"a tolerance of {fmt(rec.rpo_s)} s, a shorter Litestream sync interval, or "
        "synchronous replication",
        measured=rec.rpo_s,
        **common,
    )
