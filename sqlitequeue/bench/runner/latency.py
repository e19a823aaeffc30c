"""Latencies recorded at the harness's top rates: many per call, in a child's own histograms.

:class:`LatencyRecorder` keeps what :class:`~sqlitequeue.bench.metrics.WindowedHistograms`
keeps (a histogram per window of scheduled time) and hands over the same states
(:meth:`LatencyRecorder.take`), but records a whole poll's arrivals in one call with the
bucket arithmetic inline: at 100,000 msg/s a function call per message is a tenth of a core.
The buckets, windows, sums and extremes are exactly those of ``WindowedHistograms``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import repeat

from sqlitequeue.bench.metrics import SUB_BITS
from sqlitequeue.bench.runner.messages import HistogramStates

#: seconds of scheduled time per histogram window (as WindowedHistograms' default)
WINDOW = 0.1

_EXACT = 1 << SUB_BITS
_HALF = 1 << (SUB_BITS - 1)


class _Window:
    """One window's histogram state, updated in place."""

    __slots__ = ("counts", "max_us", "min_us", "sum_us", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum_us = 0
        self.max_us = 0
        self.min_us = -1

    def state(self) -> tuple[dict[int, int], int, int, int, int]:
        return (self.counts, self.total, self.sum_us, self.max_us, self.min_us)


class LatencyRecorder:
    """Latencies in microseconds, by the window of scheduled time each message falls in.

    ``start`` is the run's start (wall clock); a message scheduled at ``s`` falls in window
    ``floor((s - start) / window)``. Negative latencies (clock jitter) count as 0.
    """

    def __init__(self, start: float, window: float = WINDOW) -> None:
        self.start = start
        self.window = window
        self.windows: dict[int, _Window] = {}

    def record(self, scheduled: float, at: float) -> None:
        """Record one message scheduled at ``scheduled`` and timed at ``at`` (wall clock)."""
        self.record_many(((scheduled, at),))

    def record_arrivals(self, scheduled: Iterable[float], at: float) -> None:
        """Record messages scheduled at ``scheduled`` that were all timed at ``at``."""
        self.record_many(zip(scheduled, repeat(at)))

    def record_many(self, timings: Iterable[tuple[float, float]]) -> None:
        """Record ``(scheduled, timed at)`` pairs (wall clock)."""
        start, window, windows = self.start, self.window, self.windows
        floor = math.floor
        key = None
        win = _Window()
        for s, at in timings:
            us = int((at - s) * 1e6)
            if us < _EXACT:
                if us < 0:
                    us = 0
                bucket = us
            else:
                shift = us.bit_length() - SUB_BITS
                bucket = shift * _HALF + (us >> shift)
            k = floor((s - start) / window)
            if k != key:
                key = k
                win = windows.get(k) or windows.setdefault(k, _Window())
            counts = win.counts
            counts[bucket] = counts.get(bucket, 0) + 1
            win.total += 1
            win.sum_us += us
            if us > win.max_us:
                win.max_us = us
            if win.min_us < 0 or us < win.min_us:
                win.min_us = us

    def take(self) -> HistogramStates:
        """Return the states recorded since the last call (a delta) and start afresh."""
        out = {k: w.state() for k, w in self.windows.items()}
        self.windows = {}
        return out
