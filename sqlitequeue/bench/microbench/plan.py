"""The plan of the queue benchmark: which (pattern, durability, implementation) rows run.

:func:`plan` turns :class:`Sizes` into :class:`Job` rows, each knowing how to measure one
repeat of itself in a fresh directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.microbench.patterns import PATTERN_BY_KEY, Sizes
from sqlitequeue.bench.microbench.queues import QUEUE_IMPLS, QueueImpl
from sqlitequeue.bench.microbench.streams import STREAM_IMPLS, StreamImpl
from sqlitequeue.bench.microbench.timing import (
    time_append,
    time_append_many,
    time_drain,
    time_get_ack,
    time_get_many,
    time_groups,
    time_latency,
    time_lifecycle,
    time_poll_commit,
    time_put,
    time_put_many,
)

# -- the plan: which (pattern, durability, implementation) rows run ----------------------


@dataclass(frozen=True)
class Job:
    """One row of the report and how to measure one repeat of it."""

    pattern: str
    durability: str
    impl: str
    label: str
    skipped: str
    run: Callable[[Path], tuple[dict[str, float], str]] | None


def _queue_label(key: str) -> str:
    return QUEUE_IMPLS[key]().label


def _queue_job(pattern: str, durability: str, key: str, sizes: Sizes) -> Job:
    impl_cls = QUEUE_IMPLS[key]
    label = _queue_label(key)
    if pattern in ("put_many", "get_many") and not impl_cls.batched:
        return Job(pattern, durability, key, label, "no batch API", None)
    multi = pattern in ("drain", "latency_1000", "latency_5000")
    if multi and not impl_cls.multiprocess:
        return Job(pattern, durability, key, label, impl_cls.why_not_multiprocess, None)
    if durability not in impl_cls.durabilities:
        return Job(pattern, durability, key, label, "skip", None)
    return Job(pattern, durability, key, label, "", _queue_runner(pattern, key, durability, sizes))


def _queue_runner(
    pattern: str, key: str, durability: str, sizes: Sizes
) -> Callable[[Path], tuple[dict[str, float], str]]:
    full = durability == "full"
    single: dict[str, tuple[Callable[[QueueImpl, int, float], Any], int]] = {
        "put": (time_put, sizes.puts_full if full else sizes.puts),
        "put_many": (time_put_many, sizes.batch_rows),
        "get_ack": (time_get_ack, sizes.get_acks_full if full else sizes.get_acks),
        "get_many": (time_get_many, sizes.claim_rows),
    }
    if pattern in single:
        func, count = single[pattern]

        def run_single(directory: Path) -> tuple[dict[str, float], str]:
            impl = QUEUE_IMPLS[key]()
            impl.open(impl.location(directory), durability)
            try:
                sample, note = func(impl, count, sizes.cap(key))
                setting = impl.settings()
            finally:
                impl.close()
            return sample, "; ".join(n for n in (setting, note) if n)

        return run_single
    if pattern == "drain":
        return lambda d: time_drain(
            key,
            QUEUE_IMPLS[key]().location(d),
            durability,
            sizes.drain_messages,
            sizes.cap(key, "drain"),
        )
    rate = int(pattern.split("_")[1])
    return lambda d: time_latency(
        key, QUEUE_IMPLS[key]().location(d), durability, rate, sizes.latency_seconds
    )


def _stream_job(pattern: str, key: str, sizes: Sizes) -> Job:
    label = STREAM_IMPLS[key].label
    single: dict[str, tuple[Callable[[StreamImpl, int, float], Any], int]] = {
        "append": (time_append, sizes.puts),
        "append_many": (time_append_many, sizes.batch_rows),
        "poll_commit": (time_poll_commit, sizes.stream_rows),
        "lifecycle": (time_lifecycle, sizes.stream_rows),
    }
    if pattern == "groups":
        return Job(
            pattern,
            "normal",
            key,
            label,
            "",
            lambda d: time_groups(key, d / "bench.db", sizes.stream_rows, sizes.cap(key)),
        )
    func, count = single[pattern]

    def run_single(directory: Path) -> tuple[dict[str, float], str]:
        impl = STREAM_IMPLS[key]()
        impl.open(directory / "bench.db", "normal")
        try:
            return func(impl, count, sizes.cap(key))
        finally:
            impl.close()

    return Job(pattern, "normal", key, label, "", run_single)


QUEUE_ROWS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "put": [("normal", ("ours", "raw", "litequeue")), ("full", ("ours", "raw", "persist-queue"))],
    "put_many": [
        ("normal", ("ours", "raw", "litequeue")),
        ("full", ("ours", "raw", "persist-queue")),
    ],
    "get_ack": [
        ("normal", ("ours", "raw", "litequeue")),
        ("full", ("ours", "raw", "persist-queue")),
    ],
    "get_many": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "latency_1000": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "latency_5000": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "drain": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
}
STREAM_PATTERNS = ("append", "append_many", "poll_commit", "groups", "lifecycle")


def plan(sizes: Sizes, only: Iterable[str] | None = None) -> list[Job]:
    """Every row of the report, in print order; ``only`` limits it to some pattern keys.

    Raises BenchError for an unknown pattern key.
    """
    wanted = list(PATTERN_BY_KEY) if only is None else list(only)
    unknown = [k for k in wanted if k not in PATTERN_BY_KEY]
    if unknown:
        raise BenchError(f"unknown pattern(s) {unknown}; choose from {list(PATTERN_BY_KEY)}")
    jobs: list[Job] = []
    for pattern in PATTERN_BY_KEY:
        if pattern not in wanted:
            continue
        if pattern in STREAM_PATTERNS:
            jobs += [_stream_job(pattern, key, sizes) for key in ("ours", "raw")]
            continue
        for durability, keys in QUEUE_ROWS[pattern]:
            for key in keys:
                job = _queue_job(pattern, durability, key, sizes)
                if job.skipped != "skip":
                    jobs.append(job)
    return jobs
