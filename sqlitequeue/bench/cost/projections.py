"""Projections over many rates: tables, sweeps, break-even points and charts of the cost model."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

from sqlitequeue.bench.cost.model import (
    CATEGORIES,
    Projection,
    Traffic,
    project,
)
from sqlitequeue.bench.cost.parameters import (
    ARCHITECTURES,
    KAFKA_ARCHITECTURES,
    Parameters,
    load_parameters,
)


def format_table(projections: Iterable[Projection]) -> str:
    """Return a plain-text table: architecture, monthly total, biggest line items."""
    rows = [("architecture", "USD/month", "main charges")]
    for p in projections:
        top = sorted(p.items, key=lambda i: -i.monthly_usd)[:3]
        charges = "; ".join(f"{i.name} ${i.monthly_usd:,.2f}" for i in top)
        total = f"{p.total:,.2f}" + ("" if p.feasible else " (over capacity)")
        rows.append((p.label, total, charges))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]}" for r in rows)


# ------------------------------------------------------------------------------ sweeps


def sweep(
    traffic: Traffic,
    rates: Sequence[float],
    params: Parameters | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Project every architecture at each peak rate in ``rates``.

    The average keeps ``traffic``'s average/peak ratio. Returns a DataFrame with columns
    ``peak_rate, architecture, label, total, feasible``. ``kwargs`` go to :func:`project`.
    """
    import pandas as pd

    params = params or load_parameters()
    ratio = traffic.average / traffic.peak_rate
    rows = []
    for rate in rates:
        t = replace(traffic, peak_rate=float(rate), average_rate=float(rate) * ratio)
        for p in project(t, params, **kwargs):
            rows.append(
                {
                    "peak_rate": float(rate),
                    "architecture": p.architecture,
                    "label": p.label,
                    "total": p.total,
                    "feasible": p.feasible,
                }
            )
    return pd.DataFrame(rows)


def break_even_points(
    sweep_df: pd.DataFrame,
    reference: str = "sqlite-s3",
    against: Sequence[str] = KAFKA_ARCHITECTURES,
) -> pd.DataFrame:
    """Return the peak rates at which ``reference`` and each of ``against`` swap places.

    Crossings are interpolated between swept rates (log-linear). One row per crossing with
    columns ``architecture, label, peak_rate, cost, cheaper_below, cheaper_above``; an
    architecture that never crosses gets one row with ``peak_rate`` NaN and the one that is
    cheaper throughout in both ``cheaper_*`` columns. Infeasible ``reference`` points are
    ignored: over its measured capacity it is not an option at any price.
    """
    import pandas as pd

    ref = sweep_df[(sweep_df.architecture == reference) & sweep_df.feasible]
    ref = ref.set_index("peak_rate").total
    rows = []
    for arch in against:
        other = sweep_df[sweep_df.architecture == arch].set_index("peak_rate").total
        diff = (ref - other).dropna().sort_index()
        found = False
        for (r0, d0), (r1, d1) in zip(diff.items(), list(diff.items())[1:], strict=False):
            if (d0 < 0) == (d1 < 0):
                continue
            frac = d0 / (d0 - d1)
            rate = 10 ** (math.log10(r0) + frac * (math.log10(r1) - math.log10(r0)))
            cost = float(ref[r0] + frac * (ref[r1] - ref[r0]))
            below, above = (reference, arch) if d0 < 0 else (arch, reference)
            rows.append((arch, ARCHITECTURES[arch], rate, cost, below, above))
            found = True
        if not found and not diff.empty:
            cheaper = reference if diff.iloc[0] < 0 else arch
            rows.append((arch, ARCHITECTURES[arch], float("nan"), float("nan"), cheaper, cheaper))
    columns = ["architecture", "label", "peak_rate", "cost", "cheaper_below", "cheaper_above"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------ charts


def plot_cost_vs_throughput(
    sweep_df: pd.DataFrame,
    break_even: pd.DataFrame | None = None,
    sqlite_capacity: float | None = None,
) -> Figure:
    """Line chart of monthly cost against peak rate, one line per architecture (log-log).

    Infeasible points are left out; break-even rates and the measured SQLite capacity are
    drawn as vertical markers when given.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for arch, group in sweep_df.groupby("architecture", sort=False):
        ok = group[group.feasible]
        style = "--" if str(arch).startswith("sqlite") else "-"
        ax.plot(ok.peak_rate, ok.total, style, marker=".", label=ARCHITECTURES[str(arch)])
    if sqlite_capacity:
        ax.axvline(sqlite_capacity, color="grey", linestyle=":", label="measured SQLite capacity")
    if break_even is not None:
        points = break_even.dropna(subset=["peak_rate"])
        ax.scatter(points.peak_rate, points.cost, color="black", zorder=5, label="break-even")
        for _, row in points.iterrows():
            ax.annotate(
                f"{row.peak_rate:,.0f}/s",
                (row.peak_rate, row.cost),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("peak rate (msg/s)")
    ax.set_ylabel("USD per month")
    ax.set_title("Monthly cost vs throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_breakdown(projections: Sequence[Projection]) -> Figure:
    """Stacked horizontal bars: each architecture's monthly bill split by charge category.

    Categories are :data:`CATEGORIES` (compute, storage, data transfer, requests); the total
    is written at the end of each bar.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.5 * len(projections) + 1.8))
    ax = fig.subplots()
    labels = [p.label + ("" if p.feasible else " (over capacity)") for p in projections]
    left = [0.0] * len(projections)
    for category in CATEGORIES:
        widths = [
            sum(i.monthly_usd for i in p.items if i.category == category) for p in projections
        ]
        ax.barh(range(len(projections)), widths, left=left, label=category)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, p in enumerate(projections):
        ax.text(left[y], y, f" ${p.total:,.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(projections)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("USD per month")
    ax.set_xlim(0, max(left, default=1.0) * 1.2 or 1.0)
    ax.set_title("Cost breakdown")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def default_rates(peak_rate: float) -> list[float]:
    """A log-spaced sweep from 1 msg/s to well past ``peak_rate`` (at least 100k msg/s)."""
    top = max(100_000.0, peak_rate * 10)
    n = math.ceil(math.log10(top)) * 4
    return [round(10 ** (i / 4), 3) for i in range(n + 1)]
