"""Queue commands of the ``sqlitequeue`` CLI: stats, peek, put, get, dead, redrive, purge.

Thin wrappers over :class:`sqlitequeue.queue.Queue`. Only ``put`` creates a file; the
others refuse a missing one. ``--json`` prints machine-readable output; payloads and keys
are printed as text when they are UTF-8, and as ``{"base64": "..."}`` otherwise.
Exit codes: 0 done, 1 error, 2 bad usage, 3 nothing to do (``get`` found no message,
``redrive``/``purge`` found nothing to move or delete).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from sqlitequeue.errors import InvalidArgument
from sqlitequeue.queue import Message, Queue, QueueStats

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_EMPTY = 3


def register(subparsers: Any) -> None:
    """Add the queue commands to the ``sqlitequeue`` parser."""
    _add_stats(subparsers)
    _add_peek(subparsers)
    _add_put(subparsers)
    _add_get(subparsers)
    _add_dead(subparsers)
    _add_redrive(subparsers)
    _add_purge(subparsers)


def _parser(
    subparsers: Any, name: str, help_text: str, example: str, *, queue_help: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="the sqlitequeue database file")
    parser.add_argument(
        "-q",
        "--queue",
        default=None if queue_help else "default",
        help=queue_help or "queue name (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _open(args: argparse.Namespace, *, create: bool = False, name: str | None = None) -> Queue:
    if not create and not Path(args.file).exists():
        raise InvalidArgument(
            f"{args.file} does not exist; check the path (only `sqlitequeue put` creates a file)"
        )
    return Queue(args.file, name or args.queue)


# -- stats -----------------------------------------------------------------------------


def _add_stats(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "stats",
        "Show pending, in-flight, delayed and dead counts, and the oldest pending age.",
        "sqlitequeue stats jobs.db --json",
        queue_help="only this queue (default: every queue in the file)",
    )
    parser.set_defaults(func=_stats)


def _stats(args: argparse.Namespace) -> int:
    with _open(args, name=args.queue or "default") as q:
        names = [args.queue] if args.queue else q.queue_names()
        stats = []
        for name in names:
            with Queue(args.file, name) as named:
                stats.append(named.stats())
    if args.json:
        _print_json([_stats_dict(s) for s in stats])
        return EXIT_OK
    if not stats:
        print(f"{args.file} holds no messages")
        return EXIT_OK
    rows = [["queue", "pending", "in_flight", "delayed", "dead", "oldest_pending_age_s"]]
    for s in stats:
        age = "-" if s.oldest_pending_age is None else f"{s.oldest_pending_age:.3f}"
        rows.append([s.queue, *map(str, (s.pending, s.in_flight, s.delayed, s.dead)), age])
    _print_table(rows)
    return EXIT_OK


def _stats_dict(s: QueueStats) -> dict[str, Any]:
    return {
        "queue": s.queue,
        "pending": s.pending,
        "in_flight": s.in_flight,
        "delayed": s.delayed,
        "dead": s.dead,
        "oldest_pending_age": s.oldest_pending_age,
    }


# -- peek and dead -----------------------------------------------------------------------


def _add_peek(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "peek",
        "List the next pending messages in delivery order, without claiming them.",
        "sqlitequeue peek jobs.db -q emails -n 5",
    )
    parser.add_argument("-n", "--limit", type=int, default=10, help="at most N (default 10)")
    parser.set_defaults(func=lambda args: _list(args, dead=False))


def _add_dead(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "dead",
        "List dead letters (messages that failed max_attempts times or were buried), "
        "with the last reason.",
        "sqlitequeue dead jobs.db --json",
    )
    parser.add_argument("-n", "--limit", type=int, default=100, help="at most N (default 100)")
    parser.set_defaults(func=lambda args: _list(args, dead=True))


def _list(args: argparse.Namespace, *, dead: bool) -> int:
    with _open(args) as q:
        messages = q.dead_letters(args.limit) if dead else q.peek(args.limit)
    if args.json:
        _print_json([_message_dict(m) for m in messages])
        return EXIT_OK
    if not messages:
        print(f"no {'dead letters' if dead else 'pending messages'} in queue {args.queue!r}")
        return EXIT_OK
    header = ["id", "priority", "attempts", "key", "payload"] + (["last_error"] if dead else [])
    rows = [header]
    for m in messages:
        row = [str(m.id), str(m.priority), str(m.attempts), _short(m.key), _short(m.payload)]
        rows.append(row + ([m.last_error or ""] if dead else []))
    _print_table(rows)
    return EXIT_OK


# -- put and get -------------------------------------------------------------------------


def _add_put(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "put",
        "Add messages (each argument is one UTF-8 payload; without arguments, each line "
        "of standard input is one). Creates the file if needed; prints the new ids.",
        "sqlitequeue put jobs.db 'resize 42.png' 'resize 43.png' --priority 5",
    )
    parser.add_argument("payloads", nargs="*", help="message payloads (default: stdin lines)")
    parser.add_argument("--key", help="key stored with every message")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before claimable")
    parser.add_argument("--priority", type=int, default=0, help="higher is delivered first")
    parser.set_defaults(func=_put)


def _put(args: argparse.Namespace) -> int:
    if args.payloads:
        payloads = [p.encode() for p in args.payloads]
    else:
        payloads = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    if not payloads:
        print("sqlitequeue put: nothing to put (no arguments, empty stdin)", file=sys.stderr)
        return EXIT_EMPTY
    with _open(args, create=True) as q:
        ids = q.put_many(
            payloads, keys=[args.key] * len(payloads), delay=args.delay, priority=args.priority
        )
    if args.json:
        _print_json({"queue": args.queue, "ids": ids})
    else:
        print("\n".join(map(str, ids)))
    return EXIT_OK


def _add_get(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "get",
        "Claim messages, print their payloads (one per line), then ack them. Exit code 3 "
        "when none arrives within --timeout.",
        "sqlitequeue get jobs.db --timeout 5 --json",
    )
    parser.add_argument("-n", "--max", type=int, default=1, help="claim up to N (default 1)")
    parser.add_argument(
        "--timeout", type=float, default=0.0, help="seconds to wait for a message (default 0)"
    )
    parser.add_argument("--lease", type=float, default=None, help="lease in seconds")
    parser.add_argument(
        "--no-ack",
        action="store_true",
        help="leave the messages leased (they return after the lease) instead of acking",
    )
    parser.set_defaults(func=_get)


def _get(args: argparse.Namespace) -> int:
    with _open(args) as q:
        messages = q.get_many(args.max, timeout=args.timeout, lease=args.lease)
        if not messages:
            if args.json:
                _print_json([])
            else:
                print(f"no message in queue {args.queue!r}", file=sys.stderr)
            return EXIT_EMPTY
        if args.json:
            _print_json([_message_dict(m) for m in messages])
        else:
            out = sys.stdout.buffer
            for m in messages:
                out.write(m.payload + b"\n")
            out.flush()
        if not args.no_ack:  # only once the output was written: a broken pipe redelivers
            q.ack_many(messages)
    return EXIT_OK


# -- redrive and purge -------------------------------------------------------------------


def _add_redrive(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "redrive",
        "Make dead letters pending again (all, or the given ids) with a fresh attempt count.",
        "sqlitequeue redrive jobs.db 17 42",
    )
    parser.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: all)")
    parser.set_defaults(func=_redrive)


def _redrive(args: argparse.Namespace) -> int:
    with _open(args) as q:
        count = q.redrive(args.ids or None)
    _report(args, "redriven", count)
    return EXIT_OK if count else EXIT_EMPTY


def _add_purge(subparsers: Any) -> None:
    parser = _parser(
        subparsers,
        "purge",
        "Delete every message of a queue (pending, delayed, in flight and dead), or only "
        "its dead letters. Needs --yes.",
        "sqlitequeue purge jobs.db -q emails --dead-only --yes",
    )
    parser.add_argument("--dead-only", action="store_true", help="delete only dead letters")
    parser.add_argument("--yes", action="store_true", help="really delete")
    parser.set_defaults(func=_purge)


def _purge(args: argparse.Namespace) -> int:
    if not args.yes:
        what = "dead letters" if args.dead_only else "messages"
        print(
            f"sqlitequeue purge: this deletes the {what} of queue {args.queue!r} in "
            f"{args.file} for good; add --yes to do it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    with _open(args) as q:
        count = q.purge(dead_only=args.dead_only)
    _report(args, "purged", count)
    return EXIT_OK if count else EXIT_EMPTY


# -- output ------------------------------------------------------------------------------


def _report(args: argparse.Namespace, verb: str, count: int) -> None:
    if args.json:
        _print_json({"queue": args.queue, verb: count})
    else:
        print(f"{count} message{'s' if count != 1 else ''} {verb} in queue {args.queue!r}")


def _message_dict(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "queue": m.queue,
        "payload": _jsonable(m.payload),
        "key": _jsonable(m.key),
        "priority": m.priority,
        "attempts": m.attempts,
        "enqueued_at": m.enqueued_at,
        "lease_expires_at": m.lease_expires_at,
        "last_error": m.last_error,
    }


def _jsonable(value: str | bytes | None) -> Any:
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def _short(value: str | bytes | None, width: int = 60) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else value.decode(errors="backslashreplace")
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= width else text[: width - 3] + "..."


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
