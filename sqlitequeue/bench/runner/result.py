"""What one run measured (:class:`RunResult`), how it is summed up, and how it is stored.

Scalars cover the measured window only (after the warm-up); counts of messages (sent, lost,
duplicates ...) cover the whole run. :func:`write_result` stores a result with a
:class:`~sqlitequeue.bench.results.RunWriter`; nothing here draws or formats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.metrics import Histogram
from sqlitequeue.bench.runner.live import Live
from sqlitequeue.bench.runner.ramp import RateSearch, RateStep, SearchEnd
from sqlitequeue.bench.workload import Workload

#: one sampled value of a time series: (metric, seconds after the warm-up, value)
SeriesPoint = tuple[str, float, float]


@dataclass
class RunResult:
    """What one (workload, backend) run measured; see :func:`write_result`."""

    backend: str
    workload: str
    target_rate: float
    describe: dict[str, Any]
    scalars: dict[str, float] = field(default_factory=dict)
    series: list[SeriesPoint] = field(default_factory=list)
    publish: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)
    steps: list[RateStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def target_rate(w: Workload) -> float:
    """The workload's mean scheduled rate (msg/s); 0 for a max-rate search or a trace."""
    if w.finds_max_rate:
        return 0.0
    if w.trace is not None:
        return 0.0
    s = w.shape
    if s.type == "daily":
        trough = s.trough_rate or s.peak_rate / 10
        return (trough + s.peak_rate) / 2
    if s.type == "bursts":
        frac = min(1.0, s.burst_seconds / s.period_seconds)
        return w.producer_rate * (1 - frac) + s.burst_rate * frac
    return w.producer_rate


def measured_scalars(
    w: Workload,
    live: Live,
    publish: Histogram,
    e2e: Histogram,
    series: list[SeriesPoint],
    *,
    drain_seconds: float | None,
    search: RateSearch | None = None,
) -> dict[str, float]:
    """The run's scalars: counts from ``live``, rates and latencies from the measured
    ``publish`` and ``e2e`` histograms, the final disk size from ``series``; a drain's
    length when one was measured, and a max-rate ``search``'s outcome
    (:func:`search_scalars`)."""
    window = max(w.duration_seconds - w.warmup_seconds, 1e-6)
    unique, lost = live.unique_and_lost()
    s: dict[str, float] = {
        "target_rate": target_rate(w),
        "sent": live.total_sent(),
        "unsent": live.unsent,
        "acknowledged": live.total_acked(),
        "received": live.total_received(),
        "unique_received": unique,
        "errors": live.errors,
        "duplicates": live.total_received() - unique,
        "lost": lost,
        "publish_rate_mean": publish.total / window,
        "consume_rate_mean": e2e.total / window / max(1, w.subscriptions_per_topic),
        "duration_seconds": w.duration_seconds,
        "warmup_seconds": w.warmup_seconds,
        "p99_target_ms": w.p99_target_ms,
    }
    for name, value in publish.summary().items():
        s[f"publish_latency_ms.{name}"] = value
    for name, value in e2e.summary().items():
        s[f"e2e_latency_ms.{name}"] = value
    disk = [v for m, _, v in series if m == "disk_bytes"]
    if disk:
        s["disk_bytes_final"] = disk[-1]
    if drain_seconds is not None:
        s["drain_seconds"] = drain_seconds
        s["backlog_messages"] = w.consumer_backlog_messages
    if search is not None:
        s.update(search_scalars(search))
    return s


def search_scalars(search: RateSearch) -> dict[str, float]:
    """A max-rate search's outcome as scalars (msg/s unless named otherwise).

    ``max_sustainable_rate``: the highest rate that passed (0 if none);
    ``max_rate_failed``: the lowest that missed twice in a row (when one did);
    ``max_rate_gap``: how far above the first the second is (0.1 = 10 %; the search's
    resolution once it converged); ``max_rate_top``: the highest rate it would offer;
    ``max_rate_harness_limited``: 1 when the top passed, so the harness, not the backend,
    was the limit (the backend's own maximum is higher), else 0.
    """
    s = {
        "max_sustainable_rate": search.passing,
        "max_rate_top": search.top,
        "max_rate_resolution": search.resolution,
        "max_rate_harness_limited": float(search.ended is SearchEnd.CEILING),
    }
    if search.failing is not None:
        s["max_rate_failed"] = search.failing
    if search.gap is not None:
        s["max_rate_gap"] = search.gap
    return s


def result_notes(live: Live, steps: list[RateStep], search: RateSearch | None) -> list[str]:
    """Notes on what a reader of the numbers should know: how a max-rate search ended,
    unsent messages, send errors."""
    notes = []
    if search is not None:
        notes.append(search_note(search, steps))
    elif live.unsent:
        notes.append(
            f"{live.unsent} scheduled message(s) were never sent: the producers fell "
            "behind the schedule and the run ended first"
        )
    if live.errors and live.last_error:
        notes.append(f"{live.errors} send error(s); last: {live.last_error}")
    return notes


def search_note(search: RateSearch, steps: list[RateStep]) -> str:
    """One sentence on how a max-rate search ended and what its figure means."""
    lo, hi = search.passing, search.failing
    missed = [s for s in steps if not s.ok and s.target_rate == hi]
    why = ""
    if missed:
        last = missed[-1]
        why = f" (p99 {last.p99_ms:,.1f} ms, {last.achieved_rate:,.0f} msg/s arrived)"
    match search.ended:
        case SearchEnd.CEILING:
            return (
                f"max-rate search: the target was met at the search's top, {search.top:,.0f} "
                "msg/s, the harness's ceiling: the harness, not the backend, was the limit "
                "(the backend's own maximum is higher)"
            )
        case SearchEnd.CONVERGED:
            return (
                f"max-rate search: {lo:,.0f} msg/s met the target, {hi:,.0f} msg/s missed it "
                f"twice in a row{why}; the maximum lies between them "
                f"({search.gap or 0:.0%} apart, resolution {search.resolution:.0%})"
            )
        case SearchEnd.FLOOR:
            return (
                f"max-rate search: the target was missed at every rate tried, down to "
                f"{hi or 0:,.0f} msg/s{why}"
            )
    if lo:
        bounds = f"at least {lo:,.0f} msg/s" + (f" and below {hi:,.0f} msg/s" if hi else "")
    else:
        bounds = f"below {hi:,.0f} msg/s (no rate tried met the target)" if hi else "unknown"
    cause = (
        "its time budget (the workload's duration) ran out"
        if search.ended is SearchEnd.BUDGET
        else "a failed step's backlog did not drain"
    )
    return (
        f"max-rate search stopped after {len(steps)} step(s) before reaching its resolution "
        f"({search.resolution:.0%}): {cause}; the maximum is {bounds}"
    )


def write_result(writer: Any, result: RunResult) -> None:
    """Store ``result`` with ``writer`` (a RunWriter): scalars, series, histograms, steps.

    Adds ``latency_hist.csv`` rows (kind ``publish``/``e2e``), ``rate_steps.csv`` for a
    max-rate search, and the backend's ``describe()`` and notes under run.json keys
    ``backends`` and ``notes``.
    """
    b, w = result.backend, result.workload
    writer.metrics([(b, w, m, None, v) for m, v in result.scalars.items()])
    writer.metrics([(b, w, m, t, v) for m, t, v in result.series])
    for kind, hist in (("publish", result.publish), ("e2e", result.e2e)):
        writer.table(
            "latency_hist",
            [
                {"backend": b, "workload": w, "kind": kind, "upper_ms": u, "count": c}
                for u, c in hist.buckets_ms()
            ],
        )
    if result.steps:
        writer.table(
            "rate_steps", [{"backend": b, "workload": w, **asdict(s)} for s in result.steps]
        )
    writer.metadata(backends={b: result.describe})
    if result.notes:
        writer.metadata(notes={f"{b} / {w}": result.notes})
    writer.flush()


def check_registry(names: Iterable[str]) -> None:
    """Raise BenchError naming the unknown backends among ``names``."""
    unknown = [n for n in names if n not in base.BACKENDS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0].split("@")[0], list(base.BACKENDS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BenchError(
            f"unknown backend(s) {', '.join(unknown)}; {hint}choose from {', '.join(base.BACKENDS)}"
        )
