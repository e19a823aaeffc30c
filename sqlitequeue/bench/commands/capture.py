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
import os

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


def run(args: argparse.Namespace) -> int:
    """Capture the trace; return ExitCode.OK (3 when the topic held no message)."""
    from sqlitequeue.bench.errors import KafkaError
    from sqlitequeue.bench.kafka.capture import capture_trace

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
