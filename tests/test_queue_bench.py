"""`sqlitequeue bench queue`: the tables, ratios and verdicts are produced (never timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlitequeue.bench.microbench import run as microbench
from sqlitequeue.bench.microbench.run import PATTERNS, Sizes
from sqlitequeue.cli import build_parser, main

TINY = Sizes(
    puts=40,
    puts_full=10,
    batch_rows=2_000,
    get_acks=40,
    get_acks_full=10,
    claim_rows=300,
    latency_seconds=0.3,
    drain_messages=200,
    stream_rows=300,
    cap_seconds=10.0,
    peer_cap_seconds=2.0,
    drain_cap_seconds=10.0,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> microbench.Report:
    directory = tmp_path_factory.mktemp("bench")
    return microbench.run_benchmark(TINY, repeats=1, directory=directory)


def test_every_pattern_has_a_table_with_ours_the_raw_loop_and_the_peers(
    report: microbench.Report,
) -> None:
    text = microbench.format_report(report)
    for pattern in PATTERNS:
        assert pattern.title in text
    labels = {(m.pattern, m.impl) for m in report.measurements}
    for pattern in PATTERNS:
        assert (pattern.key, "ours") in labels
        assert (pattern.key, "raw") in labels
    assert ("put", "persist-queue") in labels
    assert ("get_ack", "litequeue") in labels
    assert "PASS" in text or "FAIL" in text


def test_every_measured_row_has_a_sample_and_no_errors(report: microbench.Report) -> None:
    for m in report.measurements:
        if m.skipped:
            continue
        assert m.samples, f"{m.pattern}/{m.durability}/{m.impl} measured nothing: {m.notes}"
        assert m.median() is not None and m.median() > 0  # type: ignore[operator]
        assert not any("ERROR" in note for note in m.notes), m.notes


def test_ratios_and_targets_are_computed_at_equal_durability(
    report: microbench.Report,
) -> None:
    checks = {(c.pattern, c.durability, c.what): c for c in report.checks}
    put_full = checks[("put", "full", "ours/persist-queue")]
    assert put_full.value is not None and put_full.passed is not None
    assert put_full.target == ">= 1.5"
    get_normal = checks[("get_ack", "normal", "ours/litequeue")]
    assert get_normal.target == ">= 10"
    raw = checks[("get_many", "normal", "ours/raw")]
    ours = next(
        m for m in report.measurements if (m.pattern, m.impl) == ("get_many", "ours")
    ).median()
    theirs = next(
        m for m in report.measurements if (m.pattern, m.impl) == ("get_many", "raw")
    ).median()
    assert raw.value == pytest.approx(ours / theirs)  # type: ignore[operator]
    assert ("latency_1000", "normal", "p99 ms") in checks
    assert ("latency_1000", "normal", "p50 ms") in checks
    assert ("latency_1000", "normal", "idle cpu %") in checks
    assert ("lifecycle", "normal", "records/s") in checks
    # no peer is ever compared at another durability than its own
    assert ("put", "normal", "ours/persist-queue") not in checks
    assert ("put", "full", "ours/litequeue") not in checks


def test_latency_rows_have_percentiles_in_order(report: microbench.Report) -> None:
    for m in report.measurements:
        if m.pattern.startswith("latency_") and m.samples:
            s = m.samples[0]
            assert 0 <= s["p50"] <= s["p95"] <= s["p99"] <= s["max"]
            assert s["idle_cpu"] >= 0  # % of a core while blocked with nothing to get


def test_json_output_is_plain_data(report: microbench.Report, tmp_path: Path) -> None:
    data = json.loads(json.dumps(microbench.report_to_json(report)))
    assert data["kind"] == "queue-bench"
    assert data["payload_bytes"] == 64
    assert {m["pattern"] for m in data["measurements"]} == {p.key for p in PATTERNS}


def test_cli_parses_its_options() -> None:
    args = build_parser().parse_args(
        ["bench", "queue", "--quick", "--repeats", "2", "--json", "x.json", "--only", "put"]
    )
    assert (args.quick, args.repeats, args.json, args.only) == (True, 2, "x.json", ["put"])


def test_cli_rejects_bad_repeats_and_unknown_patterns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "queue", "--repeats", "0"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["bench", "queue", "--only", "nope"])
    assert exc.value.code == 2
    with pytest.raises(microbench.BenchError):
        microbench.plan(TINY, only=["nope"])
