"""Regenerate README.md's results section from the committed reference runs.

The section between ``<!-- results:start -->`` and ``<!-- results:end -->`` is rendered
only from files under ``results/``: ``results/reference`` (``bench compare``, with the
seed profile's ``decision-seed.md`` written into it by ``decide``), ``results/reference-faults``
(``bench faults``), ``results/reference-locust`` (``bench locust``),
``results/reference-fairness`` (``bench fairness``) and ``results/reference-queue.txt``
(``bench queue``'s printed tables). ``make reference`` produces all five and then runs
this script; ``--check`` exits 1 when README.md is out of date (tests/test_docs.py runs
the same comparison).

Usage: python tools/readme_results.py [--check]
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _facts(meta: dict) -> str:
    host, versions = meta.get("host", {}), meta.get("versions", {})
    kafka = meta.get("kafka") or {}
    kafka_version = kafka.get("version") if isinstance(kafka, dict) else None
    memory = host.get("memory_bytes")
    parts = [
        f"run `{meta.get('run_id')}` ({meta.get('created', '?')})",
        f"{host.get('cpu_count', '?')} CPUs",
        f"{memory / 2**30:.0f} GiB" if memory else None,
        f"Python {versions.get('python')}",
        f"SQLite {versions.get('sqlite')}",
        f"Kafka {kafka_version}" if kafka_version else None,
        f"confluent-kafka {versions.get('confluent-kafka')}",
        f"kafka-python {versions.get('kafka-python')}",
        f"commit `{str(meta.get('git_commit'))[:12]}`",
    ]
    load = meta.get("load_average_at_start")
    if isinstance(load, list) and load:
        parts.append("load average at start " + "/".join(f"{x:.1f}" for x in load))
    return ", ".join(p for p in parts if p)


def render(results_root: Path = REPO / "results") -> str:
    """Return the Markdown of the results section (without the markers)."""
    from sqlitequeue.bench.report import faults as faults_report
    from sqlitequeue.bench.report import workloads as workload_report
    from sqlitequeue.bench.results import load

    bench_dir = results_root / "reference"
    bench = load(bench_dir)
    lines = [
        "Every figure below is rendered by `tools/readme_results.py` from the committed folders",
        "under `results/` (`make reference` reproduces them; your machine will differ: run",
        "`make compare`).",
        "",
        f"**Workbench** (`sqlitequeue bench compare`): {_facts(bench.meta)}. Charts and the HTML",
        "report: `results/reference/report/`.",
        "",
        "```text",
        workload_report.terminal_summary(bench_dir)
        .replace(str(bench_dir), "results/reference")
        .rstrip(),
        "```",
    ]
    faults_dir = results_root / "reference-faults"
    if (faults_dir / "run.json").exists():
        faults = load(faults_dir)
        table = faults_report.summarize(faults.tables["faults"]).drop(columns=["notes"])
        lines += [
            "",
            f"**Failure lab** (`sqlitequeue bench faults`): {_facts(faults.meta)}.",
            "",
            faults_report.markdown_table(table),
            "",
            *[f"- {line}" for line in faults_report.reading(faults)],
        ]
    decision = bench_dir / "decision-seed.md"
    if decision.exists():
        text = decision.read_text().strip()
        lines += [
            "",
            "**Decision for the seed article's team** (`sqlitequeue decide",
            "examples/profiles/seed.yaml` on these two runs):",
            "",
            text.replace("## ", "#### ", 1),
        ]
    locust = results_root / "reference-locust"
    if (locust / "locust_stats.csv").exists():
        lines += [
            "",
            "**Locust** (`sqlitequeue bench locust`, 60 s per backend): "
            f"{_facts(load(locust).meta)}.",
            "Locust's own stats (`end-to-end` is put-to-receive, timed by the consumer):",
            "",
            *_locust_table(locust / "locust_stats.csv"),
            "",
            "The same run converted to the workbench's format (`results/reference-locust`):",
            "",
            "```text",
            workload_report.format_table(workload_report.summary_table(load(locust))).rstrip(),
            "```",
        ]
    fairness = results_root / "reference-fairness"
    if (fairness / "fairness.csv").exists():
        lines += ["", *_fairness_lines(fairness)]
    queue = results_root / "reference-queue.txt"
    if queue.exists():
        lines += [
            "",
            "**Micro-benchmarks** (`sqlitequeue bench queue`, printed output):",
            "",
            "```text",
            queue.read_text().rstrip(),
            "```",
        ]
    return "\n".join(lines)


def _locust_table(stats_csv: Path) -> list[str]:
    """Markdown rows of Locust's own per-request stats (Aggregated rows left out)."""
    rows = [
        "| backend | request | count | failures | req/s | median ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    with open(stats_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                continue
            cells = [
                row["backend"],
                row["Name"],
                f"{int(row['Request Count']):,}",
                f"{int(row['Failure Count']):,}",
                f"{float(row['Requests/s']):,.1f}",
                f"{float(row['Median Response Time']):.2f}",
                f"{float(row['99%']):g}",
                f"{float(row['Max Response Time']):.0f}",
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def _fairness_lines(folder: Path) -> list[str]:
    """Kafka's own producer tool vs our kafka-confluent producer, medians of the runs."""
    with open(folder / "fairness.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rates: dict[str, list[float]] = {}
    for row in rows:
        rates.setdefault(row["tool"], []).append(float(row["records_per_s"]))
    java = statistics.median(rates["ProducerPerformance"])
    ours = statistics.median(rates["kafka-confluent"])
    first = rows[0]
    return [
        "**Kafka fairness** (`sqlitequeue bench fairness`: is Kafka slowed by our client?): "
        f"{int(first['records']):,} records x {first['size']} B, {first['partitions']} "
        f"partition(s), median of {len(rates['kafka-confluent'])} runs each: Kafka's "
        f"ProducerPerformance {java:,.0f} records/s, the kafka-confluent backend "
        f"{ours:,.0f} records/s; ratio {java / ours:.2f}x (target: within 2x).",
    ]


def splice(readme: str, section: str) -> str:
    """Return ``readme`` with the text between the markers replaced by ``section``."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section}\n{END}{tail}"


def main(argv: list[str]) -> int:
    """Rewrite README.md (or with --check, report whether it is up to date)."""
    readme_path = REPO / "README.md"
    readme = readme_path.read_text()
    updated = splice(readme, render())
    if "--check" in argv:
        if updated != readme:
            print("README.md's results section is out of date: run python tools/readme_results.py")
            return 1
        return 0
    readme_path.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
