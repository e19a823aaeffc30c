"""The report: charts, HTML and summary from a results folder alone, numbers from the files."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sqlitequeue.bench.metrics import Histogram
from sqlitequeue.bench.report import workloads as workload_report
from sqlitequeue.bench.report.page import CAPTIONS
from sqlitequeue.bench.report.page import write_report as write_page
from sqlitequeue.bench.results import RunWriter, load
from sqlitequeue.cli import main

BACKENDS = {"sqlite-queue": 2.0, "kafka-confluent": 30.0}  # backend -> typical e2e ms


def make_results(root: Path, run_id: str = "fixture") -> Path:
    """Write a small, made-up but well-formed results folder (two backends, two workloads)."""
    with RunWriter(root, run_id) as w:
        w.metadata(p99_target_ms=50.0, kafka={"mode": "local", "version": "4.1.1"})
        w.metadata(load_average_at_start=[0.27001953125, 0.6083984375, 0.4345703125])
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
        "from sqlitequeue.bench.report.page import write_report\n"
        f"write_report({str(folder)!r})\n"
        "bad = [m for m in sys.modules if m.startswith(('sqlitequeue.bench.backends', "
        "'kafka', 'confluent_kafka', 'sqlitequeue.bench.runner'))]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return folder


def test_the_report_writes_every_chart_and_the_html(written: Path) -> None:
    index = written / "report" / "index.html"
    page = index.read_text()
    for name in workload_report.CHARTS:
        png = (written / "report" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert base64.b64encode(png).decode() in page  # embedded, not linked
        assert CAPTIONS[name] in html.unescape(page)  # what it shows, which way is better
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


def test_the_rate_ratio_compares_the_fastest_of_each_family(results: Path) -> None:
    """A slow extra SQLite backend does not inflate Kafka's lead: best against best."""
    metrics = results / "metrics.csv"
    slow = [
        line.replace("sqlite-queue", "sqlite-seed").replace(",3000.0", ",100.0")
        for line in metrics.read_text().splitlines()
        if ",sqlite-queue,max-rate-1kb,max_sustainable_rate," in line
    ]
    metrics.write_text(metrics.read_text() + "\n".join(slow) + "\n")
    text = " ".join(workload_report.reading(load(results)))
    assert "sqlite-seed 100 msg/s" in text  # the extra backend is there
    assert "kafka-confluent sustained 2.7x the rate of sqlite-queue" in text


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
        write_page(tmp_path)


# -- the page a reader opens: verdict first, self-contained, problems up front, clean numbers --

REPO = Path(__file__).resolve().parent.parent


class _Outline(HTMLParser):
    """The page's tags in order, with each element's class and the text of each heading."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _outline(page: str) -> _Outline:
    parser = _Outline()
    parser.feed(page)
    return parser


def _set_meta(folder: Path, **fields: object) -> None:
    run = folder / "run.json"
    run.write_text(json.dumps(json.loads(run.read_text()) | fields))


def test_the_first_section_is_the_verdict_before_any_chart(written: Path) -> None:
    tags = _outline((written / "report" / "index.html").read_text()).tags
    names = [t for t, _ in tags]
    first = next(i for i, t in enumerate(names) if t in ("section", "h2"))
    assert names.index("h1") < first < names.index("img")
    assert "verdict-section" in (tags[first][1].get("class") or "")
    page = (written / "report" / "index.html").read_text()
    verdict = page[page.index("verdict-section") : page.index("</section>")]
    assert re.search(r"Decision for profile <code>seed</code>: <strong class='verdict'>", verdict)
    assert "Kafka, same runs" in verdict and "headroom" in verdict
    assert "What would change it" in verdict


def test_without_fault_results_the_verdict_names_the_unknowns_and_how_to_measure(
    written: Path,
) -> None:
    page = (written / "report" / "index.html").read_text()
    before_charts = page[: page.index("<img")]
    assert "these criteria are unknown" in before_charts
    assert "Write unavailability" in before_charts
    assert "<code>sqlitequeue bench faults</code>" in before_charts


def test_a_faults_run_beside_the_folder_feeds_the_verdict(tmp_path: Path) -> None:
    folder = make_results(tmp_path)
    shutil.copytree(REPO / "results" / "reference-faults", tmp_path / "lab")
    page = write_page(folder, team=REPO / "examples/profiles/big.yaml")
    text = page.read_text()
    assert "Decision for profile <code>big</code>" in text
    assert f"Failure-lab figures from {tmp_path / 'lab'}" in text
    assert "these criteria are unknown" not in text


def test_the_page_makes_no_external_request(written: Path) -> None:
    page = (written / "report" / "index.html").read_text()
    for tag, attrs in _outline(page).tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for attr in ("src", "href", "data", "srcset"):
            value = attrs.get(attr) or ""
            assert not re.match(r"\s*(https?:)?//", value), (tag, attr, value[:80])
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:image/png;base64,")
    assert "@import" not in page and "url(" not in page


def test_failures_show_in_the_red_box_with_their_logs(tmp_path: Path) -> None:
    folder = make_results(tmp_path)
    log = folder / "logs" / "kafka-confluent.log"
    log.parent.mkdir()
    log.write_text("broker unreachable\n")
    _set_meta(
        folder,
        failures=["kafka-confluent / steady-1kb: KafkaError: no broker at 127.0.0.1:9"],
        logs={"kafka-confluent": "logs/kafka-confluent.log", "broker": "logs/broker.log"},
        selfcheck={"ok": False, "text": "memory backend sustained 4,000 of 10,000 msg/s"},
        suite="quick",
    )
    page = write_page(folder).read_text()
    box = page[page.index("<div class='problems'") :]
    box = box[: box.index("</div>")]
    assert page.index("verdict-section") < page.index("class='problems'") < page.index("<img")
    assert "kafka-confluent / steady-1kb: KafkaError: no broker at 127.0.0.1:9" in box
    assert f"log: <code>{log}</code>" in box and "broker.log" not in box
    assert "self-check not met" in box and "4,000 of 10,000" in box
    assert "quick mode" in box and "indicative" in box
    top = page[: page.index("verdict-section")]  # the first screen points to the red box
    assert "href='#problems'>3 problem(s): failed run, harness self-check not met" in top
    text = workload_report.terminal_summary(folder)
    assert text.startswith("PROBLEM failed run: kafka-confluent / steady-1kb")
    assert f"log: {log}" in text


def test_a_run_with_no_problems_has_no_red_box(written: Path) -> None:
    assert "class='problems'" not in (written / "report" / "index.html").read_text()


RAW = [
    re.compile(r"\[\d+\.\d+,"),  # a list repr: [2.5703125, ...]
    re.compile(r"\d\.\d{5,}"),  # an unrounded float: 6930.833333
    re.compile(r"\bnan\b", re.IGNORECASE),  # NaN
    re.compile(r"\blost \d+\.0\b"),  # lost 0.0
]


def _reader_text(page: str) -> str:
    """What a reader sees: the page's text without tags, styles or embedded images."""
    outline = _outline(re.sub(r"<style>.*?</style>", "", page, flags=re.S))
    return " ".join(outline.text)


def test_numbers_are_rounded_with_units_and_no_raw_values(tmp_path: Path) -> None:
    folder = make_results(tmp_path)
    metrics = folder / "metrics.csv"  # an unrounded rate and a missing figure
    metrics.write_text(
        metrics.read_text().replace(",publish_rate_mean,,1000.0", ",publish_rate_mean,,1000.833333")
    )
    page = write_page(folder).read_text()
    text = _reader_text(page)
    terminal = workload_report.terminal_summary(folder, with_verdict=True)
    for shown in (text, terminal):
        for pattern in RAW:
            assert not pattern.search(shown), (pattern.pattern, pattern.search(shown))
    assert "1,001" in text  # 1000.833333 msg/s, rounded
    assert "0.27 / 0.61 / 0.43" in text  # the load average, not its list
    assert re.search(r"\d[\d,.]* msg/s", text) and re.search(r"\d[\d.]* ms\b", text)
    assert "verdict for team profile seed:" in terminal


def test_format_number_rounds_and_shows_missing_as_a_dash() -> None:
    import math

    import pandas as pd

    fmt = workload_report.format_number
    assert fmt(6930.833333) == "6,931"
    assert fmt(2.5703125) == "2.57"
    assert fmt(0.0) == "0"
    assert fmt(math.nan) == "-" and fmt(None) == "-" and fmt(pd.NA) == "-"


@pytest.mark.parametrize(
    ("call", "wrong", "suggestion"),
    [
        ("workload", "steady-1k", "'steady-1kb'"),
        ("backend", "sqlite-queu", "'sqlite-queue'"),
        ("settings profile", "kafka-latncy", "'kafka-latency'"),
        ("network", "same-zone", "'same-az'"),
        ("team profile", "examples/profiles/sed.yaml", "seed.yaml"),
        ("team field", "peak_rat", "'peak_rate'"),
    ],
)
def test_unknown_names_get_a_did_you_mean(call: str, wrong: str, suggestion: str) -> None:
    from sqlitequeue.bench import profiles, workload
    from sqlitequeue.bench.decide import load_profile
    from sqlitequeue.bench.errors import BenchError
    from sqlitequeue.bench.network.profiles import load_network
    from sqlitequeue.bench.runner.result import check_registry

    seed = {"peak_rate": 1}
    calls = {
        "workload": lambda: workload.resolve(wrong),
        "backend": lambda: check_registry([wrong]),
        "settings profile": lambda: profiles.load_profile(wrong),
        "network": lambda: load_network(wrong),
        "team profile": lambda: load_profile(REPO / wrong),
        "team field": lambda: load_profile({**seed, wrong: 1}),
    }
    with pytest.raises(BenchError) as caught:
        calls[call]()
    assert "did you mean" in str(caught.value) and suggestion in str(caught.value)


# -- the max-rate search: only a converged search's figure is a capacity --------------------


def _search(passing: float, **more: float) -> dict[str, float]:
    return {
        "max_sustainable_rate": passing,
        "max_rate_top": 100_000.0,
        "max_rate_resolution": 0.1,
        "max_rate_harness_limited": 0.0,
        **more,
    }


def test_how_a_search_ended_is_read_from_its_scalars_and_notes() -> None:
    from sqlitequeue.bench.report.capacity import SearchOutcome, search_outcome

    converged = _search(9000.0, max_rate_failed=9500.0, max_rate_gap=9500 / 9000 - 1)
    assert search_outcome(converged) is SearchOutcome.CONVERGED
    assert search_outcome(_search(8000.0)) is SearchOutcome.BUDGET  # nothing failed yet
    wide = _search(8000.0, max_rate_failed=16000.0, max_rate_gap=1.0)
    assert search_outcome(wide) is SearchOutcome.BUDGET
    assert search_outcome(wide, "a failed step's backlog did not drain") is SearchOutcome.BACKLOG
    ceiling = _search(100_000.0, max_rate_harness_limited=1.0)
    assert search_outcome(ceiling) is SearchOutcome.CEILING
    assert search_outcome({"max_sustainable_rate": 5000.0}) is None  # an older run: unknown


def test_a_search_the_budget_ended_is_labelled_a_lower_bound_not_a_capacity(
    tmp_path: Path,
) -> None:
    folder = make_results(tmp_path)
    with open(folder / "metrics.csv", "a") as f:  # kafka's search ran out of time
        for metric, value in _search(8000.0, max_rate_failed=16000.0, max_rate_gap=1.0).items():
            if metric != "max_sustainable_rate":
                f.write(f"fixture,kafka-confluent,max-rate-1kb,{metric},,{value}\n")
        sqlite = _search(3000.0, max_rate_failed=3200.0, max_rate_gap=3200 / 3000 - 1)
        for metric, value in sqlite.items():
            if metric != "max_sustainable_rate":
                f.write(f"fixture,sqlite-queue,max-rate-1kb,{metric},,{value}\n")
    res = load(folder)
    rates = workload_report.max_rate_table(res).set_index("backend")
    assert rates.loc["kafka-confluent", "search ended"] == "budget ended before convergence"
    assert rates.loc["sqlite-queue", "search ended"] == "converged"
    text = " ".join(workload_report.reading(res))
    assert "kafka-confluent at least 8,000 msg/s (below 16,000; budget ended before" in text
    assert "sqlite-queue 3,000 msg/s" in text
    assert "sustained at least 2.7x the rate of sqlite-queue" in text
    page = html.unescape(write_page(folder).read_text())
    assert "budget ended before convergence" in page


def test_a_failed_kafka_run_names_its_own_log_not_the_brokers(tmp_path: Path) -> None:
    from sqlitequeue.bench.report.problems import problems

    folder = make_results(tmp_path)
    _set_meta(
        folder,
        failures=["kafka / steady-1kb: KafkaError: no broker"],
        logs={
            "kafka": "logs/kafka.log",
            "kafka-confluent": "logs/kafka-confluent.log",
            "broker-single/node-0/kafka.out": "logs/broker-single/node-0/kafka.out",
        },
    )
    (failed,) = problems(load(folder))
    assert failed.logs == (str(folder / "logs" / "kafka.log"),)


def test_the_notebook_answer_names_each_failure_reason_once() -> None:
    from sqlitequeue.bench.report.notebook import _grouped_failures

    text = _grouped_failures(
        ["kafka / steady-1kb: no records", "kafka / bursts-512b: no records", "x / y: other"]
    )
    assert text == "kafka / steady-1kb, kafka / bursts-512b: no records; x / y: other"
