"""Measurements: HDR-style latency histograms, throughput series, resource samples.

:class:`Histogram` is a log-linear histogram in pure Python (like HdrHistogram with about
2.5 significant digits): values are recorded in microseconds; values below 256 us are
exact, above that each power of two is split into 128 equal buckets, so a reported
percentile is at most 0.8 % above the true value. Histograms merge by adding counts, so
processes record their own and the runner adds them up.

:class:`ResourceSampler` samples CPU % and resident memory of named groups of processes
(producers, consumers, the harness, the Kafka JVM) with psutil, and disk bytes of paths.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUB_BITS = 8
_HALF = 1 << (SUB_BITS - 1)
_EXACT = 1 << SUB_BITS
PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def bucket_index(micros: int) -> int:
    """Return the bucket holding ``micros`` (negative values count as 0)."""
    if micros < _EXACT:
        return max(micros, 0)
    shift = micros.bit_length() - SUB_BITS
    return shift * _HALF + (micros >> shift)


def bucket_upper(index: int) -> int:
    """Return the highest value (us) that falls in bucket ``index``."""
    if index < _EXACT:
        return index
    shift, mantissa = divmod(index - _HALF, _HALF)
    mantissa += _HALF
    return ((mantissa + 1) << shift) - 1


@dataclass
class Histogram:
    """Latency histogram in microseconds; record, merge, query percentiles.

    ``counts`` maps bucket index -> count (sparse). ``max_us`` and ``min_us`` are exact.
    """

    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0
    sum_us: int = 0
    max_us: int = 0
    min_us: int = -1

    def record(self, micros: int) -> None:
        """Add one value in microseconds (negative values, from clock jitter, count as 0)."""
        micros = max(int(micros), 0)
        index = bucket_index(micros)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.sum_us += micros
        if micros > self.max_us:
            self.max_us = micros
        if self.min_us < 0 or micros < self.min_us:
            self.min_us = micros

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts into this histogram."""
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.total += other.total
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)
        if other.min_us >= 0 and (self.min_us < 0 or other.min_us < self.min_us):
            self.min_us = other.min_us

    def percentile(self, pct: float) -> float:
        """Return the value (ms) at or below which ``pct`` % of values fall; 0.0 when empty.

        Reports the bucket's upper bound (capped at the exact maximum), as HdrHistogram does.
        """
        if not self.total:
            return 0.0
        rank = max(1, math.ceil(self.total * pct / 100.0))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(bucket_upper(index), self.max_us) / 1000.0
        return self.max_us / 1000.0

    def mean(self) -> float:
        """Return the mean in ms (0.0 when empty)."""
        return self.sum_us / self.total / 1000.0 if self.total else 0.0

    def summary(self) -> dict[str, float]:
        """Return p50/p95/p99/p999/max/mean in ms (all 0.0 when empty)."""
        out = {name: self.percentile(p) for name, p in PERCENTILES.items()}
        out["max"] = self.max_us / 1000.0
        out["mean"] = self.mean()
        return out

    def buckets_ms(self) -> list[tuple[float, int]]:
        """Return ``(upper_ms, count)`` pairs in increasing order (for CDFs and files)."""
        return [(bucket_upper(i) / 1000.0, self.counts[i]) for i in sorted(self.counts)]

    def to_state(self) -> tuple[dict[int, int], int, int, int, int]:
        """Return a small picklable state (for sending between processes)."""
        return (dict(self.counts), self.total, self.sum_us, self.max_us, self.min_us)

    @classmethod
    def from_state(cls, state: tuple[dict[int, int], int, int, int, int]) -> Histogram:
        """Rebuild a histogram from :meth:`to_state`."""
        counts, total, sum_us, max_us, min_us = state
        return cls(dict(counts), total, sum_us, max_us, min_us)

    @classmethod
    def from_buckets(cls, buckets: Iterable[tuple[float, int]]) -> Histogram:
        """Rebuild (approximately: max and mean from bucket bounds) from ``buckets_ms``."""
        hist = cls()
        for upper_ms, count in buckets:
            micros = round(upper_ms * 1000)
            index = bucket_index(micros)
            hist.counts[index] = hist.counts.get(index, 0) + int(count)
            hist.total += int(count)
            hist.sum_us += micros * int(count)
            hist.max_us = max(hist.max_us, micros)
        return hist


class WindowedHistograms:
    """Histograms keyed by a time window (e.g. the second a message was scheduled in)."""

    def __init__(self, window_seconds: float = 0.1) -> None:
        self.window = window_seconds
        self.windows: dict[int, Histogram] = {}

    def record(self, at: float, micros: int) -> None:
        """Record ``micros`` in the window holding time ``at`` (seconds from the start)."""
        key = math.floor(at / self.window)
        hist = self.windows.get(key)
        if hist is None:
            hist = self.windows[key] = Histogram()
        hist.record(micros)

    def take(self) -> dict[int, tuple[dict[int, int], int, int, int, int]]:
        """Return the states recorded since the last call, and start afresh (a delta)."""
        out = {k: h.to_state() for k, h in self.windows.items()}
        self.windows = {}
        return out

    def merge_states(self, states: Mapping[int, tuple[dict[int, int], int, int, int, int]]) -> None:
        """Add a delta from :meth:`take` into these windows."""
        for key, state in states.items():
            hist = self.windows.get(key)
            if hist is None:
                self.windows[key] = Histogram.from_state(state)
            else:
                hist.merge(Histogram.from_state(state))

    def between(self, start: float, end: float) -> Histogram:
        """Return one histogram of the windows starting in ``[start, end)`` seconds."""
        out = Histogram()
        for key, hist in self.windows.items():
            if start - 1e-9 <= key * self.window < end - 1e-9:
                out.merge(hist)
        return out


@dataclass
class Counter:
    """A monotonically increasing count sampled into a per-interval rate series."""

    value: int = 0
    _last_value: int = 0
    _last_time: float | None = None

    def rate(self, now: float) -> float:
        """Return the rate (per second) since the previous call (0.0 on the first call)."""
        if self._last_time is None or now <= self._last_time:
            self._last_time, self._last_value = now, self.value
            return 0.0
        rate = (self.value - self._last_value) / (now - self._last_time)
        self._last_time, self._last_value = now, self.value
        return rate


def path_bytes(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Return the bytes allocated on disk to the files under ``paths`` (missing: 0).

    Counts allocated blocks, not apparent sizes: Kafka preallocates sparse 10 MB index
    files per segment, which take almost no space until written.
    """
    total = 0
    for root in paths:
        base = Path(root)
        if base.is_file():
            total += _size(base)
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                total += _size(Path(dirpath) / name)
    return total


def _size(path: Path) -> int:
    try:
        st = path.stat()
    except OSError:
        return 0
    blocks = getattr(st, "st_blocks", None)
    return st.st_size if blocks is None else min(st.st_size, blocks * 512)


class ResourceSampler:
    """Sample CPU % and RSS of named process groups, and disk bytes of paths.

    ``groups`` maps a name (``producers``, ``consumers``, ``harness``, ``kafka``) to a
    callable returning the pids currently in it. :meth:`sample` returns
    ``{"cpu_percent.<group>": ..., "rss_bytes.<group>": ..., "disk_bytes": ...}``; CPU %
    is summed over the group's processes (100 = one core) since the previous sample.
    Processes that vanished count as 0. Never raises for a missing process.
    """

    def __init__(
        self,
        groups: Mapping[str, Callable[[], Iterable[int]]],
        disk_paths: Callable[[], Iterable[str | os.PathLike[str]]] | None = None,
    ) -> None:
        import psutil

        self._psutil = psutil
        self.groups = dict(groups)
        self.disk_paths = disk_paths
        self._procs: dict[int, Any] = {}

    def _proc(self, pid: int) -> Any:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = self._psutil.Process(pid)
            proc.cpu_percent(None)  # prime: the first call always returns 0.0
        return proc

    def sample(self) -> dict[str, float]:
        """Return one sample of every group (and ``disk_bytes`` when paths were given)."""
        out: dict[str, float] = {}
        for group, pids in self.groups.items():
            cpu = rss = 0.0
            for pid in pids():
                try:
                    proc = self._proc(pid)
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                except (self._psutil.Error, OSError):
                    self._procs.pop(pid, None)
            out[f"cpu_percent.{group}"] = cpu
            out[f"rss_bytes.{group}"] = rss
        if self.disk_paths is not None:
            out["disk_bytes"] = float(path_bytes(self.disk_paths()))
        return out
