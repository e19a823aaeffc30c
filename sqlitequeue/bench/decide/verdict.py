"""The verdict: a team's profile checked, criterion by criterion, against measured evidence.

:func:`evaluate` checks a :class:`~sqlitequeue.bench.decide.team_profile.Profile` against
:class:`~sqlitequeue.bench.decide.evidence.Evidence` (results folders: ``kind: bench`` for
throughput and latency, ``kind: faults`` for recovery) and the cost model, and returns a
:class:`Decision`:

* each :class:`Criterion` is ``pass``, ``fail`` or ``unknown``, with the evidence (numbers
  and the run they came from), the headroom, what would flip it, and Kafka's figure from
  the same runs against the same threshold;
* hard criteria (throughput, latency, write unavailability, redelivery delay, data loss,
  single writer, one region, ecosystem) decide the verdict: any fail -> "stay on Kafka";
  else any unknown -> "inconclusive"; else "SQLite fits". Soft criteria (cost, team
  capacity) become caveats. A failed criterion that Kafka fails too is still a fail (the
  team's tolerance is not met), and the summary says so.

Verdicts read only results files (never a backend).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.criteria import (
    FAIL,
    UNKNOWN,
    Criterion,
    check_data_loss,
    check_latency,
    check_redelivery,
    check_throughput,
    check_write_unavailability,
    fmt,
)
from sqlitequeue.bench.decide.evidence import (
    GATEWAY,
    KAFKA,
    SQLITE,
    Evidence,
    Recovery,
    kafka_capacity,
    recovery_by_durability,
    sqlite_capacity,
)
from sqlitequeue.bench.decide.fit import (
    check_cost,
    check_ecosystem,
    check_regions,
    check_team,
    check_writers,
)
from sqlitequeue.bench.decide.team_profile import Profile

SQLITE_FITS = "SQLite fits"
STAY_ON_KAFKA = "stay on Kafka"
INCONCLUSIVE = "inconclusive"


@dataclass
class Decision:
    """The verdict with every criterion, the cost projections, and the sources used.

    ``runs`` describes each results folder used (path, kind, run id, created, quick).
    """

    profile: Profile
    verdict: str
    criteria: list[Criterion]
    changes: list[str]
    projections: list[cost.Projection]
    assumptions: list[str]
    sources: list[str]
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: verdict, each criterion with SQLite's and Kafka's figures
        (``criteria[i]["sqlite"]`` and ``["kafka"]``: status, measured, margin, evidence),
        costs, assumptions and sources. Numbers are rounded; no NaN.
        """
        return {
            "profile": asdict(self.profile),
            "verdict": self.verdict,
            "criteria": [_criterion_dict(c) for c in self.criteria],
            "what_would_change_it": self.changes,
            "monthly_cost_usd": {p.architecture: round(p.total, 2) for p in self.projections},
            "assumptions": self.assumptions,
            "sources": self.sources,
            "runs": self.runs,
        }


def _criterion_dict(c: Criterion) -> dict[str, Any]:
    figures = c.figures()
    return {
        "key": c.key,
        "title": c.title,
        "hard": c.hard,
        "status": c.status,
        "threshold": None if c.threshold is None else float(f"{c.threshold:.4g}"),
        "unit": c.unit,
        "higher_is_better": c.higher_is_better,
        "headroom": c.headroom,
        "would_change": c.would_change,
        "evidence": c.evidence,
        "measured": figures["sqlite"]["measured"],
        "margin": figures["sqlite"]["margin"],
        **figures,
    }


def _kafka_too(c: Criterion) -> str:
    return " (Kafka, measured in the same runs, fails it too)" if c.kafka_status == FAIL else ""


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
        return [f"{c.title}: {c.would_change}{_kafka_too(c)}" for c in chosen] + [
            f"and then: {c.title}: {c.would_change}"
            for c in criteria
            if c.hard and c.status == UNKNOWN
        ]
    if verdict == INCONCLUSIVE:
        return [f"{c.title}: {c.would_change}" for c in criteria if c.hard and c.status == UNKNOWN]
    return [f"{c.title}: {c.would_change}" for c in criteria if c.hard] + [
        f"caveat: {c.title}: {c.evidence}" for c in criteria if not c.hard and c.status == FAIL
    ]


def _pick_recovery(profile: Profile, recoveries: list[Recovery]) -> Recovery | None:
    """The durability setting that meets both tolerances, else the one that loses least."""

    def down(r: Recovery) -> float:
        return r.unavailability.worst_s if r.unavailability else math.nan

    def meets(r: Recovery) -> bool:
        return down(r) <= profile.downtime_tolerance_s and r.rpo_s <= profile.data_loss_tolerance_s

    good = [r for r in recoveries if meets(r)]
    pool = good or [r for r in recoveries if not math.isnan(r.rpo_s)] or recoveries
    return min(pool, key=lambda r: (_key(r.rpo_s), _key(down(r)))) if pool else None


def _key(x: float) -> float:
    return math.inf if math.isnan(x) else x


def evaluate(
    profile: Profile, evidence: Evidence, params: cost.Parameters | None = None
) -> Decision:
    """Check ``profile`` against ``evidence`` and the cost model; return the :class:`Decision`."""
    params = params or cost.load_parameters()
    if profile.vm_exists:
        params = params.override({"vm_exists": True}, origin=f"profile {profile.name}")
    capacity = sqlite_capacity(evidence)
    kafka = kafka_capacity(evidence)
    recovery = _pick_recovery(profile, recovery_by_durability(evidence, SQLITE))
    kafka_recovery = _pick_recovery(profile, recovery_by_durability(evidence, KAFKA))
    gateway_recovery = _pick_recovery(profile, recovery_by_durability(evidence, GATEWAY))
    traffic = profile.traffic()
    projections = cost.project(traffic, params, sqlite_capacity=capacity.rate if capacity else None)
    criteria = [check_throughput(profile, capacity, kafka)]
    if profile.p99_target_ms is not None:
        criteria.append(check_latency(profile, evidence, capacity))
    criteria += [
        check_write_unavailability(profile, recovery, kafka_recovery, gateway_recovery),
        check_redelivery(profile, recovery, kafka_recovery),
        check_data_loss(profile, recovery, kafka_recovery, gateway_recovery),
        check_writers(profile),
        check_regions(profile),
        check_ecosystem(profile),
        check_cost(profile, projections),
        check_team(profile),
    ]
    verdict = verdict_of(criteria)
    assumptions = cost.common_assumptions(traffic, params)
    if kafka is not None:
        assumptions.append(
            f"measured here, one Kafka broker ({kafka.backend}): {fmt(kafka.rate)} msg/s on "
            f"{kafka.workload}; Kafka is sized by the published per-broker rule, not by this "
            "machine"
        )
    return Decision(
        profile=profile,
        verdict=verdict,
        criteria=criteria,
        changes=_changes(verdict, criteria),
        projections=projections,
        assumptions=assumptions,
        sources=evidence.sources,
        runs=evidence.runs(),
    )
