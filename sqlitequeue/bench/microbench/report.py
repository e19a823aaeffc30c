"""Render a queue benchmark :class:`Report`: the side-by-side tables, and plain JSON data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlitequeue.bench.microbench.patterns import (
    PATTERN_BY_KEY,
    PATTERNS,
    PAYLOAD_BYTES,
    PUT_THREADS,
    Sizes,
)
from sqlitequeue.bench.microbench.results import Check, Measurement, Report, median_ratio

# -- output ------------------------------------------------------------------------------


def _fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    """A ratio with 3 significant digits (0.598, 1.32, 13.3, 174), so a value just under
    its target never prints as the target itself."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _verdict(check: Check | None) -> tuple[str, str]:
    """(target text, PASS/FAIL/n/a) for a row's target cells."""
    if check is None:
        return "", ""
    return check.target, {True: "PASS", False: "FAIL", None: "n/a"}[check.passed]


def _pattern_sizes(pattern: str, sizes: Sizes) -> str:
    text = {
        "put": f"{sizes.puts:,} msgs at NORMAL, {sizes.puts_full:,} at FULL",
        "put_many": f"{sizes.batch_rows:,} msgs",
        "put_threads": f"{sizes.puts_threads:,} msgs at FULL, one Queue shared by the threads",
        "get_ack": f"queue of {sizes.get_acks:,} at NORMAL, {sizes.get_acks_full:,} at FULL",
        "get_many": f"queue of {sizes.claim_rows:,}",
        "latency_1000": f"{sizes.latency_seconds:g} s, producer and consumer processes",
        "latency_5000": f"{sizes.latency_seconds:g} s, producer and consumer processes",
        "drain": f"queue of {sizes.drain_messages:,}",
        "append": f"{sizes.puts:,} records",
        "append_many": f"{sizes.batch_rows:,} records",
        "poll_commit": f"{sizes.stream_rows:,} records",
        "groups": f"{sizes.stream_rows:,} records, each group in its own process",
        "lifecycle": f"{sizes.stream_rows:,} records",
    }
    return text[pattern]


def format_report(report: Report) -> str:
    """The side-by-side tables, one per pattern, then a summary of the targets."""
    env = report.environment
    versions = env.get("versions", {})
    cpus = env.get("host", {}).get("cpu_count")
    lines = [
        f"sqlitequeue bench queue: {PAYLOAD_BYTES}-byte payloads, WAL, median of "
        f"{report.repeats} repeat(s); {cpus} CPUs, SQLite {versions.get('sqlite')}, "
        f"Python {versions.get('python')}; files in {env.get('bench_directory')} "
        f"({env.get('bench_filesystem')}); load average {env.get('load_average_before')} "
        f"before, {env.get('load_average_after')} after; sleep(1 ms) wakes late by "
        f"{_jitter_text(env.get('sleep_jitter_ms'))} (the noise floor of every latency)"
        f"{_handoff_text(env.get('thread_handoff_us'))}{_fsync_text(env.get('fsync_us'))}",
        "ours/this and raw/this are ours (or the raw loop) / this row for throughput and "
        "this row / ours for latency p50 (> 1: faster than this row); raw/this is the best "
        "ratio any code issuing our SQL could reach; the minimal design is the least a "
        "correct SQLite queue needs (no leases, attempts, priorities or id guarantee): ours "
        "keeps all of them within 0.8 of it",
    ]
    checks = {(c.pattern, c.durability, c.what.split(" ")[0]): c for c in report.checks}
    for pattern in PATTERNS:
        rows = [m for m in report.measurements if m.pattern == pattern.key]
        if not rows:
            continue
        lines += ["", f"{pattern.title} ({_pattern_sizes(pattern.key, report.sizes)})"]
        lines += _latency_table(rows, checks) if pattern.latency else _rate_table(rows, checks)
    lines += ["", _summary(report)]
    return "\n".join(lines)


def _handoff_text(handoff: float | None) -> str:
    if handoff is None:
        return ""
    return (
        f"; waking a thread takes {handoff:.1f} µs ({PUT_THREADS} threads passing a lock: "
        "group commit pays one per thread between two fsyncs)"
    )


def _fsync_text(fsync: float | None) -> str:
    if fsync is None:
        return ""
    return (
        f"; an fsync takes {fsync:.0f} µs (one page rewritten, then fdatasync: the floor "
        "under a FULL commit; group commit's gain grows with it)"
    )


def _jitter_text(jitter: dict[str, float] | None) -> str:
    if not jitter:
        return "n/a"
    return f"p50 {jitter['p50']:.2f} / p99 {jitter['p99']:.2f} / max {jitter['max']:.2f} ms"


def _check_for(checks: dict[tuple[str, str, str], Check], m: Measurement) -> Check | None:
    if m.impl == "ours":
        for what in ("p99", "records/s"):
            found = checks.get((m.pattern, m.durability, what))
            if found:
                return found
        return None
    return checks.get((m.pattern, m.durability, f"ours/{m.impl}"))


def _note(m: Measurement) -> str:
    if m.skipped:
        return m.skipped
    return "; ".join(m.notes)


def _peer_ratios(
    rows: list[Measurement], m: Measurement, stat: str, latency: bool
) -> tuple[str, str]:
    """(ours/this, raw/this) for row ``m``, at its durability; raw/this only for peers."""
    if m.skipped or m.impl == "ours":
        return "", ""
    same = {o.impl: o for o in rows if o.durability == m.durability}
    texts = []
    for reference in ("ours", "raw"):
        base = same.get(reference)
        value = None
        if base is not None and not (reference == "raw" and m.impl == "raw"):
            value = median_ratio(base, m, stat, latency)
        texts.append("" if value is None else fmt_ratio(value))
    return texts[0], texts[1]


def _rate_table(rows: list[Measurement], checks: dict[tuple[str, str, str], Check]) -> list[str]:
    unit = PATTERN_BY_KEY[rows[0].pattern].unit
    head = f"  {'sync':<7} {'implementation':<26} {unit:>11}  {'ours/this':>9} {'raw/this':>8}  "
    head += f"{'target':<8} {'':<4}  notes"
    out = [head]
    for m in rows:
        target, mark = _verdict(_check_for(checks, m))
        ours_ratio, raw_ratio = _peer_ratios(rows, m, "rate", False)
        cell = "-" if m.skipped else _fmt_rate(m.median())
        sync = "-" if m.skipped else m.durability.upper()
        out.append(
            f"  {sync:<7} {m.label:<26} {cell:>11}  {ours_ratio:>9} {raw_ratio:>8}  "
            f"{target:<8} {mark:<4}  {_note(m)}".rstrip()
        )
    return out


def _latency_table(rows: list[Measurement], checks: dict[tuple[str, str, str], Check]) -> list[str]:
    head = f"  {'sync':<7} {'implementation':<26} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    head += f" {'max ms':>7} {'sent/s':>7} {'idle cpu':>8}  {'ours/this':>9} {'raw/this':>8}"
    head += f"  {'target':<12}"
    head += f" {'':<4}  notes"
    out = [head]
    for m in rows:
        target, mark = _verdict(_check_for(checks, m))
        if m.impl == "ours" and target:
            target = f"p99 {target} ms"
        ours_ratio, raw_ratio = _peer_ratios(rows, m, "p50", True)
        cells = " ".join(f"{_fmt_ms(m.median(s)):>7}" for s in ("p50", "p95", "p99", "max"))
        if m.skipped:
            cells = " ".join(f"{'-':>7}" for _ in range(4))
        sent = "-" if m.skipped else _fmt_rate(m.median("rate"))
        idle = m.median("idle_cpu")
        idle_cell = "-" if idle is None else f"{idle:.1f}%"
        sync = "-" if m.skipped else m.durability.upper()
        out.append(
            f"  {sync:<7} {m.label:<26} {cells} {sent:>7} {idle_cell:>8}  {ours_ratio:>9} "
            f"{raw_ratio:>8}  "
            f"{target:<12} {mark:<4}  {_note(m)}".rstrip()
        )
    return out


def _summary(report: Report) -> str:
    passed = sum(1 for c in report.checks if c.passed is True)
    failed = [c for c in report.checks if c.passed is False]
    missing = [c for c in report.checks if c.passed is None]
    lines = [
        f"targets: {passed} PASS, {len(failed)} FAIL, {len(missing)} not measured "
        f"(benchmark took {report.seconds:.0f} s)"
    ]
    for c in failed + missing:
        if c.value is None:
            value = "n/a"
        elif not c.what.startswith("ours/"):
            value = f"{c.value:,.2f}"
        else:
            value = fmt_ratio(c.value)
        state = "FAIL" if c.passed is False else "n/a "
        title = PATTERN_BY_KEY[c.pattern].title
        lines.append(
            f"  {state} {title} [{c.durability.upper()}]: {c.what} = {value} (target {c.target})"
        )
    return "\n".join(lines)


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as plain data: sizes, environment, every sample, medians and checks."""
    return {
        "kind": "queue-bench",
        "payload_bytes": PAYLOAD_BYTES,
        "repeats": report.repeats,
        "seconds": report.seconds,
        "sizes": asdict(report.sizes),
        "environment": report.environment,
        "measurements": [
            {
                **asdict(m),
                "title": PATTERN_BY_KEY[m.pattern].title,
                "unit": PATTERN_BY_KEY[m.pattern].unit,
                "median": {
                    stat: m.median(stat)
                    for stat in ("rate", "p50", "p95", "p99", "max", "idle_cpu")
                    if m.median(stat) is not None
                },
            }
            for m in report.measurements
        ],
        "checks": [asdict(c) for c in report.checks],
    }
