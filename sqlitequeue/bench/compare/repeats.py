"""Repeats of one backend x workload: every repeat's scalars kept, medians in metrics.csv.

A full comparison runs each workload several times (``repeats``, default 3; backends take
turns within each repeat). What it writes for one backend x workload:

* ``repeats.csv``: every successful repeat's run-level scalars, long format
  ``run_id, backend, workload, repeat, metric, value`` (``repeat`` counts from 1);
* ``metrics.csv`` scalars: the median over the repeats of each scalar, except the counts
  of things that went wrong (:data:`WORST_OF`: lost, errors, duplicates), which are the
  worst (largest) repeat's, so a loss in one repeat is never hidden by a median;
* time series, ``latency_hist.csv`` and ``rate_steps.csv``: those of the *median repeat*,
  the one whose headline figure (``max_sustainable_rate`` for a max-rate search, else
  ``e2e_latency_ms.p99``) is the median; run.json ``representative_repeat`` names it per
  ``"BACKEND / WORKLOAD"``. Notes of every repeat are kept, prefixed ``repeat k:``.

:func:`spread` turns the repeats into median, min, max and quartiles per figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

#: scalars where the worst repeat counts, not the median
WORST_OF = frozenset({"lost", "errors", "duplicates"})
#: figures the end-of-run spread table shows: (scalar, label, format)
SPREAD_FIGURES = (
    ("consume_rate_mean", "msg/s", "{:,.0f}"),
    ("e2e_latency_ms.p50", "e2e p50 ms", "{:,.2f}"),
    ("e2e_latency_ms.p99", "e2e p99 ms", "{:,.2f}"),
    ("max_sustainable_rate", "max sustainable msg/s", "{:,.0f}"),
)


def headline(scalars: dict[str, float]) -> str:
    """The scalar that picks the median repeat (see the module docstring)."""
    return "max_sustainable_rate" if "max_sustainable_rate" in scalars else "e2e_latency_ms.p99"


def combine(results: Sequence[tuple[int, Any]]) -> tuple[int, Any]:
    """Return ``(repeat, result)``: the median repeat's RunResult with combined scalars.

    ``results`` are ``(repeat, RunResult)`` of the successful repeats (at least one). The
    returned result is the median repeat's object, changed in place: its scalars become
    the medians (worst for :data:`WORST_OF`) and its notes gather every repeat's.
    """
    if len(results) == 1:
        return results[0]
    key = headline(results[0][1].scalars)
    ordered = sorted(results, key=lambda r: r[1].scalars.get(key, 0.0))
    repeat, chosen = ordered[(len(ordered) - 1) // 2]
    names = {name for _, r in results for name in r.scalars}
    combined = {}
    for name in sorted(names):
        values = [r.scalars[name] for _, r in results if name in r.scalars]
        combined[name] = max(values) if name in WORST_OF else statistics.median(values)
    notes = [f"repeat {k}: {note}" for k, r in sorted(results, key=_first) for note in r.notes]
    chosen.scalars = combined
    chosen.notes = notes
    return repeat, chosen


def repeat_rows(repeat: int, result: Any) -> list[dict[str, Any]]:
    """The ``repeats.csv`` rows of one repeat's result."""
    return [
        {
            "backend": result.backend,
            "workload": result.workload,
            "repeat": repeat,
            "metric": name,
            "value": value,
        }
        for name, value in result.scalars.items()
    ]


def spread(values: Sequence[float]) -> dict[str, float]:
    """``median``, ``min``, ``max``, ``q1``, ``q3`` and ``n`` of ``values`` (non-empty)."""
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "n": float(len(ordered)),
    }


def spread_lines(
    per_run: dict[tuple[str, str], dict[int, dict[str, float]]], repeats: int
) -> list[str]:
    """Terminal lines: each backend x workload's figures as ``median [min-max]``.

    ``per_run`` maps (backend, workload) to repeat -> scalars.
    """
    if repeats < 2 or not per_run:
        return []
    lines = [f"median [min-max] over {repeats} repeats:"]
    for (backend, workload), by_repeat in per_run.items():
        parts = []
        for name, label, fmt in SPREAD_FIGURES:
            values = [s[name] for s in by_repeat.values() if name in s]
            if values:
                parts.append(f"{label} {_spread_text(spread(values), fmt.format)}")
        missing = repeats - len(by_repeat)
        tail = f"  ({missing} repeat(s) failed)" if missing else ""
        lines.append(f"  {backend:>15} {workload:<18} " + "  ".join(parts) + tail)
    return lines


def _spread_text(s: dict[str, float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(s['median'])} [{fmt(s['min'])}-{fmt(s['max'])}]"


def _first(item: tuple[int, Any]) -> int:
    return item[0]
