"""Render the marked blocks of README.md and docs/*.md from the committed reference runs.

A block is the text between ``<!-- render:NAME -->`` and ``<!-- /render:NAME -->``; NAME
picks one function of :data:`RENDERERS`, and every figure it writes comes from files under
``results/``: ``results/reference`` (``bench compare``, with the seed profile's
``decision-seed.md`` written into it by ``decide``), ``results/reference-faults``
(``bench faults``), ``results/reference-locust`` (``bench locust``),
``results/reference-fairness`` (``bench fairness``), ``results/reference-queue.txt``
(``bench queue``'s printed tables), and ``results/reference-network`` (``bench compare`` of
Kafka over emulated networks and the managed shape). ``make reference`` produces them and runs
this script; ``--check`` exits 1 naming every block that is out of date, and an unknown
or unclosed marker is an error (tests/test_docs.py runs the same check). The blocks
measured against Kafka itself (fairness, the gateway and managed-shape runs) are rendered
by ``tools/render_kafka.py``; what every block shares is in ``tools/render_common.py``.

Usage: python tools/render_docs.py [--check]
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if __package__ in (None, ""):  # run as `python tools/render_docs.py`: the repo's tools package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.render_common import REPO, RESULTS, command_line, facts, load_run, ms, took
from tools.render_kafka import (
    fairness,
    fairness_gateway,
    reference_gateway,
    reference_network,
)
from tools.render_kafka import fairness_sentence as _fairness_sentence

if TYPE_CHECKING:
    from sqlitequeue.bench.results import Results

BLOCK = re.compile(r"<!-- render:([\w-]+) -->\n(.*?)<!-- /render:\1 -->\n?", re.DOTALL)
OPENING = re.compile(r"<!-- render:([\w-]+) -->")


def documents(repo: Path = REPO) -> list[Path]:
    """README.md and docs/*.md: the files whose marked blocks are rendered."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


# -- README.md: the whole results section ----------------------------------------------------


def results_section(root: Path = RESULTS) -> str:
    """README.md's results section: every reference run, summarised."""
    from sqlitequeue.bench.report import faults as faults_report
    from sqlitequeue.bench.report import workloads as workload_report

    bench_dir = root / "reference"
    bench = load_run(bench_dir)
    lines = [
        "Every figure below is rendered by `tools/render_docs.py` from the committed folders",
        "under `results/` (`make reference` reproduces them; your machine will differ: run",
        "`make compare`).",
        "",
        f"**Workbench** (`sqlitequeue bench compare`): {facts(bench.meta)}. Charts and the HTML",
        "report: `results/reference/report/`.",
        "",
        "```text",
        workload_report.terminal_summary(bench_dir)
        .replace(str(bench_dir), "results/reference")
        .rstrip(),
        "```",
    ]
    faults_dir = root / "reference-faults"
    if (faults_dir / "run.json").exists():
        faults = load_run(faults_dir)
        table = faults_report.summarize(faults.tables["faults"]).drop(columns=["notes"])
        lines += [
            "",
            f"**Failure lab** (`sqlitequeue bench faults`): {facts(faults.meta)}.",
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
    locust = root / "reference-locust"
    if (locust / "locust_stats.csv").exists():
        lines += [
            "",
            "**Locust** (`sqlitequeue bench locust`, 60 s per backend): "
            f"{facts(load_run(locust).meta)}.",
            "Locust's own stats (`end-to-end` is put-to-receive, timed by the consumer):",
            "",
            *_locust_table(locust / "locust_stats.csv"),
            "",
            "The same run converted to the workbench's format (`results/reference-locust`):",
            "",
            "```text",
            workload_report.format_table(workload_report.summary_table(load_run(locust))).rstrip(),
            "```",
        ]
    if (root / "reference-fairness" / "fairness.csv").exists():
        lines += ["", _fairness_sentence(root / "reference-fairness")]
    queue = root / "reference-queue.txt"
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
    for row in _locust_rows(stats_csv):
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


def _locust_rows(stats_csv: Path) -> list[dict[str, str]]:
    with open(stats_csv, newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["Name"] != "Aggregated"]


# -- README.md's first screen: the reference answer and the path -----------------------------


#: the seed article's Kafka bill, "$1,500+/month" (its claim, not a result)
SEED_KAFKA_BILL_USD = 1500


def _best_seed_latency(res: Results, family: str) -> tuple[str, float, float] | None:
    """(backend, e2e p50, e2e p99): the family's lowest p50 on the seed workload, or None."""
    from sqlitequeue.bench.report.seed_claim import SEED_WORKLOAD

    found = []
    for backend in res.meta.get("backend_order", []):
        p50 = res.scalar(backend, "e2e_latency_ms.p50", SEED_WORKLOAD)
        p99 = res.scalar(backend, "e2e_latency_ms.p99", SEED_WORKLOAD)
        if backend.startswith(family) and p50 is not None and p99 is not None:
            found.append((backend, p50, p99))
    return min(found, key=lambda row: row[1], default=None)


def reference_answer(root: Path = RESULTS) -> str:
    """Three lines: latency, capacity and cost of the reference runs, and the seed's claims."""
    from sqlitequeue.bench import cost, decide
    from sqlitequeue.bench.decide import evidence as ev
    from sqlitequeue.bench.report.seed_claim import KAFKA_CLAIM_MS, SQLITE_CLAIM_MS

    bench, faults = root / "reference", root / "reference-faults"
    res = load_run(bench)
    sqlite, kafka = _best_seed_latency(res, "sqlite"), _best_seed_latency(res, "kafka")
    assert sqlite and kafka, "the reference run lacks the seed workload"
    low, high = KAFKA_CLAIM_MS
    kafka_claim = (
        "appears" if low <= kafka[1] <= high else f"does not appear on one host ({ms(kafka[1])})"
    )
    managed = _best_seed_latency(res, "kafka-managed")
    if managed:
        kafka_claim += (
            f", nor on a managed-shaped cluster, 3 brokers across emulated zones "
            f"(kafka-managed over cross-az: p50 {ms(managed[1])} / p99 {ms(managed[2])})"
            if not low <= managed[1] <= high
            else f"; it does on a managed-shaped cluster over cross-az ({ms(managed[1])})"
        )
    latency = (
        f"- **Latency** on the article's own workload: SQLite e2e p50 {ms(sqlite[1])} / p99 "
        f"{ms(sqlite[2])} ({sqlite[0]}), Kafka p50 {ms(kafka[1])} / p99 {ms(kafka[2])} "
        f"({kafka[0]}). The article's *under {SQLITE_CLAIM_MS:g} ms* "
        f"{'holds' if sqlite[1] < SQLITE_CLAIM_MS else 'fails'} at the median; its "
        f"*{low:g}-{high:g} ms* for Kafka {kafka_claim}."
    )
    found = decide.gather_evidence([bench, faults])
    profile = decide.load_profile(REPO / "examples" / "profiles" / "seed.yaml")
    decision = decide.evaluate(profile, found)
    caps = {name: ev.capacity(found, name) for name in (ev.SQLITE, ev.KAFKA)}
    parts = []
    for name, label in ((ev.SQLITE, "SQLite"), (ev.KAFKA, "Kafka")):
        c = caps[name]
        if c is not None:
            bound = "at least " if c.lower_bound else ""
            why = "; every step of the search passed" if c.lower_bound else ""
            if name == ev.SQLITE:
                peak = profile.peak_rate
                why = f"; {c.rate / peak:,.0f}x the article's {peak:,.0f} msg/s peak"
            parts.append(f"{label} {bound}{c.rate:,.0f} msg/s ({c.backend}{why})")
    capacity = (
        f"- **Capacity** at e2e p99 <= {res.meta.get('p99_target_ms', 50):g} ms: "
        + ", ".join(parts)
        + "."
    )
    bills = {p.architecture: p for p in decision.projections}
    mine = next(p for p in decision.projections if p.architecture.startswith("sqlite-"))
    kafka_bill = min(
        (p for p in decision.projections if p.architecture in cost.KAFKA_ARCHITECTURES),
        key=lambda p: p.total,
    )
    on_a_vm = cost.project(
        profile.traffic(),
        cost.load_parameters().override({"vm_exists": True}, origin="README"),
        architectures=list(cost.SQLITE_ARCHITECTURES),
    )
    cheapest_on_vm = min(on_a_vm, key=lambda p: p.total)
    msk = bills["msk"].total
    bill = (
        f"- **Cost** for the article's team ({profile.peak_rate:,.0f} msg/s peak): {mine.label} "
        f"${mine.total:,.2f}/month vs the cheapest Kafka, {kafka_bill.label}, "
        f"${kafka_bill.total:,.2f}, and MSK ${msk:,.2f}. The article's *under $5* needs a VM you "
        f"already have ({cheapest_on_vm.label.replace('1 VM + SQLite + ', '')}: "
        f"${cheapest_on_vm.total:,.2f}); its *${SEED_KAFKA_BILL_USD:,}+* is "
        f"{SEED_KAFKA_BILL_USD / msk:.1f}x MSK sized for this traffic. Verdict for that team "
        f"(`decide`): **{decision.verdict}**."
    )
    return "\n".join([latency, capacity, bill])


def first_run(root: Path = RESULTS) -> str:
    """The path from a fresh clone to a verdict, with the reference runs' own timings."""
    bench = load_run(root / "reference")
    faults = load_run(root / "reference-faults")
    workloads = len(bench.meta.get("workloads", {}))
    backends = len(bench.meta.get("backend_order", []))
    cpus = bench.meta.get("host", {}).get("cpu_count", "?")
    return "\n".join(
        [
            f"1. `make compare`: {took(bench.meta)} of measuring in the reference run "
            f"({workloads} workloads x {backends} backends, {cpus} CPUs), plus, the first time,",
            "   installing the virtualenv, Kafka's jars and Litestream (downloads, not timed).",
            "2. Open `results/<run-id>/report/index.html`: the answer, then the charts.",
            "3. `.venv/bin/sqlitequeue decide examples/profiles/seed.yaml` (copy the profile for",
            "   your team): seconds, as it reuses that run and the committed failure-lab run;",
            "   `--measure` measures both afresh (the reference `bench faults` took "
            f"{took(faults.meta)}).",
        ]
    )


# -- docs/backends.md: the harness self-check and the fairness check ---------------------------


def selfcheck(root: Path = RESULTS) -> str:
    """The reference run's harness self-check, as it printed it."""
    meta = load_run(root / "reference").meta
    text = meta["selfcheck"]["text"]
    return f"In the committed reference run (`results/reference/run.json`): {text}."


# -- docs/workbench.md: the reference comparison --------------------------------------------


def workbench_reference(root: Path = RESULTS) -> str:
    """How the reference comparison ran, its maximum sustainable rates and its reading."""
    from sqlitequeue.bench.report import workloads as workload_report

    res = load_run(root / "reference")
    meta = res.meta
    return "\n".join(
        [
            f"Produced by `{command_line(meta)}`: {facts(meta)}; it took {took(meta)}.",
            f"The {meta['selfcheck']['text']}.",
            "",
            "```text",
            f"max sustainable rate at e2e p99 <= {workload_report.p99_target(res):g} ms:",
            workload_report.format_table(workload_report.max_rate_table(res)).rstrip(),
            "```",
            "",
            *(f"- {line}" for line in workload_report.reading(res)),
        ]
    )


# -- docs/locust.md: Locust against the workbench ---------------------------------------------


def locust_vs_workbench(root: Path = RESULTS) -> str:
    """Locust's reference run beside the workbench's, per backend of the same workload."""
    locust = load_run(root / "reference-locust").scalars()
    bench = load_run(root / "reference").scalars()
    stats = {
        (row["backend"], row["Name"]): row
        for row in _locust_rows(root / "reference-locust" / "locust_stats.csv")
    }
    lines = [
        "The committed runs (`results/reference-locust` and `results/reference`, the same "
        "machine, the same workload):",
        "",
        "| backend | workload | e2e p50 ms, Locust | e2e p50 ms, workbench "
        "| Locust's publish req/s (warm-up included) | converted publish msg/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (backend, workload), row in locust.iterrows():
        if (backend, workload) not in bench.index:
            continue
        requests = float(stats[(backend, "publish")]["Requests/s"])
        lines.append(
            f"| {backend} | {workload} | {row['e2e_latency_ms.p50']:.2f} "
            f"| {bench.loc[(backend, workload), 'e2e_latency_ms.p50']:.2f} "
            f"| {requests:,.0f} | {row['publish_rate_mean']:,.0f} |"
        )
    return "\n".join(lines)


# -- docs/benchmarks.md: what `bench queue`'s reference run says --------------------------------


class QueueTable(NamedTuple):
    """One pattern's table of ``bench queue``'s printed output."""

    title: str  #: the pattern, without its sizes ("put one at a time")
    unit: str  #: "msgs/s", "records/s", or "p50 ms" for a latency pattern
    rows: list[dict[str, str]]  #: one per implementation: sync, label, cells by header


_RATIO_COLUMNS = ("ours/this", "raw/this")
_LATENCY_COLUMNS = ("p50 ms", "p95 ms", "p99 ms", "max ms", "sent/s", "idle cpu")


def _cell(header: str, row: str, column: str) -> str:
    """The right-aligned cell of ``row`` under ``column`` of ``header`` ("" when blank)."""
    end = header.index(column) + len(column)
    if len(row) < end or row[end - 1] == " ":
        return ""
    return row[:end].split()[-1]


def _queue_row(header: str, line: str) -> dict[str, str]:
    columns = [
        c
        for c in (*_LATENCY_COLUMNS, "msgs/s", "records/s", *_RATIO_COLUMNS)
        if re.search(rf"(^| ){re.escape(c)}( |$)", header)
    ]
    row = {c: _cell(header, line, c) for c in columns}
    first = columns[0]
    label_end = header.index(first) + len(first) - len(row[first])
    row["sync"] = line[header.index("sync") : header.index("implementation")].strip()
    row["label"] = line[header.index("implementation") : label_end].strip()
    mark = re.search(r"\b(PASS|FAIL)\b", line)
    row["mark"] = mark.group(1) if mark else ""
    target_at = header.index("target")
    row["target"] = line[target_at : mark.start()].strip() if mark else ""
    notes_at = header.index("notes")
    row["notes"] = line[notes_at:].strip() if len(line) > notes_at else ""
    return row


def queue_tables(text: str) -> list[QueueTable]:
    """Parse ``bench queue``'s printed output into its per-pattern tables."""
    tables: list[QueueTable] = []
    lines = text.splitlines()
    header = ""
    for previous, line in zip(["", *lines], lines, strict=False):
        if line.startswith("  sync "):
            header = line
            unit = next(c for c in ("msgs/s", "records/s", "p50 ms") if c in header)
            tables.append(QueueTable(previous.split(" (")[0], unit, []))
        elif header and line.startswith("  "):
            tables[-1].rows.append(_queue_row(header, line))
        else:
            header = ""
    return tables


def _ratio(row: dict[str, str], column: str) -> str:
    return f"{row[column]}x" if row[column] else "-"


def _verdict(row: dict[str, str]) -> str:
    return f"target {row['target']}: {row['mark']}" if row["mark"] else ""


def _peer_lines(tables: list[QueueTable], peer: str) -> list[str]:
    """One sub-bullet per pattern: ours / ``peer`` and the raw loop / ``peer``."""
    lines = []
    for t in tables:
        for r in t.rows:
            if r["label"] != peer or not r["ours/this"]:
                continue
            notes = [n for n in r["notes"].split("; ") if n and "synchronous=" not in n]
            extra = "; ".join(x for x in (_verdict(r), *notes) if x)
            lines.append(
                f"  * {t.title}: {_ratio(r, 'ours/this')} (raw loop {_ratio(r, 'raw/this')})"
                + (f"; {extra}" if extra else "")
            )
    return lines


def _group_commit_lines(
    tables: list[QueueTable], handoff: str | None, fsync: str | None
) -> list[str]:
    """The group-commit table in one bullet: ours from 8 threads and from one, the ratio,
    and (from the run's header) what waking one thread (``handoff``) and one fsync
    (``fsync``) cost on the machine."""
    lines = []
    for t in tables:
        if not any(r["label"].endswith("thread") for r in t.rows):  # "..., 1 thread"
            continue
        many, one = t.rows[0], t.rows[-1]
        lines.append(
            f"* **group commit** ({t.title}, FULL): {many['msgs/s']} msgs/s ({many['label']}) vs "
            f"{one['msgs/s']} ({one['label']}): {_ratio(one, 'ours/this')}"
            + (f"; {_verdict(one)}" if one["mark"] else "")
            + (
                f". Waking a thread took {handoff} µs on this machine, and a batch pays "
                "one such wake-up per thread between two fsyncs."
                if handoff
                else ""
            )
            + (
                f" An fsync took at least {fsync} µs: a batch pays one for 8 puts, a lone put "
                "one each, so the slower the fsync compared with the puts' Python and "
                "wake-ups, the closer the ratio gets to 8."
                if fsync
                else ""
            )
        )
    return lines


def queue_bench_reading(root: Path = RESULTS) -> str:
    """What the reference ``bench queue`` run says: ratios, latencies, stream rates, targets."""
    text = (root / "reference-queue.txt").read_text(encoding="utf-8")
    tables = queue_tables(text)
    repeats = re.search(r"median of (\d+) repeat", text)
    load = re.search(r"load average (\S+) before, (\S+) after", text)
    took = re.search(r"\(benchmark took (\d+) s\)", text)
    handoff = re.search(r"waking a thread takes (\S+) µs", text)
    fsync = re.search(r"an fsync takes (\S+) µs", text)
    raw = [
        (float(r["ours/this"]), r["ours/this"], f"{t.title}, {r['sync']}", r["mark"])
        for t in tables
        for r in t.rows
        if r["label"] == "raw sqlite3 loop" and r["ours/this"]
    ]
    low, high = min(raw), max(raw)
    failed = sum(1 for r in raw if r[3] == "FAIL")
    lines = [
        f"From `results/reference-queue.txt` ({repeats.group(1) if repeats else '?'} repeats, "
        f"{took.group(1) if took else '?'} s, load average {load.group(1) if load else '?'} "
        f"before and {load.group(2) if load else '?'} after). A ratio is ours / this row for "
        "throughput and this row / ours for p50 latency, so above 1 means ours is faster:",
        "",
        f"* **ours / raw loop** (target >= 0.6): from {low[1]} ({low[2]}) to {high[1]} "
        f"({high[2]}); {failed} of {len(raw)} below the target.",
    ]
    lines.append("* **ours / minimal design** (the least a correct SQLite queue needs):")
    lines += _peer_lines(tables, "minimal design")
    lines += _group_commit_lines(
        tables, handoff.group(1) if handoff else None, fsync.group(1) if fsync else None
    )
    peers = dict.fromkeys(
        r["label"]
        for t in tables
        for r in t.rows
        if not r["label"].startswith(("sqlitequeue", "raw sqlite3 loop", "minimal design"))
        and r["ours/this"]
    )
    for peer in peers:
        sync = next(r["sync"] for t in tables for r in t.rows if r["label"] == peer)
        lines.append(f"* **ours / {peer}** (at {sync}):")
        lines += _peer_lines(tables, peer)
    for t in tables:
        if t.unit != "p50 ms":
            continue
        ours = next(r for r in t.rows if r["label"] == "sqlitequeue")
        raw_row = next(r for r in t.rows if r["label"] == "raw sqlite3 loop")
        lines.append(
            f"* **{t.title}**: ours p50 {ours['p50 ms']} ms, p99 {ours['p99 ms']} ms"
            f" ({_verdict(ours)}); an idle blocked consumer at {ours['idle cpu']} of a core; "
            f"the raw loop's p99 {raw_row['p99 ms']} ms."
        )
    stream = [
        f"{t.title.removeprefix('stream: ')} {r['records/s']}"
        + (f" ({_verdict(r)})" if r["mark"] else "")
        for t in tables
        if t.unit == "records/s"
        for r in t.rows
        if r["label"] == "sqlitequeue"
    ]
    lines.append("* **stream**, ours in records/s: " + "; ".join(stream) + ".")
    summary = text[text.index("targets:") :].rstrip()
    return "\n".join([*lines, "", "```text", summary, "```"])


#: Block name -> the function that renders it from a results root.
RENDERERS: dict[str, Callable[[Path], str]] = {
    "answer": reference_answer,
    "first-run": first_run,
    "results": results_section,
    "selfcheck": selfcheck,
    "fairness": fairness,
    "fairness-gateway": fairness_gateway,
    "workbench-reference": workbench_reference,
    "locust-vs-workbench": locust_vs_workbench,
    "queue-bench-reading": queue_bench_reading,
    "reference-network": reference_network,
    "reference-gateway": reference_gateway,
}


def render_text(text: str, root: Path = RESULTS, name: str = "text") -> str:
    """Return ``text`` with every marked block re-rendered; raise ValueError on a bad marker."""
    opened = OPENING.findall(text)
    closed = [m.group(1) for m in BLOCK.finditer(text)]
    if opened != closed:
        raise ValueError(f"{name}: unclosed marker(s) {sorted(set(opened) - set(closed))}")
    unknown = sorted(set(opened) - set(RENDERERS))
    if unknown:
        raise ValueError(f"{name}: unknown block(s) {unknown}; known: {sorted(RENDERERS)}")

    def block(match: re.Match[str]) -> str:
        key = match.group(1)
        return f"<!-- render:{key} -->\n{RENDERERS[key](root).rstrip()}\n<!-- /render:{key} -->\n"

    return BLOCK.sub(block, text)


def stale_blocks(repo: Path = REPO) -> list[str]:
    """``FILE: block NAME`` for every marked block whose text differs from its rendering."""
    stale = []
    for path in documents(repo):
        text = path.read_text()
        rendered = render_text(text, repo / "results", path.name)
        old = {m.group(1): m.group(2) for m in BLOCK.finditer(text)}
        new = {m.group(1): m.group(2) for m in BLOCK.finditer(rendered)}
        stale += [f"{path.relative_to(repo)}: block {k!r}" for k in old if old[k] != new[k]]
    return stale


def main(argv: list[str]) -> int:
    """Rewrite the marked blocks (or with --check, report which ones are out of date)."""
    if "--check" in argv:
        stale = stale_blocks()
        for entry in stale:
            print(f"{entry} is out of date: run python tools/render_docs.py")
        return 1 if stale else 0
    for path in documents():
        text = path.read_text()
        rendered = render_text(text, RESULTS, path.name)
        if rendered != text:
            path.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
