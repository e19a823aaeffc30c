"""Notebook 03's cost projection for a team profile, and its answer as Markdown.

:func:`cost_study` prices every architecture for the profile's traffic with
:mod:`sqlitequeue.bench.cost` (list prices with sources and dates), ends the SQLite lines
at the SQLite capacity measured in a results folder, finds where the lines cross, and
checks the seed article's "under $5/month" on an existing VM; :func:`cost_answer` says
what that means, every number from the study.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sqlitequeue.bench import cost
    from sqlitequeue.bench.decide.team_profile import Profile

#: the Litestream sync intervals (s) the "under $5" check tries
SYNC_INTERVALS = (1.0, 10.0, 60.0)


@dataclass
class CostStudy:
    """One team's bill per architecture, the sweep over peak rates, and where lines cross.

    ``reference`` is the SQLite architecture of the profile's object store
    (``sqlite-s3``...); ``capacity`` the measured SQLite capacity (msg/s, None when
    unknown); ``under5`` one row per SQLite architecture and sync interval on an existing
    VM (``architecture``, ``sync interval s``, ``USD/month``, ``under $5``).
    """

    profile: Profile
    params: cost.Parameters
    traffic: cost.Traffic
    capacity: float | None
    reference: str
    projections: list[cost.Projection]
    sweep: pd.DataFrame
    points: pd.DataFrame
    under5: pd.DataFrame


def cost_study(
    profile: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    params_file: str | os.PathLike[str] | None = None,
    results: str | os.PathLike[str] | None = None,
    broker_mib_s: float | None = None,
) -> CostStudy:
    """Price ``profile``'s traffic (a team profile YAML) with the cost parameters
    (``params_file`` and ``overrides`` on top), the SQLite capacity measured in
    ``results`` (a compare run; None: unbounded) and ``broker_mib_s`` (a measured broker
    ingress to size Kafka). Raises ProfileError or BenchError for bad input."""
    import pandas as pd

    from sqlitequeue.bench import cost
    from sqlitequeue.bench.decide.evidence import gather_evidence, sqlite_capacity
    from sqlitequeue.bench.decide.team_profile import load_profile

    params = cost.load_parameters(params_file).override(dict(overrides or {}), origin="notebook")
    team = load_profile(profile)
    origin = f"profile {team.name}"
    if team.vm_exists:
        params = params.override({"vm_exists": True}, origin=origin)
    params = params.override({"object_store": team.object_store}, origin=origin)
    traffic = team.traffic()
    measured = sqlite_capacity(gather_evidence([results])) if results else None
    capacity = measured.rate if measured else None
    kwargs: dict[str, Any] = {"sqlite_capacity": capacity, "measured_broker_mib_s": broker_mib_s}
    reference = f"sqlite-{params['object_store']}"
    sweep = cost.sweep(traffic, cost.default_rates(traffic.peak_rate), params, **kwargs)
    existing = params.override({"vm_exists": True}, origin="under-$5 check")
    rows = []
    for store in cost.SQLITE_ARCHITECTURES:
        for interval in SYNC_INTERVALS:
            p = existing.override({"litestream_sync_interval_s": interval}, origin="under-$5 check")
            (proj,) = cost.project(traffic, p, architectures=[store])
            rows.append(
                {"architecture": proj.label, "sync interval s": interval, "USD/month": proj.total}
            )
    under5 = pd.DataFrame(rows)
    under5["under $5"] = (under5["USD/month"] < 5).map({True: "yes", False: "no"})
    return CostStudy(
        profile=team,
        params=params,
        traffic=traffic,
        capacity=capacity,
        reference=reference,
        projections=cost.project(traffic, params, **kwargs),
        sweep=sweep,
        points=cost.break_even_points(sweep, reference),
        under5=under5,
    )


def cost_answer(study: CostStudy) -> str:
    """The study's answer as Markdown bullets: the cheapest option, the profile's SQLite
    architecture against the cheapest Kafka and MSK, where the lines cross, the measured
    capacity, and whether "under $5/month" holds."""
    from sqlitequeue.bench import cost

    s, traffic = study, study.traffic
    cheapest = min((p for p in s.projections if p.feasible), key=lambda p: p.total)
    mine = next(p for p in s.projections if p.architecture == s.reference)
    kafkas = [p for p in s.projections if p.architecture in cost.KAFKA_ARCHITECTURES]
    kafka = min(kafkas, key=lambda p: p.total)
    msk = next((p for p in s.projections if p.architecture == "msk"), None)
    driver = max(mine.items, key=lambda i: i.monthly_usd)
    lines = [
        f"At a peak of {traffic.peak_rate:,.0f} msg/s (average {traffic.average:,.0f}), the "
        f"cheapest option is **{cheapest.label}** at ${cheapest.total:,.2f}/month.",
        f"{mine.label} costs ${mine.total:,.2f}/month; its biggest charge is {driver.name} "
        f"(${driver.monthly_usd:,.2f}). The cheapest Kafka option, {kafka.label}, costs "
        f"${kafka.total:,.2f}/month"
        + (
            f"; MSK provisioned ${msk.total:,.2f} ({msk.total / mine.total:,.0f}x SQLite)."
            if msk is not None and mine.total > 0
            else "."
        ),
    ]
    for row in s.points.itertuples():
        if math.isnan(row.peak_rate):
            lines.append(
                f"Against {row.label}, {row.cheaper_below} is cheaper over the whole sweep."
            )
        else:
            lines.append(
                f"Against {row.label}, the lines cross at about {row.peak_rate:,.0f} msg/s "
                f"(${row.cost:,.2f}/month): {row.cheaper_below} is cheaper below, "
                f"{row.cheaper_above} above."
            )
    if s.capacity:
        lines.append(
            f"The measured SQLite capacity ({s.capacity:,.0f} msg/s) ends the SQLite lines."
        )
    ok = s.under5[s.under5["under $5"] == "yes"]
    if ok.empty:
        lines.append(
            "The seed article's *under $5/month* is out of reach for this traffic, even on an "
            "existing VM."
        )
    else:
        first = ok.sort_values("USD/month").iloc[0]
        lines.append(
            "Under $5/month (the seed article's figure) holds only on an existing VM: e.g. "
            f"{first['architecture']} with a {first['sync interval s']:g} s sync interval, "
            f"${first['USD/month']:,.2f}/month ({len(ok)} of {len(s.under5)} combinations tried)."
        )
    return "\n".join(f"- {line}" for line in lines)
