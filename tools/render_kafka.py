"""The blocks that measure against Kafka itself: the fairness check (Kafka's own tools on the
broker and through ``sqlitequeue serve``), and the reference runs of the gateway and of Kafka
as teams run it. Every figure comes from a results folder (see ``tools/render_docs.py``)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from tools.render_common import RESULTS, command_line, facts, load_run, ms, took

if TYPE_CHECKING:
    from sqlitequeue.bench.results import Results


# -- docs/backends.md and README.md: the fairness check --------------------------------------


def _fairness_runs(folder: Path) -> tuple[list[dict[str, str]], dict[str, list[dict[str, str]]]]:
    """The producer rows against the broker, and the same grouped by tool (a folder written
    before the gateway part has no ``target`` column: every row is the broker's)."""
    with open(folder / "fairness.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("target", "broker") == "broker"]
    by_tool: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_tool.setdefault(row["tool"], []).append(row)
    return rows, by_tool


def _median(rows: list[dict[str, str]], column: str) -> float:
    return statistics.median(float(row[column]) for row in rows)


def _fairness_figures(folder: Path) -> dict[tuple[str, str, str], float]:
    """``(target, workload, metric) -> value`` of the broker/gateway medians in metrics.csv."""
    found: dict[tuple[str, str, str], float] = {}
    with open(folder / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["backend"] in ("broker", "gateway") and not row["t"]:
                found[(row["backend"], row["workload"], row["metric"])] = float(row["value"])
    return found


def fairness_sentence(folder: Path) -> str:
    """Kafka's own producer tool vs our kafka-confluent producer (and, when the run measured
    it, the gateway against the broker), medians of the runs. A run without the broker
    (``--against gateway``) gives the gateway's rate alone."""
    rows, by_tool = _fairness_runs(folder)
    if "kafka-confluent" not in by_tool:
        return _gateway_only_sentence(folder)
    java = _median(by_tool["ProducerPerformance"], "records_per_s")
    ours = _median(by_tool["kafka-confluent"], "records_per_s")
    first = rows[0]
    text = (
        "**Kafka fairness** (`sqlitequeue bench fairness`: is Kafka slowed by our client?): "
        f"{int(first['records']):,} records x {first['size']} B, {first['partitions']} "
        f"partition(s), median of {len(by_tool['kafka-confluent'])} runs each: Kafka's "
        f"ProducerPerformance {java:,.0f} records/s, the kafka-confluent backend "
        f"{ours:,.0f} records/s; ratio {java / ours:.2f}x (target: within 2x)."
    )
    found = _fairness_figures(folder)
    pp = "producer-performance"
    gateway = found.get(("gateway", pp, "records_per_s"))
    broker = found.get(("broker", pp, "records_per_s"))
    if gateway is not None and broker:
        text += (
            f" Through `sqlitequeue serve`, the same tool ran at {gateway:,.0f} records/s, "
            f"{gateway / broker:.2f}x the broker's {broker:,.0f}."
        )
    return text


def _gateway_only_sentence(folder: Path) -> str:
    settings = load_run(folder).meta.get("fairness", {})
    rate = _fairness_figures(folder).get(("gateway", "producer-performance", "records_per_s"))
    shown = f"{rate:,.0f} records/s" if rate is not None else "no figure (see its metrics.csv)"
    return (
        "**Kafka fairness** (`sqlitequeue bench fairness --against gateway`): this run measured "
        f"only the gateway, {int(settings.get('count', 0)):,} records x "
        f"{settings.get('size', '?')} B: Kafka's ProducerPerformance through `sqlitequeue "
        f"serve` ran at {shown}. Without a broker in the run there is no check of our client "
        "against Kafka's, and no gateway/broker ratio."
    )


def fairness(root: Path = RESULTS) -> str:
    """The reference fairness run: rates, CPU seconds and the ratio, per tool; then the
    gateway against the broker (:func:`fairness_gateway`)."""
    folder = root / "reference-fairness"
    rows, by_tool = _fairness_runs(folder)
    if "kafka-confluent" not in by_tool:  # a run --against gateway only
        return fairness_gateway(root)
    meta = load_run(folder).meta
    profile = meta.get("backends", {}).get("kafka-confluent", {}).get("profile", "?")
    first = rows[0]
    java, ours = by_tool["ProducerPerformance"], by_tool["kafka-confluent"]
    ratio = _median(java, "records_per_s") / _median(ours, "records_per_s")
    lines = [
        f"The committed run (`results/reference-fairness`: {facts(meta)}; "
        f"profile `{profile}`, {int(first['records']):,} records x {first['size']} B, "
        f"{first['partitions']} partition(s), medians of {len(ours)} alternating runs):",
        "",
        "| producer | records/s | CPU-seconds per run |",
        "|---|---:|---:|",
        f"| Kafka's ProducerPerformance (Java) | {_median(java, 'records_per_s'):,.0f} "
        f"| {_median(java, 'cpu_s'):.1f} |",
        f"| the kafka-confluent backend | {_median(ours, 'records_per_s'):,.0f} "
        f"| {_median(ours, 'cpu_s'):.1f} |",
        "",
        f"Ratio (Java / ours): {ratio:.2f}x; target: within 2x.",
    ]
    return "\n".join([*lines, "", fairness_gateway(root)])


def fairness_gateway(root: Path = RESULTS) -> str:
    """The reference fairness run's gateway against its broker: Kafka's tools, the paced
    probe, the server's peak RSS and idle CPU, with issue 14's targets."""
    from sqlitequeue.bench.kafka.fairness import SUMMARY_HEADER, summary_table

    folder = root / "reference-fairness"
    found = _fairness_figures(folder)
    meta = load_run(folder).meta
    settings = meta.get("fairness", {})
    against = settings.get("against")
    if not any(target == "gateway" for target, _, _ in found):
        if against is None:  # written before bench fairness measured the gateway
            return (
                "The committed `results/reference-fairness` run predates the gateway part of "
                "`bench fairness`; the next `make reference` (or `sqlitequeue bench fairness`) "
                "measures it."
            )
        return (
            "The committed `results/reference-fairness` run measured no gateway (`--against "
            f"{','.join(against)}`); `sqlitequeue bench fairness` (by default `--against "
            "broker,gateway`) measures it beside the broker."
        )
    rate = int(settings.get("rate", 1000))
    network = (meta.get("network") or {}).get("name", "loopback")
    table = summary_table(found, rate)
    beside = "against the broker in one run" if "broker" in (against or ["broker"]) else "alone"
    return "\n".join(
        [
            f"The gateway (`sqlitequeue serve` on a fresh file) {beside} "
            f"(`results/reference-fairness`: {facts(meta)}; "
            f"{int(settings.get('count', 0)):,} records x {settings.get('size', '?')} B, "
            f"acks={settings.get('acks', '?')}, network {network}; EndToEndLatency "
            f"{int(settings.get('e2e_count', 0)):,} records one at a time; confluent-kafka "
            f"paced at {rate:,} msg/s for {settings.get('rate_seconds', '?')} s):",
            "",
            "| " + " | ".join(SUMMARY_HEADER) + " |",
            "|---|---:|---:|---:|---|",
            *("| " + " | ".join(row) + " |" for row in table),
        ]
    )


# -- docs/gateway.md and docs/network.md: the gateway and managed-shape reference runs -----


def _spread_ms(res: Results, metric: str) -> dict[tuple[str, str], str]:
    """(backend, workload) -> "median (min-max)" of ``metric`` over the repeats, in ms."""
    cells = {}
    for row in res.spread(metric).itertuples():
        text = ms(row.median)
        if row.n > 1:
            text += f" ({row.min:.3g}-{row.max:.3g})"
        cells[(str(row.backend), str(row.workload))] = text
    return cells


def _run_line(res: Results) -> str:
    """ "(`command`): facts; it took N minutes. Median over K repeats (min-max)." """
    meta = res.meta
    repeats = int(meta.get("repeats") or 1)
    return f"(`{command_line(meta)}`): {facts(meta)}; it took {took(meta)}. " + (
        f"Median over {repeats} repeats (min-max)." if repeats > 1 else "One run each."
    )


def _latency_table(res: Results) -> list[str]:
    """Publish and e2e p50/p99 per workload and backend label (fixed-rate workloads)."""
    metrics = ("publish_latency_ms.p50", "publish_latency_ms.p99")
    metrics += ("e2e_latency_ms.p50", "e2e_latency_ms.p99")
    cells = {m: _spread_ms(res, m) for m in metrics}
    lines = [
        "| workload | backend | publish p50 | publish p99 | e2e p50 | e2e p99 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for workload in dict.fromkeys(str(w) for w in res.metrics.workload):
        for backend in res.meta.get("backend_order", []):
            row = [cells[m].get((backend, workload), "-") for m in metrics]
            if row != ["-"] * 4:
                lines.append(f"| {workload} | {backend} | " + " | ".join(row) + " |")
    return lines


def reference_gateway(root: Path = RESULTS) -> str:
    """The gateway's reference comparison: the Kafka clients on `sqlitequeue serve`, beside
    the same client on a broker and Stream on the file, latency and (if searched) capacity."""
    from sqlitequeue.bench.report import workloads as workload_report

    folder = root / "reference-gateway"
    if not (folder / "run.json").exists():
        return "No gateway reference run is committed yet: `make reference` runs it."
    res = load_run(folder)
    lines = [f"**Unchanged Kafka clients on the file** {_run_line(res)}", "", *_latency_table(res)]
    if "max_sustainable_rate" in res.scalars().columns:  # a max-rate search ran
        capacity = workload_report.max_rate_table(res)
        lines += [
            "",
            "```text",
            f"max sustainable rate at e2e p99 <= {workload_report.p99_target(res):g} ms:",
            workload_report.format_table(capacity).rstrip(),
            "```",
        ]
    return "\n".join(lines)


def reference_network(root: Path = RESULTS) -> str:
    """The managed-shaped reference run: publish and e2e p50/p99 per backend label, where
    each sits, and the seed claim's reading in one sentence."""
    from sqlitequeue.bench.report.seed_claim import seed_claim_sentence

    folder = root / "reference-network"
    if not (folder / "run.json").exists():
        return "No managed-shaped reference run is committed yet: `make reference` runs it."
    res = load_run(folder)
    meta = res.meta
    lines = [f"**Kafka as teams run it** {_run_line(res)}", "", *_latency_table(res)]
    placement = meta.get("placement") or {}
    lines += ["", *(f"- `{b}`: {where}." for b, where in placement.items())]
    sentence = seed_claim_sentence(res)
    return "\n".join([*lines, *(["", f"**Seed claim.** {sentence}"] if sentence else [])])
