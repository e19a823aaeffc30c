"""Benchmark Queue and Stream against a raw sqlite3 loop, a minimal design and the peer queues.

Prints one side-by-side table per pattern (put, put_many, put from 8 threads at FULL
(group commit), get+ack, get_many+ack_many, end-to-end latency at 1,000 and 5,000 msgs/s,
4 draining consumer processes, stream append / append_many / poll+commit / 2 groups /
batched lifecycle) with the medians of --repeats runs, the ratios ours/raw, ours/minimal
design and ours/peer, and PASS/FAIL against the targets. The minimal design is the least
a correct SQLite queue needs (status column, partial index, UPDATE ... RETURNING claim,
DELETE ack), the anchor ours must stay within 0.8 of. Peers (persist-queue, litequeue,
honker, huey's SqliteStorage) run at their shipped durability (persist-queue and huey
FULL, litequeue and honker NORMAL) and are compared with ours and the raw loop at that
same setting. Every implementation is driven
through the workbench's one producer/consumer seam (send + flush, poll + commit), so each
pays the same per-call overhead. Every measurement uses fresh temporary files. The full
run takes about 4 minutes on 2 cores; --quick about 30 s.

Example:
  sqlitequeue bench queue --quick
  sqlitequeue bench queue --repeats 5 --json queue-bench.json
  sqlitequeue bench queue --only get_ack --only latency_1000 --dir /mnt/ssd/tmp
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sqlitequeue.cli.command import Command, ExitCode

HELP = "micro-benchmark Queue/Stream vs a raw sqlite3 loop, a minimal design and peer queues"

PATTERN_KEYS = (
    "put",
    "put_many",
    "put_threads",
    "get_ack",
    "get_many",
    "latency_1000",
    "latency_5000",
    "drain",
    "append",
    "append_many",
    "poll_commit",
    "groups",
    "lifecycle",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --quick, --repeats, --json, --only and --dir."""
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, about 30 s (default: full, ~4 min)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per row; medians are shown (default 3)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every sample to FILE (JSON)")
    parser.add_argument(
        "--only",
        action="append",
        choices=PATTERN_KEYS,
        metavar="PATTERN",
        help=f"run only this pattern (repeatable): {', '.join(PATTERN_KEYS)}",
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="where the temporary files go (default: the system temp dir); "
        "use the disk you care about: FULL durability means nothing on tmpfs",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the tables; return ExitCode.OK (targets missed are reported, not
    an error), 2 for bad arguments."""
    from sqlitequeue.bench.microbench import run as microbench

    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        print("sqlitequeue bench queue: --repeats must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    directory = Path(args.dir) if args.dir else None
    if directory is not None and not directory.is_dir():
        print(f"sqlitequeue bench queue: --dir {directory} is not a directory", file=sys.stderr)
        return ExitCode.USAGE
    sizes = microbench.QUICK_SIZES if args.quick else microbench.FULL_SIZES
    print(
        f"running {'quick' if args.quick else 'full'} queue benchmark, {repeats} repeat(s)...",
        file=sys.stderr,
    )
    report = microbench.run_benchmark(
        sizes, repeats, only=args.only, directory=directory, progress=sys.stderr
    )
    print(microbench.format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(microbench.report_to_json(report), indent=2))
        print(f"wrote {args.json}", file=sys.stderr)
    return ExitCode.OK


COMMAND = Command("queue", HELP, add_arguments, run, description=__doc__)
