"""The ``sqlitequeue serve`` command (loaded only when it is run)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from sqlitequeue.cli.command import Command, ExitCode
from sqlitequeue.gateway.server import Server

HELP = "serve a file over Kafka's wire protocol, for unchanged Kafka clients and tools"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the sqlitequeue file (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=9092, help="port (default 9092; 0 = any)")
    parser.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="address Metadata gives clients, for a server behind a proxy (default: the bound one)",
    )
    parser.add_argument(
        "--no-auto-create",
        action="store_true",
        help="refuse unknown topics instead of creating them on first use",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = Server(
        args.file,
        host=args.host,
        port=args.port,
        auto_create=not args.no_auto_create,
        advertise=args.advertise,
    )

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.close, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    print(
        f"serving {args.file} on {server.bootstrap} (bootstrap.servers={server.bootstrap})",
        flush=True,
    )
    while not server.wait(0.5):  # short waits, so that signal handlers run
        pass
    print("stopped", file=sys.stderr, flush=True)
    return ExitCode.OK


COMMAND = Command(
    "serve",
    HELP,
    add_arguments,
    run,
    example="sqlitequeue serve events.db --port 9092  # then bootstrap.servers=127.0.0.1:9092",
)
