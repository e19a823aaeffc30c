"""The decision: profiles validated field by field, criteria against results folders, verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlitequeue.bench import decide
from sqlitequeue.bench.decide.criteria import check_writers
from sqlitequeue.bench.decide.evidence import recovery_by_durability
from sqlitequeue.bench.errors import ProfileError
from sqlitequeue.bench.results import RunWriter
from sqlitequeue.cli import main

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "examples" / "profiles" / "seed.yaml"
BIG = REPO / "examples" / "profiles" / "big.yaml"


def bench_run(
    root: Path,
    sqlite_rate: float = 6000.0,
    kafka_rate: float = 15000.0,
    all_steps_ok: bool = False,
    steady_p99_ms: float = 4.0,
) -> Path:
    """A bench results folder like `bench compare` writes (max-rate and steady workloads)."""
    with RunWriter(root, "bench-fixture", kind="bench") as w:
        rates = {"sqlite-queue": sqlite_rate, "sqlite-seed": sqlite_rate / 4, "kafka": kafka_rate}
        for backend, rate in rates.items():
            w.metric(backend, "max-rate-1kb", "max_sustainable_rate", rate)
            w.metric(backend, "max-rate-1kb", "p99_target_ms", 50.0)
            w.metric(backend, "max-rate-1kb", "target_rate", 0.0)
            w.metric(backend, "steady-1kb", "target_rate", 1000.0)
            w.metric(backend, "steady-1kb", "e2e_latency_ms.p99", steady_p99_ms)
            w.table(
                "rate_steps",
                [
                    {"backend": backend, "workload": "max-rate-1kb", "target": r, "ok": ok}
                    for r, ok in ((rate / 2, True), (rate, True), (rate * 2, all_steps_ok))
                ],
            )
    return root / "bench-fixture"


def faults_run(root: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    """A failure-lab results folder with a faults table."""
    base = {"produced": 1000, "acknowledged": 990, "duplicated": 0, "repeat": 0, "notes": ""}
    rows = rows or [
        {"experiment": "kill-consumer", "backend": "sqlite-queue", "durability": "NORMAL",
         "rto_s": 0.4, "rpo_s": 0.0, "lost": 0, "rpo_messages": 0},
        {"experiment": "host-loss", "backend": "sqlite-queue", "durability": "NORMAL",
         "rto_s": 3.5, "rpo_s": 1.2, "lost": 150, "rpo_messages": 150},
        {"experiment": "host-loss-litestream-down", "backend": "sqlite-queue",
         "durability": "NORMAL", "rto_s": 3.0, "rpo_s": 2.9, "lost": 400, "rpo_messages": 400},
        {"experiment": "kill-broker", "backend": "kafka", "durability": "acks=all",
         "rto_s": 9.0, "rpo_s": 0.0, "lost": 0, "rpo_messages": 0},
    ]  # fmt: skip
    with RunWriter(root, "faults-fixture", kind="faults") as w:
        w.table("faults", [{**base, **r, "recovered": 990 - r["lost"]} for r in rows])
    return root / "faults-fixture"


def seed_profile(**changes: Any) -> decide.Profile:
    data = yaml.safe_load(SEED.read_text())
    data.update(changes)
    return decide.load_profile(data)


def status(decision: decide.Decision) -> dict[str, str]:
    return {c.key: c.status for c in decision.criteria}


# ------------------------------------------------------------------------------ verdicts


def test_seed_profile_fits_with_evidence(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path), faults_run(tmp_path)])
    decision = decide.evaluate(decide.load_profile(SEED), evidence)
    assert decision.verdict == decide.SQLITE_FITS
    hard = {c.key: c for c in decision.criteria if c.hard}
    assert all(c.status == decide.PASS for c in hard.values()), status(decision)
    # the best SQLite backend's measured rate, its headroom over the 400 msg/s peak
    assert "sqlite-queue sustained 6,000 msg/s" in hard["throughput"].evidence
    assert hard["throughput"].headroom == "15x peak"
    # worst RTO/RPO over the failure lab's SQLite runs, not the Kafka rows
    assert "worst RTO 3.5 s" in hard["downtime"].evidence
    assert "worst RPO 1.2 s" in hard["data_loss"].evidence
    assert "controls not counted: host-loss-litestream-down" in hard["data_loss"].evidence
    assert any("peak above 3,000 msg/s" in line for line in decision.changes)
    reading = decide.summary_text(decision)
    assert "All 6 hard criteria pass" in reading and "tightest" in reading
    fig = decide.plot_criteria(decision)
    assert len(fig.axes[0].patches) == 4  # throughput, downtime, data loss, cost


def test_big_multi_region_profile_stays_on_kafka(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path), faults_run(tmp_path)])
    decision = decide.evaluate(decide.load_profile(BIG), evidence)
    assert decision.verdict == decide.STAY_ON_KAFKA
    got = status(decision)
    for key in ("throughput", "regions", "writers", "ecosystem", "data_loss"):
        assert got[key] == decide.FAIL, key
    assert any("single region" in line for line in decision.changes)
    cost_criterion = next(c for c in decision.criteria if c.key == "cost")
    assert cost_criterion.status == decide.FAIL and "moot" in cost_criterion.evidence


def test_multi_region_alone_decides_even_without_measurements() -> None:
    decision = decide.evaluate(decide.load_profile(BIG), decide.Evidence())
    assert decision.verdict == decide.STAY_ON_KAFKA
    assert status(decision)["throughput"] == decide.UNKNOWN


def test_missing_failure_lab_is_inconclusive_and_says_what_to_run(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path)])
    decision = decide.evaluate(decide.load_profile(SEED), evidence)
    assert decision.verdict == decide.INCONCLUSIVE
    assert status(decision)["downtime"] == decide.UNKNOWN
    assert any("sqlitequeue bench faults" in line for line in decision.changes)


@pytest.mark.parametrize(("rate", "expected"), [(800.0, decide.PASS), (799.0, decide.FAIL)])
def test_throughput_needs_peak_times_headroom(tmp_path: Path, rate: float, expected: str) -> None:
    """Seed peak 400 msg/s x headroom 2.0 = 800 msg/s of measured capacity."""
    evidence = decide.gather_evidence([bench_run(tmp_path, sqlite_rate=rate)])
    assert status(decide.evaluate(seed_profile(), evidence))["throughput"] == expected


def test_a_search_that_never_failed_is_a_lower_bound(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path, sqlite_rate=500, all_steps_ok=True)])
    criterion = decide.evaluate(seed_profile(), evidence).criteria[0]
    assert criterion.status == decide.UNKNOWN
    assert "lower bound" in criterion.evidence


def test_a_failed_first_ramp_step_is_unknown_not_zero_capacity(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path, sqlite_rate=0.0)])
    criterion = decide.evaluate(seed_profile(), evidence).criteria[0]
    assert criterion.status == decide.UNKNOWN and "first step" in criterion.evidence


def test_decide_without_results_runs_quick_measurements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring only: the real runs take minutes (see `make compare`)."""
    from sqlitequeue.bench import compare
    from sqlitequeue.bench.faults import experiments

    calls: list[tuple[str, bool, Any]] = []

    def fake_compare(quick: bool = False, out: Any = None, **_: Any) -> Path:
        calls.append(("compare", quick, out))
        return bench_run(tmp_path)

    def fake_faults(quick: bool = False, out: Any = None, **_: Any) -> Path:
        calls.append(("faults", quick, out))
        return faults_run(tmp_path)

    monkeypatch.setattr(compare, "run_compare", fake_compare)
    monkeypatch.setattr(experiments, "run_faults", fake_faults)
    decision, paths = decide.decide(SEED, out=tmp_path)
    assert calls == [("compare", True, tmp_path), ("faults", True, tmp_path)]
    assert decision.verdict == decide.SQLITE_FITS and paths[0].exists()


def test_recovery_uses_the_durability_that_meets_both_tolerances(tmp_path: Path) -> None:
    rows = [
        {"experiment": "host-loss", "backend": "sqlite-queue", "durability": "OFF",
         "rto_s": 1.0, "rpo_s": 8.0, "lost": 900, "rpo_messages": 900},
        {"experiment": "host-loss", "backend": "sqlite-queue", "durability": "FULL",
         "rto_s": 2.0, "rpo_s": 1.0, "lost": 100, "rpo_messages": 100},
    ]  # fmt: skip
    evidence = decide.gather_evidence([bench_run(tmp_path), faults_run(tmp_path, rows)])
    decision = decide.evaluate(seed_profile(), evidence)
    data_loss = next(c for c in decision.criteria if c.key == "data_loss")
    assert data_loss.status == decide.PASS and "durability FULL" in data_loss.evidence
    strict = decide.evaluate(seed_profile(data_loss_tolerance_s=0.5), evidence)
    assert status(strict)["data_loss"] == decide.FAIL
    assert strict.verdict == decide.STAY_ON_KAFKA
    slow = decide.evaluate(seed_profile(downtime_tolerance_s=1.5), evidence)
    assert status(slow)["downtime"] == decide.FAIL


def test_experiments_run_at_one_durability_count_for_every_setting(tmp_path: Path) -> None:
    rows = [
        {"experiment": "consumer-kill", "backend": "sqlite-queue", "durability": "normal",
         "rto_s": 7.0, "rpo_s": 0.0, "lost": 0, "rpo_messages": 0},
        {"experiment": "host-loss", "backend": "sqlite-queue", "durability": "normal",
         "rto_s": 1.0, "rpo_s": 8.0, "lost": 800, "rpo_messages": 800},
        {"experiment": "host-loss", "backend": "sqlite-queue", "durability": "full",
         "rto_s": 2.0, "rpo_s": 1.0, "lost": 100, "rpo_messages": 100},
    ]  # fmt: skip
    evidence = decide.gather_evidence([faults_run(tmp_path, rows)])
    full = next(r for r in recovery_by_durability(evidence) if r.durability == "full")
    assert (full.rto_s, full.rpo_s, full.experiments) == (7.0, 1.0, ("consumer-kill", "host-loss"))
    downtime = next(
        c for c in decide.evaluate(seed_profile(), evidence).criteria if c.key == "downtime"
    )
    assert "worst RTO 7 s" in downtime.evidence and "durability full" in downtime.evidence


def test_writers_can_funnel_through_one_service() -> None:
    assert check_writers(seed_profile(writers=3)).status == decide.FAIL
    funnel = seed_profile(writers=3, writers_can_funnel=True)
    assert check_writers(funnel).status == decide.PASS


def test_latency_target_is_checked_when_given(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path, steady_p99_ms=12.0)])
    assert status(decide.evaluate(seed_profile(p99_target_ms=20), evidence))["latency"] == "pass"
    assert status(decide.evaluate(seed_profile(p99_target_ms=10), evidence))["latency"] == "fail"
    assert "latency" not in status(decide.evaluate(seed_profile(), evidence))


def test_latency_target_without_bench_results_is_unknown_not_a_crash(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([faults_run(tmp_path)])
    decision = decide.evaluate(seed_profile(p99_target_ms=20), evidence)
    assert status(decision)["latency"] == decide.UNKNOWN
    assert decision.verdict == decide.INCONCLUSIVE


def test_cost_and_team_are_soft_caveats(tmp_path: Path) -> None:
    evidence = decide.gather_evidence([bench_run(tmp_path), faults_run(tmp_path)])
    decision = decide.evaluate(
        seed_profile(team_capacity="kafka-ops", monthly_budget_usd=1), evidence
    )
    assert decision.verdict == decide.SQLITE_FITS
    assert status(decision)["team"] == status(decision)["cost"] == decide.FAIL
    assert sum(line.startswith("caveat:") for line in decision.changes) == 2


def test_existing_vm_drops_the_vm_from_the_bill() -> None:
    own = decide.evaluate(seed_profile(vm_exists=True), decide.Evidence())
    new = decide.evaluate(seed_profile(), decide.Evidence())

    def sqlite_s3(d: decide.Decision) -> float:
        return next(p.total for p in d.projections if p.architecture == "sqlite-s3")

    assert sqlite_s3(new) - sqlite_s3(own) > 12  # the t4g.small alone is $12.26/month
    assert any("vm_exists" in a for a in own.assumptions)


def test_report_is_written_as_markdown_html_and_json(tmp_path: Path) -> None:
    bench = bench_run(tmp_path)
    decision, paths = decide.decide(SEED, [bench, faults_run(tmp_path)])
    assert [p.name for p in paths] == [
        "decision-seed.md",
        "decision-seed.html",
        "decision-seed.json",
    ]
    assert all(p.parent == bench for p in paths)
    md, page = paths[0].read_text(), paths[1].read_text()
    assert "**SQLite fits**" in md and "| Throughput" in md
    assert page.startswith("<section") and "<table>" in page and "<html" not in page
    data = json.loads(paths[2].read_text())
    assert data["verdict"] == decision.verdict == decide.SQLITE_FITS
    assert str(bench) in data["sources"]


# ------------------------------------------------------------------------------ profile errors


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"peak_rate": None}, "peak_rate"),
        ({"peak_rate": "fast"}, "peak_rate"),
        ({"peak_rate": 0}, "peak_rate"),
        ({"average_rate": 10_000}, "average_rate"),
        ({"message_bytes": 1.5}, "message_bytes"),
        ({"writers": True}, "writers"),
        ({"downtime_tolerance_s": -1}, "downtime_tolerance_s"),
        ({"team_capacity": "huge"}, "team_capacity"),
        ({"kafka_ecosystem": ["kafka-steams"]}, "kafka_ecosystem"),
        ({"kafka_ecosystem": "ksqldb"}, "kafka_ecosystem"),
        ({"object_store": "gcs"}, "object_store"),
        ({"peak_rte": 10}, "peak_rte"),
    ],
)
def test_bad_profile_names_the_field(change: dict[str, Any], field: str) -> None:
    data = yaml.safe_load(SEED.read_text())
    data.update(change)
    data = {k: v for k, v in data.items() if not (k == "peak_rate" and v is None)}
    with pytest.raises(ProfileError, match=f"'{field}'"):
        decide.load_profile(data)


def test_bad_profile_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        decide.load_profile(tmp_path / "nope.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ProfileError, match="mapping"):
        decide.load_profile(listed)
    broken = tmp_path / "broken.yaml"
    broken.write_text("peak_rate: [1,\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        decide.load_profile(broken)


# ------------------------------------------------------------------------------ CLI


def test_cli_decide_with_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench, faults = bench_run(tmp_path), faults_run(tmp_path)
    code = main(["decide", str(SEED), "--results", str(bench), "--results", str(faults)])
    out = capsys.readouterr().out
    assert code == 0
    assert "profile seed: SQLite fits" in out and "decision-seed.md" in out


def test_cli_decide_bad_profile_exits_1_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(SEED.read_text())
    del data["downtime_tolerance_s"]
    bad.write_text(yaml.safe_dump(data))
    assert main(["decide", str(bad), "--results", str(bench_run(tmp_path))]) == 1
    assert "'downtime_tolerance_s' is missing" in capsys.readouterr().err


def test_cli_bench_cost_prints_table_and_writes_charts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = tmp_path / "prices.yaml"
    overrides.write_text("vm_exists: true\nobject_store: b2\n")
    args = ["bench", "cost", "--profile", str(SEED), "--params", str(overrides)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "Amazon MSK provisioned" in out and "already exists" in out
    (folder,) = (tmp_path / "out").iterdir()
    for name in ("cost_vs_throughput.png", "cost_breakdown.png", "cost_items.csv", "run.json"):
        assert (folder / name).stat().st_size > 0, name
    assert main(["bench", "cost", "--list-params"]) == 0
    assert "s3_put_per_1000 = 0.005" in capsys.readouterr().out
