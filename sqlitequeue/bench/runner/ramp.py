"""The max-rate search: ramp up until the backend misses its target, then bisect.

After the warm-up (at ``producerStartRate``, never judged), each step offers one rate for
``rampStepSeconds``. A step *passes* when the end-to-end p99 of the messages scheduled in it
is within ``p99TargetMs`` and at least 95 % of them arrived. One miss alone is taken as a
stall: the same rate is tried again, and only two misses in a row make it a failing rate.

:class:`RateSearch` decides the rates, from the outcomes alone (no clocks, no processes):

1. *ramp*: from the start rate, double after every pass, up to the search's top
   (``producerMaxRate``, by default the harness's ceiling); when the top passes, the search
   ends there and the harness, not the backend, was the limit;
2. *bisect*: between the highest passing rate and the lowest failing one, try their
   geometric mean (to three significant digits), until the failing rate is within
   ``searchResolution`` (default 10 %) of the passing one. The maximum sustainable rate is
   the highest passing rate.

When even the start rate fails, the search halves it until a rate passes, then bisects.

:class:`SearchDriver` runs a search in the parent process: it publishes each step to the
producers (:meth:`Control.publish`), judges it once its messages had time to arrive, and
waits for any backlog to drain before the next step, so every step starts from an empty
queue. Producers turn the published steps into sends with :func:`search_sends`. Every step
is recorded as a :class:`RateStep` (``rate_steps.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from sqlitequeue.bench.runner.control import REPORT_EVERY, Control, Segment
from sqlitequeue.bench.runner.latency import WINDOW
from sqlitequeue.bench.runner.live import Live
from sqlitequeue.bench.workload import Send, Workload, send_keys, step_schedule

#: the rate doubles after every pass until the first failing rate is found
GROWTH = 2.0
#: a step passes when at least this share of its messages arrived in time to be judged
ARRIVED_SHARE = 0.95
#: seconds between publishing a step and its start (the producers poll for it)
LEAD_SECONDS = 0.05
#: a step is judged this long after it ends plus the p99 target: the children report every
#: REPORT_EVERY seconds, so whatever arrived within the target has been counted by then
SETTLE_SECONDS = 2 * REPORT_EVERY + 0.1
#: how long (s, at least; else 3 steps) a step's backlog may take to drain before the search
#: gives up: a step must not start behind
DRAIN_SECONDS = 10.0


class SearchPhase(StrEnum):
    """Why a step offered its rate."""

    RAMP = "ramp"  # growing (or, below a failing start rate, shrinking) geometrically
    CONFIRM = "confirm"  # the same rate again after one miss: one miss alone is a stall
    BISECT = "bisect"  # between the highest passing and the lowest failing rate


class SearchEnd(StrEnum):
    """Why a search ended."""

    CONVERGED = "converged"  # the failing rate is within the resolution of the passing one
    CEILING = "ceiling"  # the search's top passed: the harness, not the backend, was the limit
    FLOOR = "floor"  # even the lowest rate tried failed
    BUDGET = "budget"  # the time budget (the workload's duration) ran out first
    BACKLOG = "backlog"  # a failed step's backlog did not drain


@dataclass(frozen=True)
class RateStep:
    """One judged step of a max-rate search (a row of ``rate_steps.csv``).

    ``target_rate`` is the rate offered (msg/s, as ``producerRate``), ``achieved_rate``
    the rate that arrived (per consumer group), ``start_s`` when the step began (seconds
    after the warm-up) and ``seconds`` its length.
    """

    step: int
    target_rate: float
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    ok: bool
    phase: SearchPhase = SearchPhase.RAMP
    start_s: float = 0.0
    seconds: float = 0.0


class RateSearch:
    """Which rate to offer next, from the outcomes so far (see the module docstring).

    ``passing`` is the highest rate that passed (0 until one does), ``failing`` the lowest
    that missed twice in a row (None until one has); ``ended`` says why the search ended.
    """

    def __init__(
        self, start_rate: float, top: float, resolution: float = 0.1, growth: float = GROWTH
    ) -> None:
        self.start_rate = min(start_rate, top)
        self.top = top
        self.resolution = resolution
        self.growth = growth
        self.floor = self.start_rate / growth**4
        self.passing = 0.0
        self.failing: float | None = None
        self.missed_once: float | None = None
        self.ended: SearchEnd | None = None

    def next_rate(self) -> tuple[float, SearchPhase] | None:
        """The rate to offer next and why; None once the search has ended."""
        if self.ended is not None:
            return None
        if self.missed_once is not None:
            return self.missed_once, SearchPhase.CONFIRM
        if self.failing is None:
            rate = self.passing * self.growth if self.passing else self.start_rate
            return min(rate, self.top), SearchPhase.RAMP
        if not self.passing:
            return self.failing / self.growth, SearchPhase.RAMP
        middle = math.sqrt(self.passing * self.failing)
        rounded = float(f"{middle:.3g}")  # a rate a reader can repeat
        if not self.passing < rounded < self.failing:
            rounded = middle
        return rounded, SearchPhase.BISECT

    def record(self, rate: float, ok: bool) -> None:
        """Take the outcome of a step that offered ``rate``; end the search when it is done."""
        if ok:
            self.missed_once = None
            self.passing = max(self.passing, rate)
            if self.failing is None and rate >= self.top:
                self.ended = SearchEnd.CEILING
        elif self.missed_once == rate:  # two misses in a row: a failing rate
            self.missed_once = None
            self.failing = rate if self.failing is None else min(self.failing, rate)
        else:
            self.missed_once = rate
            return
        if self.failing is None:
            return
        if self.passing and self.failing <= self.passing * (1 + self.resolution):
            self.ended = SearchEnd.CONVERGED
        elif not self.passing and self.failing <= self.floor:
            self.ended = SearchEnd.FLOOR

    def stop(self, reason: SearchEnd) -> None:
        """End the search early (its time budget ran out, or a backlog did not drain)."""
        if self.ended is None:
            self.ended = reason

    @property
    def gap(self) -> float | None:
        """How far above the passing rate the failing one is (0.1 = 10 %); None if unknown."""
        if self.failing is None or not self.passing:
            return None
        return self.failing / self.passing - 1


def max_sustainable_rate(steps: Sequence[RateStep]) -> float:
    """The highest rate that passed below every rate that missed twice in a row; 0 if none.

    The same rule as :class:`RateSearch`: one miss alone is a stall, so a rate fails only
    when two steps in a row at that rate missed.
    """
    failed = [
        a.target_rate
        for a, b in pairwise(steps)
        if not (a.ok or b.ok) and a.target_rate == b.target_rate
    ]
    bound = min(failed, default=math.inf)
    return max((s.target_rate for s in steps if s.ok and s.target_rate < bound), default=0.0)


def search_sends(
    workload: Workload, ctl: Control, index: int, producers: int
) -> Iterator[Send | None]:
    """Producer ``index``'s sends for each segment the parent publishes, in turn.

    Yields None while the next segment has not been published (the producer waits and asks
    again); returns once ``ctl.stop`` is set.
    """
    keys = send_keys(workload, index)
    number = -1
    while True:
        segment = ctl.segment_after(number)
        if segment is None:
            if ctl.stop.is_set():
                return
            yield None
            continue
        number = segment.number
        yield from step_schedule(
            workload, segment.rate, segment.start, segment.end, index, producers, keys
        )


class SearchDriver:
    """Runs a :class:`RateSearch` in the parent, step by step (see the module docstring)."""

    def __init__(self, workload: Workload, ctl: Control, live: Live) -> None:
        w = self.workload = workload
        self.ctl = ctl
        self.live = live
        self.search = RateSearch(w.producer_start_rate, w.producer_max_rate, w.search_resolution)
        self.steps: list[RateStep] = []
        self.step_seconds = max(WINDOW, round(w.ramp_step_seconds / WINDOW) * WINDOW)
        self.settle = SETTLE_SECONDS + w.p99_target_ms / 1000
        self.current = Segment(0, w.producer_start_rate, 0.0, w.warmup_seconds)
        self.phase = SearchPhase.RAMP
        self.judged = True  # the warm-up is never judged

    def begin(self) -> Segment:
        """Publish the first segment (the warm-up, at the start rate) and return it."""
        self.ctl.publish(self.current)
        return self.current

    @property
    def ended(self) -> bool:
        return self.search.ended is not None

    def advance(self, elapsed: float) -> bool:
        """Move on at ``elapsed`` seconds into the run: judge the current step once its
        messages are in, publish the next once the backlog has drained; return True once
        the search has ended."""
        if self.ended:
            return True
        segment = self.current
        if elapsed < segment.end + (0.0 if self.judged else self.settle):
            return False
        if not self.judged:
            self._judge(segment)
            self.judged = True
            if self.ended:
                return True
        if not self.live.drained():
            if elapsed - segment.end > max(DRAIN_SECONDS, 3 * self.step_seconds):
                self.search.stop(SearchEnd.BACKLOG)
                return True
            return False
        return self._publish_next(elapsed)

    def _publish_next(self, elapsed: float) -> bool:
        chosen = self.search.next_rate()
        if chosen is None:
            return True
        rate, self.phase = chosen
        start = math.ceil((elapsed + LEAD_SECONDS) / WINDOW) * WINDOW  # on the window grid
        end = start + self.step_seconds
        if end + self.settle > self.workload.duration_seconds:  # it could not be judged
            self.search.stop(SearchEnd.BUDGET)
            return True
        self.current = Segment(self.current.number + 1, rate, start, end)
        self.judged = False
        self.ctl.publish(self.current)
        return False

    def _judge(self, segment: Segment) -> None:
        w = self.workload
        length = segment.end - segment.start
        streams = w.topics * w.subscriptions_per_topic  # every group of every topic counts
        hist = self.live.e2e.between(segment.start, segment.end)
        p99 = hist.percentile(99)
        expected = segment.rate * length * streams
        ok = p99 <= w.p99_target_ms and hist.total >= ARRIVED_SHARE * expected
        self.steps.append(
            RateStep(
                step=len(self.steps),
                target_rate=segment.rate,
                achieved_rate=round(hist.total / length / streams, 1),
                p50_ms=hist.percentile(50),
                p99_ms=p99,
                ok=ok,
                phase=self.phase,
                start_s=round(segment.start - w.warmup_seconds, 3),
                seconds=round(length, 3),
            )
        )
        self.search.record(segment.rate, ok)
