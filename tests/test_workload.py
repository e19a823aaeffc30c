"""Workloads: bundled files and OMB files load, bad files fail naming the field, schedules."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlitequeue.bench.errors import WorkloadError
from sqlitequeue.bench.metrics import Histogram
from sqlitequeue.bench.workload import (
    HARNESS_CEILING,
    HEADER_SIZE,
    MIN_STEP_SECONDS,
    bundled_names,
    load_workload,
    parse_workload,
    schedule,
    send_keys,
    step_schedule,
)

#: OpenMessaging Benchmark's workloads/1-topic-1-partition-1kb.yaml, field for field.
OMB_FILE = """\
name: 1 topic / 1 partition / 1Kb

topics: 1
partitionsPerTopic: 1
keyDistributor: "NO_KEY"
messageSize: 1024
payloadFile: "payload/payload-1Kb.data"
subscriptionsPerTopic: 1
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 50000
consumerBacklogSizeGB: 0
testDurationMinutes: 15
"""


def write(tmp_path: Path, text: str, name: str = "w.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_workload_loads_and_schedules(name: str) -> None:
    w = load_workload(name)
    first = list(zip(range(50), schedule(w), strict=False))
    assert first, f"{name} schedules nothing"
    times = [send.at for _, send in first]
    assert times == sorted(times)
    assert all(send.size >= HEADER_SIZE for _, send in first)


def test_bundled_suite_spans_sizes_shapes_and_the_seed_profile() -> None:
    loaded = [load_workload(n) for n in bundled_names()]
    sizes = {w.message_size for w in loaded}
    assert min(sizes) == 64 and max(sizes) == 64 * 1024
    shapes = {w.shape.type for w in loaded}
    assert {"steady", "poisson", "bursts", "daily"} <= shapes
    assert any(w.finds_max_rate for w in loaded)
    assert any(w.trace is not None for w in loaded)
    assert any(w.subscriptions_per_topic > 1 for w in loaded)
    assert any(w.consumer_backlog_messages > 0 for w in loaded)
    seed = load_workload("seed-clickstream")
    assert 100 <= seed.peak_rate <= 1000  # "a few hundred messages per second at peak"


def test_an_omb_workload_file_loads_unchanged(tmp_path: Path) -> None:
    w = load_workload(write(tmp_path, OMB_FILE, "1-topic-1-partition-1kb.yaml"))
    assert w.name == "1 topic / 1 partition / 1Kb"
    assert (w.producer_rate, w.message_size, w.duration_seconds) == (50000, 1024, 900)
    assert w.key_distributor == "NO_KEY"
    short = w.with_duration(2)
    sends = list(schedule(short))
    assert len(sends) == pytest.approx(2 * 50000, rel=0.01)
    assert all(s.size == 1024 and s.key is None for s in sends[:10])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\nmessageSise: 10\n", "messageSise"),
        ("name: x\nmessageSize: ten\n", "messageSize"),
        ("name: x\nmessageSize: 4\n", "messageSize"),
        ("name: x\ntopics: 0\n", "topics"),
        ("name: x\nproducerRate: -5\n", "producerRate"),
        ("name: x\nkeyDistributor: SOMETIMES\n", "keyDistributor"),
        ("name: x\nrateShape: {type: sawtooth}\n", "rateShape.type"),
        ("name: x\nrateShape: {type: bursts, burstRat: 5}\n", "rateShape.burstRat"),
        ("name: x\nrateShape: {type: bursts}\n", "rateShape.burstRate"),
        ("name: x\ntrace: {file: nowhere.jsonl}\n", "trace.file"),
        ("name: x\ntestDurationMinutes: yes\n", "testDurationMinutes"),
        ("name: x\nsearchResolution: 0\n", "searchResolution"),
        ("name: x\nsearchResolution: 10\n", "searchResolution"),
        ("topics: 1\n", "name"),
    ],
)
def test_a_bad_field_is_named_with_the_file(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WorkloadError) as info:
        load_workload(path)
    assert repr(field) in str(info.value)
    assert str(path) in str(info.value)


def test_invalid_yaml_and_missing_workloads_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="not valid YAML"):
        load_workload(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(WorkloadError, match="mapping"):
        load_workload(write(tmp_path, "- a list\n"))
    with pytest.raises(WorkloadError, match="bench list"):
        load_workload("no-such-workload")


def steady(**fields: object) -> dict[str, object]:
    return {"name": "t", "producerRate": 100, "testDurationSeconds": 10, **fields}


def test_the_schedule_is_deterministic_for_a_seed() -> None:
    w = parse_workload(steady(rateShape={"type": "poisson"}, keyDistributor="RANDOM_NANO"))
    assert list(schedule(w)) == list(schedule(w))
    other = parse_workload(
        steady(rateShape={"type": "poisson"}, keyDistributor="RANDOM_NANO", seed=2)
    )
    assert list(schedule(w)) != list(schedule(other))


def test_rates_follow_the_shape() -> None:
    flat = list(schedule(parse_workload(steady())))
    assert len(flat) == pytest.approx(1000, abs=2)
    poisson = list(schedule(parse_workload(steady(rateShape={"type": "poisson"}))))
    assert 800 < len(poisson) < 1200
    bursts = parse_workload(
        steady(
            rateShape={"type": "bursts", "burstRate": 1000, "burstSeconds": 1, "periodSeconds": 5}
        )
    )
    times = [s.at for s in schedule(bursts)]
    in_burst = sum(1 for t in times if t % 5 < 1)
    assert in_burst == pytest.approx(2000, rel=0.02)
    assert len(times) - in_burst == pytest.approx(800, rel=0.02)
    daily = parse_workload(
        steady(rateShape={"type": "daily", "troughRate": 10, "peakRate": 200, "periodSeconds": 10})
    )
    times = [s.at for s in schedule(daily)]
    night = sum(1 for t in times if t < 1)
    noon = sum(1 for t in times if 4.5 <= t < 5.5)
    assert noon > 5 * night


def test_producers_share_the_rate() -> None:
    w = parse_workload(steady(producersPerTopic=4))
    counts = [len(list(schedule(w, i, 4))) for i in range(4)]
    assert sum(counts) == pytest.approx(1000, abs=4)
    assert max(counts) - min(counts) <= 1


def test_a_search_step_is_shared_by_the_producers_at_its_rate() -> None:
    w = parse_workload(steady(producerRate=0, producersPerTopic=2))
    shares = [list(step_schedule(w, 1000, 2.0, 4.0, i, 2)) for i in range(2)]
    assert [len(share) for share in shares] == [1000, 1000]
    times = sorted(s.at for share in shares for s in share)
    assert times[0] == pytest.approx(2.0) and times[-1] < 4.0
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) == pytest.approx(0.001) and max(gaps) == pytest.approx(0.001)


def test_keys_continue_across_search_steps() -> None:
    w = parse_workload(steady(producerRate=0, keyDistributor="KEY_ROUND_ROBIN"))
    keys = send_keys(w, 0)
    first = [s.key for s in step_schedule(w, 10, 0.0, 1.0, keys=keys)]
    second = [s.key for s in step_schedule(w, 10, 5.0, 6.0, keys=keys)]
    assert first + second == [b"key-%d" % n for n in range(20)]


def test_a_max_rate_search_tops_out_at_the_harness_ceiling_by_default() -> None:
    w = parse_workload(steady(producerRate=0, producerStartRate=1000))
    assert w.finds_max_rate
    assert w.producer_max_rate == HARNESS_CEILING
    assert w.search_resolution == pytest.approx(0.1)
    # scheduled on its own (no search driving it), it runs at its start rate
    assert len(list(schedule(w))) == pytest.approx(10 * 1000, abs=2)
    # shortened, it keeps meaningful steps; the duration is then the search's time budget
    assert w.with_duration(6).ramp_step_seconds == MIN_STEP_SECONDS
    assert w.with_duration(60).ramp_step_seconds == w.ramp_step_seconds


def test_backlog_in_gb_becomes_messages(tmp_path: Path) -> None:
    w = parse_workload(steady(consumerBacklogSizeGB=0.001, messageSize=1024))
    assert w.consumer_backlog_messages == int(0.001 * 1024**3 / 1024)


def test_trace_replay_at_1x_and_scaled(tmp_path: Path) -> None:
    rows = [{"timestamp": 1000 + i * 0.5, "size": 100 + i, "key": f"u{i}"} for i in range(10)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv_rows = "timestamp,size,key\n" + "".join(f"{i * 500},{200},k\n" for i in range(4))
    (tmp_path / "t.csv").write_text(csv_rows)
    base = {"name": "t", "testDurationSeconds": 100}
    w = parse_workload({**base, "trace": {"file": "t.jsonl"}}, "w", base=tmp_path)
    sends = list(schedule(w))
    assert [s.at for s in sends] == pytest.approx([i * 0.5 for i in range(10)])
    assert [s.size for s in sends] == [100 + i for i in range(10)]
    assert sends[3].key == b"u3"
    fast = parse_workload({**base, "trace": {"file": "t.jsonl", "speed": 2}}, "w", base=tmp_path)
    assert list(schedule(fast))[-1].at == pytest.approx(4.5 / 2)
    ms = parse_workload(
        {**base, "trace": {"file": "t.csv", "timestampUnit": "ms"}}, "w", base=tmp_path
    )
    assert [s.at for s in schedule(ms)] == pytest.approx([0, 0.5, 1.0, 1.5])
    looped = parse_workload(
        {**base, "testDurationSeconds": 9, "trace": {"file": "t.jsonl", "loop": True}},
        "w",
        base=tmp_path,
    )
    assert len(list(schedule(looped))) == 18


def test_a_malformed_trace_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"timestamp": 1, "size": 5}\n{"timestamp": "x"}\n')
    w = parse_workload({"name": "t", "trace": {"file": "t.jsonl"}}, "w", base=tmp_path)
    with pytest.raises(WorkloadError, match=r"t\.jsonl:2"):
        list(schedule(w))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=300))
def test_histogram_percentiles_are_within_one_percent(values: list[int]) -> None:
    hist = Histogram()
    for v in values:
        hist.record(v)
    ordered = sorted(values)
    for pct in (50, 90, 99, 100):
        exact = ordered[max(0, -(-len(ordered) * pct // 100) - 1)] / 1000
        got = hist.percentile(pct)
        assert exact <= got <= exact * 1.01 + 0.001
    assert hist.max_us == max(values)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**7)), st.lists(st.integers(0, 10**7)))
def test_merged_histograms_equal_one_histogram(a: list[int], b: list[int]) -> None:
    one, left, right = Histogram(), Histogram(), Histogram()
    for v in a + b:
        one.record(v)
    for v in a:
        left.record(v)
    for v in b:
        right.record(v)
    left.merge(right)
    assert left.counts == one.counts
    assert (left.total, left.max_us, left.sum_us) == (one.total, one.max_us, one.sum_us)
    assert Histogram.from_state(left.to_state()).summary() == one.summary()
