"""Stream commands of the ``sqlitequeue`` CLI: topics, groups, tail, reset-offsets.

Thin wrappers over :mod:`sqlitequeue.stream`; none of them creates a file or a topic.
``--json`` prints machine-readable output (``tail --json``: one object per line). Bytes
(payloads, keys, header values) are printed as text when they are UTF-8, and as
``{"base64": "..."}`` otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlitequeue.cli.arguments import non_negative_int, positive_int, timestamp
from sqlitequeue.cli.command import Command, ExitCode
from sqlitequeue.cli.output import jsonable_bytes, print_json, print_table
from sqlitequeue.stream import Consumer, Record, Stream, groups, topics

#: Records read per partition per round by ``tail`` without a group.
TAIL_BATCH = 500


# -- topics ------------------------------------------------------------------------------


def _topics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the sqlitequeue database file")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_topics(args: argparse.Namespace) -> int:
    """Print every topic with one row per partition."""
    found = topics(args.file)
    if args.json:
        print_json([dataclasses.asdict(t) for t in found])
        return ExitCode.OK
    rows = [
        [
            t.name,
            str(p.partition),
            str(p.earliest),
            str(p.end),
            str(p.records),
            str(p.bytes),
            _format_time(p.last_timestamp),
            _format_retention(t.retention),
        ]
        for t in found
        for p in t.partitions
    ]
    header = ["TOPIC", "PARTITION", "EARLIEST", "END", "RECORDS", "BYTES", "LAST", "RETENTION"]
    print_table(header, rows)
    return ExitCode.OK


# -- groups ------------------------------------------------------------------------------


def _groups_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the sqlitequeue database file")
    parser.add_argument("--topic", help="only this topic")
    parser.add_argument("--group", help="only this group")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_groups(args: argparse.Namespace) -> int:
    """Print consumer groups with one row per partition."""
    found = groups(args.file, topic=args.topic, group=args.group)
    if args.json:
        print_json([{**dataclasses.asdict(g), "lag": g.lag} for g in found])
        return ExitCode.OK
    rows = [
        [
            g.group,
            g.topic,
            str(p.partition),
            str(p.committed),
            str(p.end),
            str(p.lag),
            p.owner or "-",
        ]
        for g in found
        for p in g.partitions
    ]
    print_table(["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OWNER"], rows)
    return ExitCode.OK


# -- tail --------------------------------------------------------------------------------


def _tail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the sqlitequeue database file")
    parser.add_argument("topic", help="the topic to read")
    parser.add_argument(
        "--from",
        dest="start",
        default="latest",
        type=_start_value,
        help="where to start in each partition: earliest, latest (default), an offset N, "
        "or -N for the last N records; with --group only earliest/latest (used when the "
        "group has no committed offset yet)",
    )
    parser.add_argument(
        "--group",
        help="read as a member of this consumer group and commit what was printed "
        "(without it, nothing is committed and no group is created)",
    )
    parser.add_argument("--partition", type=int, action="append", help="only this partition")
    parser.add_argument("-c", "--count", type=positive_int, help="exit after N records")
    parser.add_argument(
        "-e",
        "--exit-at-end",
        action="store_true",
        help="exit once every partition is read to its end instead of following",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per record")


def run_tail(args: argparse.Namespace) -> int:
    """Print records until --count, the end (-e), or forever; 3 if none was printed."""
    with Stream(args.file, args.topic, create=False) as stream:
        for partition in args.partition or []:
            stream._check_partition(partition)
        if args.group:
            if args.start not in ("earliest", "latest") or args.partition:
                print(
                    "sqlitequeue tail: with --group, --from must be earliest or latest and "
                    "--partition is not allowed (use reset-offsets to move a group)",
                    file=sys.stderr,
                )
                return ExitCode.USAGE
            consumer = stream.consumer(args.group, start=args.start)
            try:
                printed = _tail_group(consumer, args)
            finally:
                consumer.close()
        else:
            printed = _tail_plain(stream, args)
    return ExitCode.OK if printed else ExitCode.EMPTY


def _tail_plain(stream: Stream, args: argparse.Namespace) -> int:
    positions = _start_positions(stream, args.start, args.partition)
    printed = 0
    while True:
        batch: list[Record] = []
        for partition, position in positions.items():
            records = stream.read(partition, position, TAIL_BATCH)
            if records:
                positions[partition] = records[-1].offset + 1
                batch += records
        batch.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        printed, done = _emit(batch, printed, args)
        if done:
            return printed
        if not batch:
            if args.exit_at_end:
                return printed
            stream.wait(1.0)


def _tail_group(consumer: Consumer, args: argparse.Namespace) -> int:
    printed = 0
    while True:
        limit = TAIL_BATCH if args.count is None else max(1, args.count - printed)
        records = consumer.poll(limit, timeout=0 if args.exit_at_end else 1.0)
        printed, done = _emit(records, printed, args)
        consumer.commit()
        if done or (args.exit_at_end and not sum(consumer.lag().values())):
            return printed


def _emit(records: list[Record], printed: int, args: argparse.Namespace) -> tuple[int, bool]:
    """Print records up to --count; return (records printed so far, count reached)."""
    for record in records:
        if args.count is not None and printed >= args.count:
            return printed, True
        if args.json:
            print(json.dumps(_record_json(record), ensure_ascii=False))
        else:
            print(record.payload.decode("utf-8", "backslashreplace"))
        printed += 1
    sys.stdout.flush()
    return printed, args.count is not None and printed >= args.count


def _start_positions(stream: Stream, start: str, only: list[int] | None) -> dict[int, int]:
    earliest, end = stream.earliest_offsets(), stream.end_offsets()
    chosen = sorted(set(only)) if only else sorted(end)
    if start == "earliest":
        return {p: earliest[p] for p in chosen}
    if start == "latest":
        return {p: end[p] for p in chosen}
    number = int(start)
    if start.startswith("-"):
        return {p: max(end[p] + number, earliest[p]) for p in chosen}
    return {p: min(max(number, earliest[p]), end[p]) for p in chosen}


# -- reset-offsets -----------------------------------------------------------------------


def _reset_offsets_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the sqlitequeue database file")
    parser.add_argument("topic", help="the group's topic")
    parser.add_argument("group", help="the consumer group")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="earliest retained offset")
    target.add_argument("--to-latest", action="store_true", help="end offset (skip everything)")
    target.add_argument("--to-offset", type=non_negative_int, help="this offset")
    target.add_argument(
        "--to-timestamp",
        type=timestamp,
        help="first record at or after this time: epoch seconds or ISO 8601 (UTC if no zone)",
    )
    parser.add_argument("--partition", type=int, action="append", help="only this partition")
    parser.add_argument("--dry-run", action="store_true", help="show the change, make none")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_reset_offsets(args: argparse.Namespace) -> int:
    """Reset the offsets and print partition, old and new offset."""
    with Stream(args.file, args.topic, create=False) as stream:
        before = {
            p.partition: p.committed
            for g in groups(args.file, topic=args.topic, group=args.group)
            for p in g.partitions
        }
        to: str | int | None = None
        if args.to_earliest:
            to = "earliest"
        elif args.to_latest:
            to = "latest"
        elif args.to_offset is not None:
            to = args.to_offset
        new = stream.reset_offsets(
            args.group,
            to=to,
            timestamp=args.to_timestamp,
            partitions=args.partition,
            dry_run=args.dry_run,
        )
    if args.json:
        print_json(
            {
                "topic": args.topic,
                "group": args.group,
                "dry_run": args.dry_run,
                "partitions": [
                    {"partition": p, "old": before.get(p), "new": offset}
                    for p, offset in new.items()
                ],
            }
        )
        return ExitCode.OK
    rows = [[str(p), _or_dash(before.get(p)), str(offset)] for p, offset in new.items()]
    print_table(["PARTITION", "OLD", "NEW"], rows)
    if args.dry_run:
        print("(dry run: nothing was changed)")
    return ExitCode.OK


# -- formatting and argument types -------------------------------------------------------


def _record_json(record: Record) -> dict[str, Any]:
    headers: Mapping[str, bytes] = record.headers
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": jsonable_bytes(record.key),
        "payload": jsonable_bytes(record.payload),
        "headers": {name: jsonable_bytes(value) for name, value in headers.items()},
    }


def _format_time(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _format_retention(retention: Any) -> str:
    if retention is None:
        return "forever"
    parts = []
    if retention.max_age is not None:
        parts.append(f"{retention.max_age:g}s")
    if retention.max_bytes is not None:
        parts.append(f"{retention.max_bytes}B/partition")
    return " or ".join(parts)


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _start_value(text: str) -> str:
    if text in ("earliest", "latest"):
        return text
    try:
        int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be earliest, latest, an offset N or -N (the last N), not {text!r}"
        ) from None
    return text


COMMANDS = (
    Command(
        "topics",
        "List the topics of a file: partitions, retained offsets, bytes, retention.",
        _topics_arguments,
        run_topics,
        example="sqlitequeue topics app.db",
    ),
    Command(
        "groups",
        "List consumer groups: per partition committed offset, end offset, lag and owner.",
        _groups_arguments,
        run_groups,
        example="sqlitequeue groups app.db --topic orders",
    ),
    Command(
        "tail",
        "Print a topic's records and follow it (like `kcat -C`); Ctrl-C stops.",
        _tail_arguments,
        run_tail,
        example="sqlitequeue tail app.db orders --from -10 --json",
    ),
    Command(
        "reset-offsets",
        "Set a consumer group's committed offsets (the group must have no live member).",
        _reset_offsets_arguments,
        run_reset_offsets,
        example="sqlitequeue reset-offsets app.db orders billing --to-timestamp 2026-01-31T00:00",
    ),
)
