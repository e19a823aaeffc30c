"""Queue commands of the ``sqlitequeue`` CLI: stats, peek, put, get, dead, redrive, purge.

Thin layers over :class:`sqlitequeue.queue.Queue`. Only ``put`` creates a file; the others
refuse a missing one. ``--json`` prints machine-readable output; payloads and keys are printed
as text when they are UTF-8, and as ``{"base64": "..."}`` otherwise. Exit codes
(:class:`~sqlitequeue.cli.command.ExitCode`): 0 done, 1 error, 2 bad usage, 3 nothing to do
(``get`` found no message, ``redrive``/``purge`` found nothing to move or delete).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

from sqlitequeue.cli.arguments import non_negative_seconds, positive_int, positive_seconds
from sqlitequeue.cli.command import Command, ExitCode
from sqlitequeue.cli.output import jsonable_bytes, print_json, print_table, short
from sqlitequeue.errors import InvalidArgument
from sqlitequeue.queue import Message, Queue, QueueStats


def _file_arguments(parser: argparse.ArgumentParser, *, queue_help: str | None = None) -> None:
    parser.add_argument("file", help="the sqlitequeue database file")
    parser.add_argument(
        "-q",
        "--queue",
        default=None if queue_help else "default",
        help=queue_help or "queue name (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _open(args: argparse.Namespace, *, create: bool = False, name: str | None = None) -> Queue:
    if not create and not Path(args.file).exists():
        raise InvalidArgument(
            f"{args.file} does not exist; check the path (only `sqlitequeue put` creates a file)"
        )
    return Queue(args.file, name or args.queue)


# -- stats -----------------------------------------------------------------------------


def _stats_arguments(parser: argparse.ArgumentParser) -> None:
    _file_arguments(parser, queue_help="only this queue (default: every queue in the file)")


def run_stats(args: argparse.Namespace) -> int:
    """Print each queue's counts and oldest pending age."""
    with _open(args, name=args.queue or "default") as q:
        names = [args.queue] if args.queue else q.queue_names()
        stats = []
        for name in names:
            with Queue(args.file, name) as named:
                stats.append(named.stats())
    if args.json:
        print_json([_stats_dict(s) for s in stats])
        return ExitCode.OK
    if not stats:
        print(f"{args.file} holds no messages")
        return ExitCode.OK
    rows = []
    for s in stats:
        age = "-" if s.oldest_pending_age is None else f"{s.oldest_pending_age:.3f}"
        rows.append([s.queue, *map(str, (s.pending, s.in_flight, s.delayed, s.dead)), age])
    print_table(["queue", "pending", "in_flight", "delayed", "dead", "oldest_pending_age_s"], rows)
    return ExitCode.OK


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


def _list_arguments(parser: argparse.ArgumentParser, *, default: int) -> None:
    _file_arguments(parser)
    parser.add_argument(
        "-n", "--limit", type=positive_int, default=default, help=f"at most N (default {default})"
    )


def run_list(args: argparse.Namespace, *, dead: bool) -> int:
    """Print pending messages (``dead=False``) or dead letters, without claiming them."""
    with _open(args) as q:
        messages = q.dead_letters(args.limit) if dead else q.peek(args.limit)
    if args.json:
        print_json([_message_dict(m) for m in messages])
        return ExitCode.OK
    if not messages:
        print(f"no {'dead letters' if dead else 'pending messages'} in queue {args.queue!r}")
        return ExitCode.OK
    header = ["id", "priority", "attempts", "key", "payload"] + (["last_error"] if dead else [])
    rows = []
    for m in messages:
        row = [str(m.id), str(m.priority), str(m.attempts), short(m.key), short(m.payload)]
        rows.append(row + ([m.last_error or ""] if dead else []))
    print_table(header, rows)
    return ExitCode.OK


# -- put and get -------------------------------------------------------------------------


def _put_arguments(parser: argparse.ArgumentParser) -> None:
    _file_arguments(parser)
    parser.add_argument("payloads", nargs="*", help="message payloads (default: stdin lines)")
    parser.add_argument("--key", help="key stored with every message")
    parser.add_argument(
        "--delay", type=non_negative_seconds, default=0.0, help="seconds before claimable"
    )
    parser.add_argument("--priority", type=int, default=0, help="higher is delivered first")


def run_put(args: argparse.Namespace) -> int:
    """Put the payloads (arguments, else stdin lines) and print their ids."""
    if args.payloads:
        payloads = [p.encode() for p in args.payloads]
    else:
        payloads = [line.rstrip(b"\r\n") for line in sys.stdin.buffer]
    if not payloads:
        print("sqlitequeue put: nothing to put (no arguments, empty stdin)", file=sys.stderr)
        return ExitCode.EMPTY
    with _open(args, create=True) as q:
        ids = q.put_many(
            payloads, keys=[args.key] * len(payloads), delay=args.delay, priority=args.priority
        )
    if args.json:
        print_json({"queue": args.queue, "ids": ids})
    else:
        print("\n".join(map(str, ids)))
    return ExitCode.OK


def _get_arguments(parser: argparse.ArgumentParser) -> None:
    _file_arguments(parser)
    parser.add_argument(
        "-n", "--max", type=positive_int, default=1, help="claim up to N (default 1)"
    )
    parser.add_argument(
        "--timeout",
        type=non_negative_seconds,
        default=0.0,
        help="seconds to wait for a message (default 0)",
    )
    parser.add_argument("--lease", type=positive_seconds, default=None, help="lease in seconds")
    parser.add_argument(
        "--no-ack",
        action="store_true",
        help="leave the messages leased (they return after the lease) instead of acking",
    )


def run_get(args: argparse.Namespace) -> int:
    """Claim up to ``--max`` messages, print them, then ack them (unless ``--no-ack``)."""
    with _open(args) as q:
        messages = q.get_many(args.max, timeout=args.timeout, lease=args.lease)
        if not messages:
            if args.json:
                print_json([])
            else:
                print(f"no message in queue {args.queue!r}", file=sys.stderr)
            return ExitCode.EMPTY
        if args.json:
            print_json([_message_dict(m) for m in messages])
        else:
            out = sys.stdout.buffer
            for m in messages:
                out.write(m.payload + b"\n")
            out.flush()
        if not args.no_ack:  # only once the output was written: a broken pipe redelivers
            q.ack_many(messages)
    return ExitCode.OK


# -- redrive and purge -------------------------------------------------------------------


def _redrive_arguments(parser: argparse.ArgumentParser) -> None:
    _file_arguments(parser)
    parser.add_argument("ids", nargs="*", type=int, help="dead letter ids (default: all)")


def run_redrive(args: argparse.Namespace) -> int:
    """Make dead letters pending again; exit 3 when there was none."""
    with _open(args) as q:
        count = q.redrive(args.ids or None)
    _report(args, "redriven", count)
    return ExitCode.OK if count else ExitCode.EMPTY


def _purge_arguments(parser: argparse.ArgumentParser) -> None:
    _file_arguments(parser)
    parser.add_argument("--dead-only", action="store_true", help="delete only dead letters")
    parser.add_argument("--yes", action="store_true", help="really delete")


def run_purge(args: argparse.Namespace) -> int:
    """Delete a queue's messages (or dead letters) when ``--yes`` is given; exit 3 if none."""
    if not args.yes:
        what = "dead letters" if args.dead_only else "messages"
        print(
            f"sqlitequeue purge: this deletes the {what} of queue {args.queue!r} in "
            f"{args.file} for good; add --yes to do it",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    with _open(args) as q:
        count = q.purge(dead_only=args.dead_only)
    _report(args, "purged", count)
    return ExitCode.OK if count else ExitCode.EMPTY


# -- output ------------------------------------------------------------------------------


def _report(args: argparse.Namespace, verb: str, count: int) -> None:
    if args.json:
        print_json({"queue": args.queue, verb: count})
    else:
        print(f"{count} message{'s' if count != 1 else ''} {verb} in queue {args.queue!r}")


def _message_dict(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "queue": m.queue,
        "payload": jsonable_bytes(m.payload),
        "key": jsonable_bytes(m.key),
        "priority": m.priority,
        "attempts": m.attempts,
        "enqueued_at": m.enqueued_at,
        "lease_expires_at": m.lease_expires_at,
        "last_error": m.last_error,
    }


COMMANDS = (
    Command(
        "stats",
        "Show pending, in-flight, delayed and dead counts, and the oldest pending age.",
        _stats_arguments,
        run_stats,
        example="sqlitequeue stats jobs.db --json",
    ),
    Command(
        "peek",
        "List the next pending messages in delivery order, without claiming them.",
        partial(_list_arguments, default=10),
        partial(run_list, dead=False),
        example="sqlitequeue peek jobs.db -q emails -n 5",
    ),
    Command(
        "put",
        "Add messages (each argument is one UTF-8 payload; without arguments, each line "
        "of standard input is one). Creates the file if needed; prints the new ids.",
        _put_arguments,
        run_put,
        example="sqlitequeue put jobs.db 'resize 42.png' 'resize 43.png' --priority 5",
    ),
    Command(
        "get",
        "Claim messages, print their payloads (one per line), then ack them. Exit code 3 "
        "when none arrives within --timeout.",
        _get_arguments,
        run_get,
        example="sqlitequeue get jobs.db --timeout 5 --json",
    ),
    Command(
        "dead",
        "List dead letters (messages that failed max_attempts times or were buried), "
        "with the last reason.",
        partial(_list_arguments, default=100),
        partial(run_list, dead=True),
        example="sqlitequeue dead jobs.db --json",
    ),
    Command(
        "redrive",
        "Make dead letters pending again (all, or the given ids) with a fresh attempt count.",
        _redrive_arguments,
        run_redrive,
        example="sqlitequeue redrive jobs.db 17 42",
    ),
    Command(
        "purge",
        "Delete every message of a queue (pending, delayed, in flight and dead), or only "
        "its dead letters. Needs --yes.",
        _purge_arguments,
        run_purge,
        example="sqlitequeue purge jobs.db -q emails --dead-only --yes",
    ),
)
