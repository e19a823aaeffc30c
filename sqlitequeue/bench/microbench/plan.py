"""The plan of the queue benchmark: which (pattern, durability, implementation) rows run.

:func:`plan` turns :class:`Sizes` into :class:`Job` rows, each knowing how to measure one
repeat of itself in a fresh directory. A row is skipped (with the reason shown) when its
subject lacks the capability the pattern needs: a batch API, several processes on one
file, or the row's durability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.microbench.patterns import PATTERN_BY_KEY, PUT_THREADS, Sizes
from sqlitequeue.bench.microbench.subject import (
    QUEUE_SUBJECTS,
    STREAM_SUBJECTS,
    Subject,
    open_subject,
    subject_class,
    subject_spec,
)
from sqlitequeue.bench.microbench.timing import (
    Sample,
    time_drain,
    time_get_ack,
    time_get_many,
    time_groups,
    time_latency,
    time_lifecycle,
    time_poll_commit,
    time_send_batches,
    time_sends,
    time_threaded_sends,
)

# -- the plan: which (pattern, durability, implementation) rows run ----------------------

#: How one single-process pattern is timed: on an opened subject, with a count and a cap.
SingleTiming = Callable[[Subject, int, float], Sample]


@dataclass(frozen=True)
class Job:
    """One row of the report and how to measure one repeat of it in a fresh directory."""

    pattern: str
    durability: str
    impl: str
    label: str
    skipped: str
    run: Callable[[Path], Sample] | None


def _queue_job(pattern: str, durability: str, key: str, sizes: Sizes) -> Job:
    name = QUEUE_SUBJECTS[key]
    cls = subject_class(name)
    label = cls.label()
    if pattern in ("put_many", "get_many") and not cls.batched:
        return Job(pattern, durability, key, label, "no batch API", None)
    multi = pattern in ("drain", "latency_1000", "latency_5000")
    if multi and not cls.multiprocess:
        return Job(pattern, durability, key, label, cls.why_not_multiprocess, None)
    if durability not in cls.durabilities:
        return Job(pattern, durability, key, label, "skip", None)
    return Job(pattern, durability, key, label, "", _queue_runner(pattern, name, durability, sizes))


def _queue_runner(
    pattern: str, name: str, durability: str, sizes: Sizes
) -> Callable[[Path], Sample]:
    full = durability == "full"
    key = subject_class(name).key
    single: dict[str, tuple[SingleTiming, int]] = {
        "put": (time_sends, sizes.puts_full if full else sizes.puts),
        "put_many": (time_send_batches, sizes.batch_rows),
        "get_ack": (time_get_ack, sizes.get_acks_full if full else sizes.get_acks),
        "get_many": (time_get_many, sizes.claim_rows),
    }
    if pattern in single:
        func, count = single[pattern]
        return _single_runner(name, durability, func, count, sizes.cap(key))
    if pattern == "drain":
        cap = sizes.cap(key, "drain")
        return lambda d: time_drain(subject_spec(name, d, durability), sizes.drain_messages, cap)
    rate = int(pattern.split("_")[1])
    return lambda d: time_latency(subject_spec(name, d, durability), rate, sizes.latency_seconds)


def _single_runner(
    name: str, durability: str, func: SingleTiming, count: int, cap: float
) -> Callable[[Path], Sample]:
    """Time ``func`` on subject ``name`` opened in the directory it is given; the note
    carries the ``synchronous`` the subject really ran with, when it reports one."""

    def run(directory: Path) -> Sample:
        with open_subject(subject_spec(name, directory, durability)) as subject:
            sample, note = func(subject, count, cap)
            setting = subject.describe().get("synchronous")
        notes = (f"synchronous={setting}" if setting else "", note)
        return sample, "; ".join(n for n in notes if n)

    return run


def _stream_job(pattern: str, key: str, sizes: Sizes) -> Job:
    name = STREAM_SUBJECTS[key]
    label = subject_class(name).label()
    cap = sizes.cap(key)
    if pattern == "groups":

        def run_groups(directory: Path) -> Sample:
            return time_groups(subject_spec(name, directory, "normal"), sizes.stream_rows, cap)

        return Job(pattern, "normal", key, label, "", run_groups)
    single: dict[str, tuple[SingleTiming, int]] = {
        "append": (time_sends, sizes.puts),
        "append_many": (time_send_batches, sizes.batch_rows),
        "poll_commit": (time_poll_commit, sizes.stream_rows),
        "lifecycle": (time_lifecycle, sizes.stream_rows),
    }
    func, count = single[pattern]
    return Job(pattern, "normal", key, label, "", _single_runner(name, "normal", func, count, cap))


#: The anchor and every peer that can run at the row's durability and pattern.
_NORMAL_ROWS = ("ours", "raw", "minimal", "litequeue", "persist-queue", "honker")
QUEUE_ROWS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "put": [
        ("normal", ("ours", "raw", "minimal", "litequeue", "honker")),
        ("full", ("ours", "raw", "persist-queue", "huey")),
    ],
    "put_many": [
        ("normal", ("ours", "raw", "litequeue")),
        ("full", ("ours", "raw", "persist-queue")),
    ],
    "get_ack": [
        ("normal", ("ours", "raw", "minimal", "litequeue", "honker")),
        ("full", ("ours", "raw", "persist-queue", "huey")),
    ],
    "get_many": [("normal", ("ours", "raw", "litequeue", "persist-queue"))],
    "latency_1000": [("normal", _NORMAL_ROWS)],
    "latency_5000": [("normal", _NORMAL_ROWS)],
    "drain": [("normal", _NORMAL_ROWS)],
}


def _threads_jobs(sizes: Sizes) -> list[Job]:
    """The group-commit rows: ours at FULL from PUT_THREADS threads, and from one thread
    (key "1-thread": the row the group-commit target divides by), on one Queue object."""
    name = QUEUE_SUBJECTS["ours"]
    label = subject_class(name).label()
    jobs = []
    for key, threads in (("ours", PUT_THREADS), ("1-thread", 1)):

        def timing(subject: Subject, count: int, cap: float, threads: int = threads) -> Sample:
            return time_threaded_sends(subject, count, cap, threads)

        run = _single_runner(name, "full", timing, sizes.puts_threads, sizes.cap("ours"))
        title = f"{label}, {threads} thread{'s' if threads > 1 else ''}"
        jobs.append(Job("put_threads", "full", key, title, "", run))
    return jobs


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
            jobs += [_stream_job(pattern, key, sizes) for key in STREAM_SUBJECTS]
            continue
        if pattern == "put_threads":
            jobs += _threads_jobs(sizes)
            continue
        for durability, keys in QUEUE_ROWS[pattern]:
            for key in keys:
                job = _queue_job(pattern, durability, key, sizes)
                if job.skipped != "skip":
                    jobs.append(job)
    return jobs
