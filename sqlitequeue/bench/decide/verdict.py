"""The verdict: a team's profile checked, criterion by criterion, against measured evidence.

:func:`evaluate` checks a :class:`~sqlitequeue.bench.decide.team_profile.Profile` against
:class:`~sqlitequeue.bench.decide.evidence.Evidence` (results folders: ``kind: bench`` for
throughput and latency, ``kind: faults`` for recovery) and the cost model, and returns a
:class:`Decision`:

* each :class:`Criterion` is ``pass``, ``fail`` or ``unknown``, with the evidence (numbers
  and the run they came from), the headroom, and what would flip it;
* hard criteria (throughput, latency, downtime, data loss, single writer, one region,
  ecosystem) decide the verdict: any fail -> "stay on Kafka"; else any unknown ->
  "inconclusive"; else "SQLite fits". Soft criteria (cost, team capacity) become caveats.

Verdicts read only results files (never a backend).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.criteria import (
    FAIL,
    UNKNOWN,
    Criterion,
    check_cost,
    check_data_loss,
    check_downtime,
    check_ecosystem,
    check_latency,
    check_regions,
    check_team,
    check_throughput,
    check_writers,
    fmt,
)
from sqlitequeue.bench.decide.evidence import (
    Evidence,
    Recovery,
    kafka_capacity,
    recovery_by_durability,
    sqlite_capacity,
)
from sqlitequeue.bench.decide.team_profile import Profile

SQLITE_FITS = "SQLite fits"
STAY_ON_KAFKA = "stay on Kafka"
INCONCLUSIVE = "inconclusive"


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


def _pick_recovery(profile: Profile, recoveries: list[Recovery]) -> Recovery | None:
    def meets(r: Recovery) -> bool:
        return r.rto_s <= profile.downtime_tolerance_s and r.rpo_s <= profile.data_loss_tolerance_s

    good = [r for r in recoveries if meets(r)]
    pool = good or [r for r in recoveries if not math.isnan(r.rto_s)] or recoveries
    return min(pool, key=lambda r: (r.rpo_s, r.rto_s)) if pool else None


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
            f"measured here, one Kafka broker ({kafka[1]}): {fmt(kafka[0])} msg/s on {kafka[2]}; "
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
