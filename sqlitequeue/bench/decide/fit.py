"""The checklist's lines that the profile and the cost model answer, not a measurement.

Single writer, one region and no Kafka ecosystem are hard criteria; cost and team are soft.
Each returns a :class:`~sqlitequeue.bench.decide.criteria.Criterion` with what Kafka offers
beside SQLite's answer (``kafka_status`` "" where Kafka is not judged).
"""

from __future__ import annotations

from typing import Any

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.criteria import FAIL, PASS, Criterion, fmt
from sqlitequeue.bench.decide.team_profile import Profile


def check_writers(profile: Profile) -> Criterion:
    """One writer host, or several that can funnel through one writer service."""
    common: dict[str, Any] = {
        "key": "writers",
        "title": "Single writer",
        "hard": True,
        "kafka_evidence": "Kafka takes writes from any number of producer hosts",
        "kafka_status": PASS,
    }
    if profile.writers == 1:
        return Criterion(
            status=PASS,
            evidence="1 writer host",
            would_change="a second writer host",
            **common,
        )
    if profile.writers_can_funnel:
        return Criterion(
            status=PASS,
            evidence=f"{profile.writers} writers funnel through one writer service (its rate "
            "is what the throughput check measures)",
            would_change="writers that cannot go through one service",
            **common,
        )
    return Criterion(
        status=FAIL,
        evidence=f"{profile.writers} writer hosts that cannot funnel: one SQLite file has one "
        "writer",
        would_change="routing all writes through one service (writers_can_funnel: true)",
        **common,
    )


def check_regions(profile: Profile) -> Criterion:
    """Writes from one region only."""
    ok = profile.regions == 1
    return Criterion(
        key="regions",
        title="One region",
        status=PASS if ok else FAIL,
        hard=True,
        evidence=f"{profile.regions} region{'' if ok else 's'} accept{'s' if ok else ''} writes",
        would_change="writes from a second region" if ok else "writes from a single region",
        kafka_evidence="Kafka takes writes in several regions, with a cluster in each and "
        "replication between them (MirrorMaker 2, Cluster Linking)",
        kafka_status=PASS,
    )


def check_ecosystem(profile: Profile) -> Criterion:
    """No reliance on Kafka Streams, ksqlDB, Connect and friends."""
    common: dict[str, Any] = {
        "key": "ecosystem",
        "title": "No Kafka ecosystem dependency",
        "hard": True,
        "kafka_evidence": "Kafka runs its ecosystem natively",
        "kafka_status": PASS,
    }
    if not profile.kafka_ecosystem:
        return Criterion(
            status=PASS,
            evidence="no Kafka ecosystem tools needed",
            would_change="adopting Kafka Streams, ksqlDB or Connect",
            **common,
        )
    return Criterion(
        status=FAIL,
        evidence=f"relies on {', '.join(profile.kafka_ecosystem)}",
        would_change="replacing those tools",
        **common,
    )


def check_cost(profile: Profile, projections: list[cost.Projection]) -> Criterion:
    """The SQLite projection vs the cheapest Kafka option (and the budget, if any)."""
    sqlite = next(p for p in projections if p.architecture == f"sqlite-{profile.object_store}")
    kafka = min(
        (p for p in projections if p.architecture in cost.KAFKA_ARCHITECTURES),
        key=lambda p: p.total,
    )
    budget = profile.monthly_budget_usd
    over_budget = budget is not None and sqlite.total > budget
    budget_text = "" if budget is None else f"; budget ${budget:,.2f}"
    kafka_status = "" if budget is None else (PASS if kafka.total <= budget else FAIL)
    common: dict[str, Any] = {
        "key": "cost",
        "title": "Cost: SQLite cheaper than Kafka",
        "hard": False,
        "unit": "USD/month",
        "higher_is_better": False,
        "kafka_evidence": f"cheapest Kafka: {kafka.label}, ${kafka.total:,.2f}/month"
        + ("" if budget is None else f" ({'within' if kafka_status == PASS else 'over'} budget)"),
        "kafka_status": kafka_status,
        "kafka_measured": kafka.total,
    }
    if not sqlite.feasible:
        return Criterion(
            status=FAIL,
            evidence=f"{sqlite.label} cannot carry the {fmt(profile.peak_rate)} msg/s peak on "
            f"one machine (over its measured capacity), so its ${sqlite.total:,.2f}/month is "
            "moot",
            headroom="over capacity",
            would_change="a peak within the measured SQLite capacity",
            **common,
        )
    ok = sqlite.total < kafka.total
    saving = kafka.total - sqlite.total
    return Criterion(
        status=PASS if ok and not over_budget else FAIL,
        evidence=f"{sqlite.label} ${sqlite.total:,.2f}/month vs cheapest Kafka, {kafka.label}, "
        f"${kafka.total:,.2f}/month{budget_text}",
        headroom=f"saves ${saving:,.2f}/month" if ok else f"costs ${-saving:,.2f}/month more",
        would_change="prices or traffic that make Kafka cheaper (see the break-even chart)"
        if ok
        else "more traffic (usage-priced Kafka grows with bytes) or cheaper object storage",
        measured=sqlite.total,
        threshold=kafka.total,
        **common,
    )


def check_team(profile: Profile) -> Criterion:
    """Whether operational simplicity is a primary concern for this team."""
    common: dict[str, Any] = {
        "key": "team",
        "title": "Team: simplicity matters more than Kafka's features",
        "hard": False,
        "kafka_evidence": "Kafka needs people who run it, or a managed service's bill",
    }
    if profile.team_capacity == "small":
        return Criterion(
            status=PASS,
            evidence="a small team without capacity to run a distributed system",
            would_change="a team with engineers to run Kafka properly",
            **common,
        )
    return Criterion(
        status=FAIL,
        evidence="the team has engineers to run Kafka properly; simplicity gains are smaller",
        would_change="losing that capacity",
        **common,
    )
