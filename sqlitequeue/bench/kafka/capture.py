"""Capture a replayable trace (timestamps, sizes, keys; payloads optional) from a Kafka topic.

Reads the topic from its earliest offset with kafka-python and writes one record per message
to a JSONL (or .csv) file that a workload's ``trace:`` replays at 1x or scaled.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import time
from pathlib import Path
from typing import Any


def capture_trace(
    bootstrap_servers: str,
    topic: str,
    out: str | os.PathLike[str],
    *,
    max_messages: int = 0,
    idle: float = 5.0,
    payloads: bool = False,
) -> int:
    """Write ``topic``'s messages (from the earliest offset) as a trace; return the count.

    Raises KafkaError when the broker cannot be reached or the topic does not exist.
    """
    from sqlitequeue.bench.errors import KafkaError

    try:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError as ClientError
    except ImportError as exc:
        raise KafkaError("capture needs kafka-python: pip install 'sqlitequeue[kafka]'") from exc
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
    except ClientError as exc:
        raise KafkaError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc
    try:
        return _read(consumer, topic, Path(out), max_messages, idle, payloads)
    finally:
        consumer.close()


def _read(consumer: Any, topic: str, out: Path, limit: int, idle: float, payloads: bool) -> int:
    from kafka import TopicPartition

    from sqlitequeue.bench.errors import KafkaError

    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise KafkaError(f"topic {topic!r} does not exist (or has no partitions)")
    consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
    consumer.seek_to_beginning()
    count, last = 0, time.monotonic()
    with open(out, "w", newline="") as fh:
        write = _writer(fh, out.suffix == ".csv", payloads)
        while time.monotonic() - last < idle and not (limit and count >= limit):
            batch = consumer.poll(timeout_ms=200, max_records=1000)
            for records in batch.values():
                for msg in records:
                    if limit and count >= limit:
                        break
                    write(msg)
                    count += 1
                    last = time.monotonic()
    return count


def _writer(fh: Any, as_csv: bool, payloads: bool) -> Any:
    fields = ["timestamp", "size", "key"] + (["payload"] if payloads else [])
    table = csv.DictWriter(fh, fieldnames=fields) if as_csv else None
    if table is not None:
        table.writeheader()

    def write(msg: Any) -> None:
        row: dict[str, Any] = {
            "timestamp": msg.timestamp / 1000.0,
            "size": len(msg.value or b""),
            "key": None if msg.key is None else msg.key.decode("utf-8", "backslashreplace"),
        }
        if payloads:
            row["payload"] = base64.b64encode(msg.value or b"").decode()
        if table is not None:
            table.writerow(row)
        else:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")

    return write
