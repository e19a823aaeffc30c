"""The seed article's latency claim, checked against a results folder.

The article: "40-50 ms (network hop to Kafka, replication, etc.) to under 1 ms". This
module reads the seed workload's end-to-end latencies and says, in plain sentences, whether
under 1 ms appears for SQLite and 40-50 ms for Kafka, under which network and settings, and
what appears instead. It reads only the results folder.
"""

from __future__ import annotations

from typing import Any

SEED_WORKLOAD = "seed-clickstream"
SQLITE_CLAIM_MS = 1.0
KAFKA_CLAIM_MS = (40.0, 50.0)


def _fmt_ms(value: float) -> str:
    return f"{value:,.2f} ms" if value < 10 else f"{value:,.1f} ms"


def _where(placement: Any) -> str:
    """ " (where it sits)", or "" when run.json does not say."""
    return f" ({placement})" if placement else ""


def _latencies(res: Any) -> dict[str, tuple[float, float]]:
    """backend label -> (e2e p50, e2e p99) on the seed workload."""
    out = {}
    for backend in res.meta.get("backend_order", []):
        p50 = res.scalar(backend, "e2e_latency_ms.p50", SEED_WORKLOAD)
        p99 = res.scalar(backend, "e2e_latency_ms.p99", SEED_WORKLOAD)
        if p50 is not None and p99 is not None:
            out[backend] = (p50, p99)
    return out


def seed_claim_lines(res: Any) -> list[str]:
    """Plain sentences on the seed's claim (empty when the seed workload did not run)."""
    latencies = _latencies(res)
    if not latencies:
        return []
    placement = res.meta.get("placement") or {}
    sqlite = {b: v for b, v in latencies.items() if b.startswith("sqlite")}
    kafka = {b: v for b, v in latencies.items() if b.startswith("kafka")}
    lines = []
    if sqlite:
        best = min(sqlite, key=lambda b: sqlite[b][0])
        p50, p99 = sqlite[best]
        holds = "holds" if p50 < SQLITE_CLAIM_MS else "does not hold"
        lines.append(
            f"SQLite under {SQLITE_CLAIM_MS:g} ms {holds} at the median: {best} e2e p50 "
            f"{_fmt_ms(p50)}, p99 {_fmt_ms(p99)}{_where(placement.get(best))}."
        )
    low, high = KAFKA_CLAIM_MS
    for backend, (p50, p99) in kafka.items():
        if low <= p50 <= high:
            verdict = f"the seed's {low:g}-{high:g} ms appears at the median"
        elif low <= p99 <= high:
            verdict = f"the seed's {low:g}-{high:g} ms appears only in the tail (p99)"
        elif p50 < low:
            verdict = f"below the seed's {low:g}-{high:g} ms"
        else:
            verdict = f"above the seed's {low:g}-{high:g} ms"
        where = _where(placement.get(backend))
        lines.append(f"{backend}: e2e p50 {_fmt_ms(p50)}, p99 {_fmt_ms(p99)}: {verdict}{where}.")
    return lines


def _kafka_verdict(p50: float, p99: float) -> str:
    low, high = KAFKA_CLAIM_MS
    if low <= p50 <= high:
        return f"the seed's {low:g}-{high:g} ms appears at the median"
    if low <= p99 <= high:
        return f"the seed's {low:g}-{high:g} ms appears only in the tail (p99)"
    side = "below" if p50 < low else "above"
    return f"{side} the seed's {low:g}-{high:g} ms"


def seed_claim_sentence(res: Any) -> str:
    """The claim's reading in one sentence: SQLite's best median, and Kafka as teams run it
    (the first ``kafka-managed`` label, else the slowest Kafka median). "" without the seed
    workload on both systems."""
    latencies = _latencies(res)
    sqlite = {b: v for b, v in latencies.items() if b.startswith("sqlite")}
    kafka = {b: v for b, v in latencies.items() if b.startswith("kafka")}
    if not sqlite or not kafka:
        return ""
    best = min(sqlite, key=lambda b: sqlite[b][0])
    managed = [b for b in kafka if b.startswith("kafka-managed")]
    theirs = managed[0] if managed else max(kafka, key=lambda b: kafka[b][0])
    (p50, p99), (k50, k99) = sqlite[best], kafka[theirs]
    holds = "holds" if p50 < SQLITE_CLAIM_MS else "does not hold"
    return (
        f"On {SEED_WORKLOAD}, the seed's under {SQLITE_CLAIM_MS:g} ms for SQLite {holds} "
        f"({best}: e2e p50 {_fmt_ms(p50)}, p99 {_fmt_ms(p99)}), and {theirs} measures e2e p50 "
        f"{_fmt_ms(k50)}, p99 {_fmt_ms(k99)}: {_kafka_verdict(k50, k99)}."
    )
