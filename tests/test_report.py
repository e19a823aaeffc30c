"""The report: charts, HTML and summary from a results folder alone, numbers from the files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sqlitequeue.bench.metrics import Histogram
from sqlitequeue.bench.report import workloads as workload_report
from sqlitequeue.bench.results import RunWriter, load
from sqlitequeue.cli import main

BACKENDS = {"sqlite-queue": 2.0, "kafka-confluent": 30.0}  # backend -> typical e2e ms


def make_results(root: Path, run_id: str = "fixture") -> Path:
    """Write a small, made-up but well-formed results folder (two backends, two workloads)."""
    with RunWriter(root, run_id) as w:
        w.metadata(p99_target_ms=50.0, kafka={"mode": "local", "version": "4.1.1"})
        for backend, base_ms in BACKENDS.items():
            w.metadata(backends={backend: {"backend": backend, "settings": {}}})
            for workload, rate in (("steady-1kb", 1000.0), ("max-rate-1kb", 0.0)):
                hist = Histogram()
                for i in range(1000):
                    hist.record(int(base_ms * 1000 * (1 + i / 500)))
                scalars = {
                    "target_rate": rate,
                    "sent": 10000,
                    "received": 10000,
                    "lost": 0,
                    "duplicates": 0,
                    "errors": 0,
                    "publish_rate_mean": rate or 4000.0,
                    "consume_rate_mean": rate or 4000.0,
                    "p99_target_ms": 50.0,
                    "disk_bytes_final": 5e6,
                    **{f"e2e_latency_ms.{k}": v for k, v in hist.summary().items()},
                    **{f"publish_latency_ms.{k}": v / 2 for k, v in hist.summary().items()},
                }
                if not rate:
                    scalars["max_sustainable_rate"] = 8000.0 if base_ms > 10 else 3000.0
                w.metrics([(backend, workload, m, None, v) for m, v in scalars.items()])
                for t in range(10):
                    w.metrics(
                        [
                            (backend, workload, "publish_rate", float(t), rate or 400.0 * t),
                            (backend, workload, "consume_rate", float(t), rate or 400.0 * t),
                            (backend, workload, "backlog", float(t), float(t % 3)),
                            (backend, workload, "cpu_percent.producers", float(t), 20.0),
                            (backend, workload, "cpu_percent.consumers", float(t), 30.0),
                            (backend, workload, "rss_bytes.producers", float(t), 40e6),
                            (backend, workload, "rss_bytes.consumers", float(t), 50e6),
                        ]
                    )
                w.table(
                    "latency_hist",
                    [
                        {
                            "backend": backend,
                            "workload": workload,
                            "kind": "e2e",
                            "upper_ms": u,
                            "count": c,
                        }
                        for u, c in hist.buckets_ms()
                    ],
                )
                if not rate:
                    w.table(
                        "rate_steps",
                        [
                            {
                                "backend": backend,
                                "workload": workload,
                                "step": k,
                                "target_rate": 100.0 * 2**k,
                                "achieved_rate": 100.0 * 2**k,
                                "p50_ms": base_ms,
                                "p99_ms": base_ms * (k + 1),
                                "ok": True,
                            }
                            for k in range(5)
                        ],
                    )
    return root / run_id


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return make_results(tmp_path)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixture folder whose report was written by a fresh interpreter, which also checks
    that writing a report imports no backend, no runner and no Kafka client."""
    folder = make_results(tmp_path_factory.mktemp("written"))
    code = (
        "import sys\n"
        "from sqlitequeue.bench.report import workloads as workload_report\n"
        f"workload_report.write_report({str(folder)!r})\n"
        "bad = [m for m in sys.modules if m.startswith(('sqlitequeue.bench.backends', "
        "'kafka', 'confluent_kafka', 'sqlitequeue.bench.runner'))]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return folder


def test_the_report_writes_every_chart_and_the_html(written: Path) -> None:
    index = written / "report" / "index.html"
    for name in workload_report.CHARTS:
        png = written / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='{name}.png'" in index.read_text()
    page = index.read_text()
    assert "Maximum sustainable rate" in page and "kafka-confluent" in page
    assert "4.1.1" in page  # the Kafka version recorded in run.json


def test_the_summary_takes_its_numbers_from_the_files(results: Path) -> None:
    res = load(results)
    table = workload_report.summary_table(res)
    assert list(table.workload.unique()) == ["steady-1kb", "max-rate-1kb"]
    row = table[(table.backend == "kafka-confluent") & (table.workload == "steady-1kb")].iloc[0]
    assert row["e2e p99 ms"] == pytest.approx(res.scalar("kafka-confluent", "e2e_latency_ms.p99"))
    assert row["cpu %"] == pytest.approx(50.0)
    assert row["rss MB"] == pytest.approx(90e6 / 1024**2)
    rates = workload_report.max_rate_table(res).set_index("backend")
    assert rates.loc["kafka-confluent", "searched max msg/s"] == 8000
    assert rates.loc["sqlite-queue", "highest suite rate met"] == 1000  # p99 ~6 ms <= 50
    assert rates.loc["kafka-confluent", "highest suite rate met"] != 1000  # p99 ~90 ms > 50


def test_the_reading_is_computed_not_written(results: Path, tmp_path: Path) -> None:
    lines = workload_report.reading(load(results))
    text = " ".join(lines)
    assert "steady-1kb: lowest end-to-end p99 was sqlite-queue" in text
    assert "kafka-confluent sustained 2.7x the rate of sqlite-queue" in text
    other = make_results(tmp_path / "other")
    metrics = other / "metrics.csv"
    metrics.write_text(
        metrics.read_text().replace(
            ",max_sustainable_rate,,8000.0", ",max_sustainable_rate,,1500.0"
        )
    )
    assert "sqlite-queue sustained 2.0x the rate of kafka-confluent" in " ".join(
        workload_report.reading(load(other))
    )


def test_the_report_command_prints_the_summary(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "report", str(results), "--out", str(results / "r2")]) == 0
    out = capsys.readouterr().out
    assert "max sustainable rate at e2e p99 <= 50 ms" in out
    assert "sqlite-queue" in out and (results / "r2" / "index.html").exists()


def test_an_empty_folder_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    from sqlitequeue.bench.errors import BenchError

    with pytest.raises(BenchError, match="not a results folder"):
        workload_report.write_report(tmp_path)
