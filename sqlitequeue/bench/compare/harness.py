"""The harness self-check: is the runner itself fast enough for the rates a suite asks?

The ``memory`` backend stores nothing, so whatever rate the runner reaches with it is the
most it could measure on any backend. :func:`selfcheck` runs it at 5x the suite's highest
fixed rate, and at the top rate each max-rate search of the suite will offer (the harness's
ceiling, :func:`~sqlitequeue.bench.runner.verify_ceiling`), so a search that passes its top
can say that the harness, not the backend, was the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.workload import Workload, bundled_names, load_workload, read_trace

if TYPE_CHECKING:
    from sqlitequeue.bench.runner import CeilingCheck

SELFCHECK_FACTOR = 5.0
SELFCHECK_SECONDS = 5.0
#: how long the self-check runs ``memory`` at each max-rate search's top rate (s)
CEILING_SECONDS = 10.0


def suite_peak_rate(names: Sequence[str] | None = None) -> float:
    """Return the highest scheduled rate (msg/s) among the bundled workloads ``names``.

    Fixed shapes report their peak; a trace its busiest second times its speed; a max-rate
    search (``producerRate: 0``) has no fixed rate and is skipped.
    """
    peak = 0.0
    for name in names or bundled_names():
        w = load_workload(name)
        if w.trace is not None:
            counts: dict[int, int] = {}
            for send in read_trace(w.trace):
                second = int(send.at / w.trace.speed)
                counts[second] = counts.get(second, 0) + 1
            peak = max(peak, max(counts.values(), default=0))
        else:
            peak = max(peak, float(w.peak_rate))
    return peak


@dataclass(frozen=True)
class SelfCheck:
    """The harness self-check: could ``memory`` sustain ``target`` msg/s (5x the suite's
    peak), and each max-rate search's top rate (``ceilings``)?"""

    target: float
    achieved: float
    p99_ms: float
    suite_peak: float
    ok: bool
    ceilings: tuple[CeilingCheck, ...] = ()

    def describe(self) -> str:
        """Return the one-line verdict that is printed."""
        verdict = "OK" if self.ok else "NOT MET: the harness may be the bottleneck"
        text = (
            f"harness self-check: memory backend sustained {self.achieved:,.0f} msg/s "
            f"(target {SELFCHECK_FACTOR:g} x suite peak {self.suite_peak:,.0f} = "
            f"{self.target:,.0f} msg/s), e2e p99 {self.p99_ms:.1f} ms"
        )
        for c in self.ceilings:
            text += (
                f"; at the top of {c.workload}'s max-rate search, {c.rate:,.0f} msg/s by "
                f"{c.producers} producer(s): {c.achieved:,.0f} msg/s arrived, e2e p99 "
                f"{c.p99_ms:,.1f} ms, lost {c.lost:,} ({'met' if c.ok else 'NOT met'})"
            )
        return f"{text}: {verdict}"

    def to_dict(self) -> dict[str, Any]:
        """run.json ``selfcheck``: ``ok`` (every part met), ``text``, ``achieved`` (the
        highest rate the harness sustained), ``verified_ceiling`` (the lowest search top
        it sustained, msg/s; None when one was not met or none was checked), ``fixed``
        (the 5x-peak check) and ``ceilings`` (one per max-rate workload)."""
        tops = [c.rate for c in self.ceilings]
        verified = min(tops) if tops and all(c.ok for c in self.ceilings) else None
        return {
            "ok": self.ok,
            "text": self.describe(),
            "achieved": max([self.achieved, *(c.achieved for c in self.ceilings)]),
            "verified_ceiling": verified,
            "target": self.target,
            "p99_ms": self.p99_ms,
            "suite_peak": self.suite_peak,
            "fixed": {"target": self.target, "achieved": self.achieved, "p99_ms": self.p99_ms},
            "ceilings": [asdict(c) for c in self.ceilings],
        }


def selfcheck(
    duration: float | None = None,
    progress: bool = False,
    suite: Sequence[Workload] | None = None,
) -> SelfCheck:
    """Check the harness; return the verdict.

    Runs ``memory`` at 5x the suite's peak fixed rate for ``duration`` s (passes when the
    consume rate is within 5 % of the target, nothing was lost and the end-to-end p99 stayed
    under 50 ms), then, for each max-rate workload of ``suite`` (default: the full suite),
    at the top rate its search will offer, with its producers and message size
    (:func:`~sqlitequeue.bench.runner.verify_ceiling`, for ``duration`` or
    :data:`CEILING_SECONDS` s). ``ok`` only when every part passed. Raises BackendError if
    the backend fails.
    """
    from sqlitequeue.bench.backends.base import BackendSpec
    from sqlitequeue.bench.runner import run_workload, search_ceiling, verify_ceiling
    from sqlitequeue.bench.workload import parse_workload

    peak = suite_peak_rate()
    target = SELFCHECK_FACTOR * peak
    workload = parse_workload(
        {
            "name": "selfcheck",
            "producerRate": target,
            "messageSize": 1024,
            "testDurationSeconds": duration or SELFCHECK_SECONDS,
            "warmupDurationSeconds": 1.0,
        }
    )
    result = run_workload(workload, BackendSpec("memory"), progress=progress)
    achieved = result.scalars["consume_rate_mean"]
    p99 = result.scalars["e2e_latency_ms.p99"]
    ok = achieved >= 0.95 * target and result.scalars["lost"] == 0 and p99 <= 50.0
    if suite is None:
        from sqlitequeue.bench.compare.suites import suite_workloads

        suite = suite_workloads("default")
    searches = [w for w in suite if w.finds_max_rate]
    checked: dict[tuple[float, int, int, int], CeilingCheck] = {}
    for w in searches:
        shape = (search_ceiling(w), w.producers_per_topic * w.topics, w.message_size, w.topics)
        if shape not in checked:
            seconds = duration or CEILING_SECONDS
            checked[shape] = verify_ceiling(
                w, seconds=seconds, warmup=min(2.0, seconds / 4), progress=progress
            )
    ceilings = tuple(checked.values())
    return SelfCheck(target, achieved, p99, peak, ok and all(c.ok for c in ceilings), ceilings)
