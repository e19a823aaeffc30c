"""The runner: open-loop accounting, counts, fan-out, backlogs, max-rate search, results."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, DeliveryCallback, Producer
from sqlitequeue.bench.backends.memory import MemoryBackend
from sqlitequeue.bench.results import RunWriter, load
from sqlitequeue.bench.runner import (
    NotApplicable,
    RateStep,
    RunResult,
    max_sustainable_rate,
    run_workload,
    write_result,
)
from sqlitequeue.bench.workload import Workload, parse_workload

pytestmark = pytest.mark.slow

SEND_DELAY = 0.005


class SlowProducer(Producer):
    """Wraps a producer and takes SEND_DELAY seconds per send: at most 200 msg/s."""

    def __init__(self, inner: Producer) -> None:
        self.inner = inner

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        time.sleep(SEND_DELAY)
        self.inner.send(key, payload, on_delivery)

    def flush(self, timeout: float = 30.0) -> None:
        self.inner.flush(timeout)

    def close(self) -> None:
        self.inner.close()


class SlowBackend(MemoryBackend):
    """The memory backend with a deliberately slow producer (a test backend)."""

    name = "test-slow"

    def producer(self, topic: str) -> Producer:
        return SlowProducer(super().producer(topic))


@pytest.fixture
def slow_backend() -> Iterator[str]:
    base.BACKENDS["test-slow"] = "tests.test_runner:SlowBackend"
    yield "test-slow"
    del base.BACKENDS["test-slow"]


def workload(**fields: object) -> Workload:
    return parse_workload(
        {
            "name": "t",
            "producerRate": 300,
            "messageSize": 256,
            "testDurationSeconds": 2,
            "warmupDurationSeconds": 0.5,
            **fields,
        }
    )


def run(backend: str, tmp_path: Path, **fields: object) -> RunResult:
    w = workload(**fields)
    return run_workload(w, BackendSpec(backend), data_dir=tmp_path, progress=False)


@pytest.fixture(scope="module")
def fanned_out(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One run on memory: 2 producers, 2 consumer groups, 300 msg/s for 2 s."""
    tmp = tmp_path_factory.mktemp("fan")
    return run("memory", tmp, subscriptionsPerTopic=2, producersPerTopic=2)


def test_every_message_arrives_once_per_group(fanned_out: RunResult) -> None:
    s = fanned_out.scalars
    assert s["sent"] == s["acknowledged"] == pytest.approx(600, abs=2)
    assert s["received"] == s["unique_received"] == 2 * s["sent"]
    assert s["lost"] == s["duplicates"] == s["errors"] == s["unsent"] == 0


def test_latencies_exclude_the_warm_up_and_series_are_sampled(fanned_out: RunResult) -> None:
    s = fanned_out.scalars
    # warm-up excluded: 1.5 s measured at 300 msg/s, consumed by 2 groups
    assert fanned_out.e2e.total == pytest.approx(2 * 450, abs=60)
    assert 0 < s["e2e_latency_ms.p50"] <= s["e2e_latency_ms.p99"] <= s["e2e_latency_ms.max"]
    metrics = {m for m, _, _ in fanned_out.series}
    assert {"publish_rate", "consume_rate", "backlog", "cpu_percent.producers"} <= metrics
    assert {"rss_bytes.consumers", "cpu_percent.harness", "disk_bytes"} <= metrics


def test_a_slow_backend_shows_queueing_delay(tmp_path: Path, slow_backend: str) -> None:
    """Open loop: 300 msg/s scheduled into a 200 msg/s producer; the lag is not hidden."""
    result = run(slow_backend, tmp_path, warmupDurationSeconds=0)
    s = result.scalars
    # At >= 5 ms per send, at most ~400 of the 600 messages leave within the 2 s run:
    # message n (scheduled at n/300 s) leaves at >= n*5 ms, so message 400 is >= 0.66 s
    # late. Latency counts from the schedule, and what never left is reported as unsent.
    assert s["e2e_latency_ms.max"] >= 500
    assert s["publish_latency_ms.p99"] >= 300
    assert s["unsent"] >= 100
    assert s["sent"] + s["unsent"] == pytest.approx(600, abs=2)
    assert s["lost"] == 0
    lag = [v for m, _, v in result.series if m == "producer_lag_ms"]
    assert max(lag) >= 300


def test_a_backlog_is_built_then_drained(tmp_path: Path) -> None:
    result = run(
        "sqlite-queue",
        tmp_path,
        producerRate=200,
        consumerBacklogMessages=200,
        testDurationSeconds=3,
        warmupDurationSeconds=0,
    )
    s = result.scalars
    assert s["received"] == s["sent"] > 200
    assert s["lost"] == 0
    assert "drain_seconds" in s
    # the first messages waited (at least) for the backlog of 200 at 200 msg/s to build
    assert s["e2e_latency_ms.max"] >= 800


def test_the_max_rate_search_records_its_steps(tmp_path: Path) -> None:
    result = run(
        "memory",
        tmp_path,
        producerRate=0,
        producerStartRate=100,
        producerMaxRate=800,
        rampStepSeconds=1,
        testDurationSeconds=4,
        warmupDurationSeconds=1,
        p99TargetMs=1000,
    )
    assert [round(s.target_rate) for s in result.steps][:1] == [100]
    assert result.steps[0].ok
    assert result.scalars["max_sustainable_rate"] >= 90


def test_results_round_trip(fanned_out: RunResult, tmp_path: Path) -> None:
    result = fanned_out
    with RunWriter(tmp_path / "results", "r1") as writer:
        write_result(writer, result)
    res = load(tmp_path / "results" / "r1")
    assert res.scalar("memory", "sent", "t") == result.scalars["sent"]
    assert res.scalar("memory", "e2e_latency_ms.p99") == pytest.approx(
        result.scalars["e2e_latency_ms.p99"]
    )
    assert len(res.series("publish_rate")) == sum(
        1 for m, _, _ in result.series if m == "publish_rate"
    )
    hist = res.tables["latency_hist"]
    assert hist[hist.kind == "e2e"]["count"].sum() == result.e2e.total
    assert res.meta["backends"]["memory"]["backend"] == "memory"


def test_a_failing_backend_raises_and_leaves_no_process(tmp_path: Path) -> None:
    import multiprocessing

    from sqlitequeue.bench.errors import BackendError

    spec = BackendSpec("kafka", bootstrap_servers=None)
    with pytest.raises(BackendError):
        run_workload(workload(), spec, data_dir=tmp_path, progress=False)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("sqq-")]


def test_one_failed_step_is_a_stall_two_in_a_row_end_the_search() -> None:
    def steps(*oks: bool) -> list[RateStep]:
        return [RateStep(k, 100.0 * 2**k, 100.0 * 2**k, 1.0, 2.0, ok) for k, ok in enumerate(oks)]

    assert max_sustainable_rate(steps(True, False, True, True, False, False)) == 800
    assert max_sustainable_rate(steps(False, False, True)) == 0
    assert max_sustainable_rate(steps(True, True)) == 200


def test_fan_out_on_a_backend_without_groups_is_not_applicable(tmp_path: Path) -> None:
    with pytest.raises(NotApplicable, match="fan-out"):
        run("sqlite-seed", tmp_path, subscriptionsPerTopic=2)


def test_the_parent_counts_each_group_from_the_consumers_bitmaps() -> None:
    """Two consumers of one group saw sequences {0, 1} and {1}: 2 unique, 1 of 3 lost."""
    import pickle

    from sqlitequeue.bench.runner.live import Live
    from sqlitequeue.bench.runner.messages import (
        ConsumerDone,
        ConsumerRole,
        ProducerRole,
        ProducerStats,
    )

    live = Live(topics=1, groups=1)
    stats = ProducerStats(
        ProducerRole(0, 0), sent=3, acked=3, errors=0, lag_ms=0.0, last_error=None, publish={}
    )
    live.add_producer_stats(pickle.loads(pickle.dumps(stats)))  # as it crosses processes
    live.add_consumer_done(ConsumerDone(ConsumerRole(0, 0, 0), {0: bytes([0b011])}))
    live.add_consumer_done(ConsumerDone(ConsumerRole(0, 0, 1), {0: bytes([0b010])}))
    assert live.unique_and_lost() == (2, 1)
    assert len(live.consumers_done) == 2
