"""The suites of the main job: which workloads run, for how long, against which backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.workload import Workload, load_workload

SQLITE_BACKENDS = ("sqlite-queue", "sqlite-stream", "sqlite-seed")
KAFKA_BACKENDS = ("kafka-confluent", "kafka", "kafka-managed")
DEFAULT_BACKENDS = (*SQLITE_BACKENDS, *KAFKA_BACKENDS)

#: suite name -> (workload, seconds per run, warm-up included). Every run of the full suites
#: keeps at least MIN_WARMUP["default"] seconds of warm-up, excluded from the figures: the
#: broker JVM's JIT warm-up and Kafka's group join on a fresh topic (after the unrecorded
#: warm-up run per Kafka backend). The measured window (>= 10 s) always spans WAL
#: checkpoints: the core's checkpointer runs at least every second while a file is written
#: (sqlitequeue._files.CHECKPOINT_MAX_GAP), the seed table's SQLite auto-checkpoint every
#: 1,000 pages (~4 MB: under 4 s at the suite's 1 KiB rates). The quick suite is shorter
#: and runs once: its figures are indicative.
SUITES: dict[str, list[tuple[str, float]]] = {
    "default": [
        ("seed-clickstream", 20),
        ("steady-1kb", 15),
        ("bursts-512b", 15),
        ("fanout-3-groups", 15),
        ("backlog-drain", 15),
        ("large-64kb", 15),
        ("max-rate-1kb", 120),  # the search's time budget: it ends once it converges
    ],
    "quick": [
        ("seed-clickstream", 6),
        ("steady-1kb", 5),
        ("max-rate-1kb", 20),  # a short budget: a fast backend's search may end on it
    ],
    # The seed article's claim: 40-50 ms on (managed) Kafka, under 1 ms on one SQLite file.
    "seed-claim": [("seed-clickstream", 30)],
}
#: the least warm-up (s) of a run in each suite (others: "default"); never over half a run
MIN_WARMUP: dict[str, float] = {"default": 5.0, "quick": 1.0}
#: how often full mode runs each workload (quick mode: once)
DEFAULT_REPEATS = 3
#: suites that come with their own backends (``--backends`` still overrides them)
SUITE_BACKENDS: dict[str, tuple[str, ...]] = {
    "seed-claim": (
        "sqlite-queue",
        "sqlite-stream",
        "kafka-managed@cross-az",
        "kafka-managed@cross-region",
    ),
}


def suite_workloads(name: str) -> list[Workload]:
    """The workloads of suite ``name`` as :func:`run_compare` runs them; BenchError if unknown."""
    return build_suite(name, None, None, None)


def build_suite(
    name: str, workloads: Sequence[str] | None, duration: float | None, p99: float | None
) -> list[Workload]:
    if name not in SUITES:
        raise BenchError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    suite = dict(SUITES[name])
    least = MIN_WARMUP.get(name, MIN_WARMUP["default"])
    chosen: list[tuple[str, float | None]] = (
        [(w, suite.get(w)) for w in workloads] if workloads else list(suite.items())
    )
    out = []
    for workload_name, seconds in chosen:
        w = load_workload(workload_name)
        if duration or seconds:
            total = duration or seconds or w.duration_seconds
            warmup = min(max(min(w.warmup_seconds, total / 5), least), total / 2)
            w = w.with_duration(total, warmup)
        if p99 is not None:
            w = replace(w, p99_target_ms=p99)
        out.append(w)
    return out
