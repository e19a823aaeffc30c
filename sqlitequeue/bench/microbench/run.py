"""Micro-benchmarks of Queue and Stream against a raw-sqlite3 loop and the Python peers.

Every pattern runs, in one process run, for:

* ``sqlitequeue``: :class:`sqlitequeue.Queue` / :class:`sqlitequeue.Stream`;
* ``raw``: a plain ``sqlite3`` loop that issues the same statements in the same
  transactions on the same schema (the physical reference: what SQLite itself costs);
* the peers, as they ship: persist-queue's ``SQLiteAckQueue`` (synchronous=FULL, its
  default) and litequeue (synchronous=NORMAL, set by litequeue itself).

Comparisons are made at equal durability: ours and the raw loop run once at NORMAL (against
litequeue) and once at FULL (against persist-queue). Every measurement uses fresh temporary
files, 64-byte payloads, and is repeated; the report gives medians and ratios with
PASS/FAIL against the targets of issues 2 and 3. Nothing here asserts timings: callers
print :func:`format_report` or save :func:`report_to_json`.

Multi-process patterns (end-to-end latency, 4 draining consumers, 2 stream groups) start
worker processes with the ``spawn`` method; the workers open their own connections.

Every implementation is a subject driven through the workbench's one producer/consumer
seam (:mod:`sqlitequeue.bench.backends.base`: send/flush, poll/commit). The work is split
over modules with one job each: ``patterns`` (payloads, sizes, patterns), ``subject``
(the Subject backend, the buffered producer, the registry), ``ours`` / ``raw`` / ``peers``
(the subjects), ``timing`` (one measurement, worker processes included), ``plan`` (the
rows), ``results`` (measurements and targets) and ``report`` (tables and JSON). This module
runs them and re-exports the API callers use.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.microbench.patterns import (
    FULL_SIZES,
    PATTERN_BY_KEY,
    PATTERNS,
    PAYLOAD_BYTES,
    QUICK_SIZES,
    Pattern,
    Sizes,
)
from sqlitequeue.bench.microbench.plan import Job, plan
from sqlitequeue.bench.microbench.report import fmt_ratio, format_report, report_to_json
from sqlitequeue.bench.microbench.results import Check, Measurement, Report, evaluate
from sqlitequeue.bench.microbench.timing import fsync_us, sleep_jitter, thread_handoff_us

__all__ = [
    "FULL_SIZES",
    "PATTERNS",
    "PATTERN_BY_KEY",
    "PAYLOAD_BYTES",
    "QUICK_SIZES",
    "BenchError",
    "Check",
    "Job",
    "Measurement",
    "Pattern",
    "Report",
    "Sizes",
    "evaluate",
    "fmt_ratio",
    "format_report",
    "plan",
    "report_to_json",
    "run_benchmark",
    "sleep_jitter",
]


# -- running -----------------------------------------------------------------------------


def _measure_once(job: Job, root: Path | None) -> tuple[dict[str, float] | None, str]:
    assert job.run is not None
    with tempfile.TemporaryDirectory(prefix="sqq-bench-", dir=root) as directory:
        try:
            return job.run(Path(directory))
        except Exception as exc:  # a failing implementation must not hide the others
            return None, f"ERROR: {type(exc).__name__}: {exc}"


def run_benchmark(
    sizes: Sizes = FULL_SIZES,
    repeats: int = 3,
    *,
    only: Iterable[str] | None = None,
    directory: Path | None = None,
    progress: TextIO | None = None,
) -> Report:
    """Measure every planned row ``repeats`` times (fresh temp files each time).

    Repeats are interleaved (repeat 1 of every row of a pattern, then repeat 2, ...) so
    that a slow moment of a shared machine hits every implementation alike. Errors of one
    implementation are recorded in its row's notes, never raised. Returns the Report with
    the targets evaluated; raises BenchError for bad arguments.
    """
    if repeats < 1:
        raise BenchError(f"repeats must be at least 1, not {repeats}")
    from sqlitequeue.bench.results import environment

    started = time.perf_counter()
    load_before = _load_average()
    jitter = sleep_jitter()
    handoff = thread_handoff_us()
    fsync = fsync_us(directory)
    jobs = plan(sizes, only)
    rows = {id(j): Measurement(j.pattern, j.durability, j.impl, j.label) for j in jobs}
    for job in jobs:
        rows[id(job)].skipped = job.skipped
    for pattern in PATTERN_BY_KEY:
        active = [j for j in jobs if j.pattern == pattern and j.run is not None]
        if not active:
            continue
        t0 = time.perf_counter()
        for _ in range(repeats):
            for job in active:
                sample, note = _measure_once(job, directory)
                row = rows[id(job)]
                if sample is not None:
                    row.samples.append(sample)
                for part in filter(None, note.split("; ")):
                    if part not in row.notes:
                        row.notes.append(part)
        if progress is not None:
            took = time.perf_counter() - t0
            print(f"  measured {PATTERN_BY_KEY[pattern].title} ({took:.1f} s)", file=progress)
            progress.flush()
    measurements = [rows[id(j)] for j in jobs]
    env = environment()
    env["bench_directory"] = str(directory or tempfile.gettempdir())
    env["bench_filesystem"] = _filesystem_type(Path(directory or tempfile.gettempdir()))
    env["load_average_before"] = load_before
    env["load_average_after"] = _load_average()
    env["sleep_jitter_ms"] = jitter
    env["thread_handoff_us"] = handoff
    env["fsync_us"] = fsync
    return Report(
        sizes,
        repeats,
        measurements,
        evaluate(measurements),
        time.perf_counter() - started,
        env,
    )


def _load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every number)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _filesystem_type(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts), or "unknown"."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, kind = "", "unknown"
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and target.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind
