"""Record a trace (timestamps, sizes, keys; payloads optional) from an existing Kafka topic.

Reads the topic from its earliest offset with kafka-python, and writes one record per
message to a JSONL (or .csv) file that a workload's `trace:` replays at 1x or scaled, so a
team can replay its own traffic. Stops after --max-messages, or when no message arrived
for --idle seconds. Payloads are left out unless --payloads (base64 in JSONL).

Example:
  sqlitequeue bench capture --topic clicks --out clicks.jsonl
  KAFKA_BOOTSTRAP_SERVERS=kafka:9092 sqlitequeue bench capture --topic orders \\
      --out orders.jsonl --max-messages 100000 --payloads
Then replay it with a workload file holding:  trace: {file: clicks.jsonl, speed: 1}
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

from sqlitequeue.cli.command import Command, ExitCode

HELP = "record a replayable trace (timestamp, size, key) from a Kafka topic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --topic, --out, --bootstrap-servers, --max-messages, --idle, --payloads."""
    parser.add_argument("--topic", required=True, help="the Kafka topic to read")
    parser.add_argument("--out", required=True, metavar="FILE", help="trace file (.jsonl/.csv)")
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        metavar="HOST:PORT",
        help="default: $KAFKA_BOOTSTRAP_SERVERS",
    )
    parser.add_argument("--max-messages", type=int, default=0, help="stop after N (0: all)")
    parser.add_argument("--idle", type=float, default=5.0, help="stop after S idle seconds")
    parser.add_argument("--payloads", action="store_true", help="also record payloads")


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


def run(args: argparse.Namespace) -> int:
    """Capture the trace; return ExitCode.OK (3 when the topic held no message)."""
    from sqlitequeue.bench.errors import KafkaError

    if not args.bootstrap_servers:
        raise KafkaError("no Kafka: pass --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS")
    count = capture_trace(
        args.bootstrap_servers,
        args.topic,
        args.out,
        max_messages=args.max_messages,
        idle=args.idle,
        payloads=args.payloads,
    )
    print(f"captured {count} message(s) from {args.topic} into {args.out}")
    return ExitCode.OK if count else ExitCode.EMPTY


COMMAND = Command("capture", HELP, add_arguments, run, description=__doc__)
