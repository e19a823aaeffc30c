"""The runner: open-loop accounting, counts, fan-out, backlogs, max-rate search, results,
the harness's ceiling."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlitequeue.bench.backends import base
from sqlitequeue.bench.backends.base import BackendSpec, DeliveryCallback, Producer
from sqlitequeue.bench.backends.memory import MemoryBackend
from sqlitequeue.bench.metrics import WindowedHistograms
from sqlitequeue.bench.results import RunWriter, load
from sqlitequeue.bench.runner import (
    NotApplicable,
    RateSearch,
    RateStep,
    RunResult,
    SearchEnd,
    SearchPhase,
    max_sustainable_rate,
    run_workload,
    search_ceiling,
    verify_ceiling,
    write_result,
)
from sqlitequeue.bench.runner.latency import LatencyRecorder
from sqlitequeue.bench.runner.result import search_note, search_scalars
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


def test_a_max_rate_search_that_passes_its_top_says_the_harness_was_the_limit(
    tmp_path: Path,
) -> None:
    result = run(
        "memory",
        tmp_path,
        producerRate=0,
        producerStartRate=100,
        producerMaxRate=400,
        rampStepSeconds=1,
        testDurationSeconds=30,
        warmupDurationSeconds=1,
        p99TargetMs=200,
        producersPerTopic=2,
    )
    assert [(s.target_rate, s.ok, s.phase) for s in result.steps] == [
        (100, True, SearchPhase.RAMP),
        (200, True, SearchPhase.RAMP),
        (400, True, SearchPhase.RAMP),
    ]
    assert [s.start_s for s in result.steps] == sorted(s.start_s for s in result.steps)
    assert all(s.achieved_rate == pytest.approx(s.target_rate, rel=0.05) for s in result.steps)
    s = result.scalars
    assert s["max_sustainable_rate"] == 400
    assert s["max_rate_harness_limited"] == 1
    assert s["lost"] == 0
    assert any("harness, not the backend, was the limit" in n for n in result.notes)


def test_a_search_out_of_time_says_what_it_found(tmp_path: Path) -> None:
    result = run(
        "memory",
        tmp_path,
        producerRate=0,
        producerStartRate=100,
        rampStepSeconds=1,
        testDurationSeconds=4.5,
        warmupDurationSeconds=0.5,
        p99TargetMs=200,
    )
    assert [s.target_rate for s in result.steps] == [100, 200]
    assert result.scalars["max_sustainable_rate"] == 200
    assert result.scalars["max_rate_harness_limited"] == 0
    assert any("time budget" in n and "at least 200 msg/s" in n for n in result.notes)


def bounds(search: RateSearch) -> tuple[float, float]:
    """The search's highest passing and lowest failing rate (it must have found one)."""
    assert search.failing is not None
    return search.passing, search.failing


def judged(capacity: float, search: RateSearch, stall_at: float | None = None) -> list[RateStep]:
    """Run ``search`` against a fake backend that meets its target up to ``capacity`` msg/s
    (and stalls once, at ``stall_at``); return the steps as the runner records them."""
    steps: list[RateStep] = []
    while (chosen := search.next_rate()) is not None:
        rate, phase = chosen
        ok = rate <= capacity and not (rate == stall_at and phase is SearchPhase.RAMP)
        steps.append(RateStep(len(steps), rate, rate if ok else capacity, 1.0, 9.0, ok, phase))
        search.record(rate, ok)
        assert len(steps) < 60, "the search does not end"
    return steps


def test_the_search_ramps_then_bisects_to_its_resolution() -> None:
    search = RateSearch(1000, 100_000, resolution=0.1)
    steps = judged(7000, search)
    assert search.ended is SearchEnd.CONVERGED
    passing, failing = bounds(search)
    assert passing <= 7000 < failing
    assert search.gap is not None and search.gap <= 0.1
    assert [s.target_rate for s in steps[:5]] == [1000, 2000, 4000, 8000, 8000]
    assert [s.phase for s in steps[3:5]] == [SearchPhase.RAMP, SearchPhase.CONFIRM]
    assert {s.phase for s in steps[5:]} <= {SearchPhase.BISECT, SearchPhase.CONFIRM}
    assert max_sustainable_rate(steps) == search.passing
    scalars = search_scalars(search)
    assert scalars["max_sustainable_rate"] == search.passing
    assert scalars["max_rate_failed"] == search.failing
    assert scalars["max_rate_harness_limited"] == 0
    assert "missed it twice in a row" in search_note(search, steps)


def test_one_miss_is_a_stall_two_in_a_row_fail_the_rate() -> None:
    search = RateSearch(1000, 100_000)
    steps = judged(7000, search, stall_at=2000)
    assert [(s.target_rate, s.ok) for s in steps[:4]] == [
        (1000, True),
        (2000, False),
        (2000, True),  # tried again: the first miss was a stall
        (4000, True),
    ]
    passing, failing = bounds(search)
    assert passing <= 7000 < failing
    assert max_sustainable_rate(steps) == passing


def test_a_search_that_passes_its_top_ends_there() -> None:
    search = RateSearch(1000, 100_000)
    steps = judged(math.inf, search)
    assert [s.target_rate for s in steps] == [1000 * 2**k for k in range(7)] + [100_000]
    assert search.ended is SearchEnd.CEILING and search.passing == 100_000
    assert search_scalars(search)["max_rate_harness_limited"] == 1
    assert "the harness, not the backend, was the limit" in search_note(search, steps)


def test_a_search_that_fails_at_its_start_rate_goes_down() -> None:
    search = RateSearch(1000, 100_000)
    steps = judged(300, search)
    passing, failing = bounds(search)
    assert passing <= 300 < failing
    assert steps[2].target_rate == 500
    hopeless = RateSearch(1000, 100_000)
    judged(10, hopeless)
    assert hopeless.ended is SearchEnd.FLOOR and hopeless.passing == 0
    assert "missed at every rate tried" in search_note(hopeless, [])


def test_a_search_stopped_early_says_what_it_knows() -> None:
    search = RateSearch(1000, 100_000)
    search.record(1000, True)
    search.stop(SearchEnd.BUDGET)
    assert search.next_rate() is None
    note = search_note(search, [])
    assert "time budget" in note and "at least 1,000 msg/s" in note


def test_a_search_stopped_before_any_rate_passed_claims_no_lower_bound() -> None:
    search = RateSearch(1000, 100_000)
    search.record(1000, False)
    search.record(1000, False)
    search.stop(SearchEnd.BUDGET)
    note = search_note(search, [])
    assert "at least 0" not in note and "no rate tried met the target" in note


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.floats(min_value=70, max_value=99_000),
    resolution=st.floats(min_value=0.01, max_value=0.1),
)
def test_bisection_brackets_any_capacity_within_the_resolution(
    capacity: float, resolution: float
) -> None:
    search = RateSearch(1000, 100_000, resolution=resolution)
    steps = judged(capacity, search)
    assert search.ended is SearchEnd.CONVERGED
    passing, failing = bounds(search)
    assert passing <= capacity < failing <= passing * (1 + resolution)
    assert max_sustainable_rate(steps) == passing


def test_the_harness_ceiling_is_checked_on_the_memory_backend(tmp_path: Path) -> None:
    w = workload(producerRate=0, producerMaxRate=500, producersPerTopic=2)
    assert search_ceiling(w) == 500
    check = verify_ceiling(w, seconds=2, warmup=0.5, data_dir=tmp_path)
    assert check.ok and check.verified == 500
    assert check.lost == 0 and check.producers == 2
    assert "OK" in check.describe()
    impossible = workload(producerRate=0, producerMaxRate=500, p99TargetMs=0.001)
    missed = verify_ceiling(impossible, seconds=1, warmup=0.2, data_dir=tmp_path)
    assert not missed.ok and missed.verified is None
    assert missed.attempts == 2  # one miss alone is taken as a stall
    assert "NOT MET" in missed.describe()


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


def test_the_max_sustainable_rate_is_the_best_pass_below_a_rate_missed_twice() -> None:
    def steps(*runs: tuple[float, bool]) -> list[RateStep]:
        return [RateStep(k, r, r, 1.0, 2.0, ok) for k, (r, ok) in enumerate(runs)]

    assert max_sustainable_rate(steps((100, True), (200, False), (200, True))) == 200
    assert max_sustainable_rate(steps((100, True), (200, False), (200, False))) == 100
    assert max_sustainable_rate(steps((100, False), (100, False))) == 0
    assert max_sustainable_rate(steps((100, True), (200, True))) == 200


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=30), st.floats(min_value=-1, max_value=5)),
        max_size=200,
    )
)
def test_latencies_recorded_a_poll_at_a_time_match_the_parents_histograms(
    arrivals: list[tuple[float, float]],
) -> None:
    start = 1_700_000_000.0
    fast, reference = LatencyRecorder(start), WindowedHistograms()
    for at, delay in arrivals:
        scheduled, now = start + at, start + at + delay
        fast.record_arrivals([scheduled, scheduled], now)
        for _ in range(2):  # as the children recorded each message before
            reference.record(scheduled - start, int((now - scheduled) * 1e6))
    assert fast.take() == reference.take()


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
