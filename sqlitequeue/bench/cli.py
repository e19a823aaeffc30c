"""Workbench commands: ``sqlitequeue bench ...``, ``sqlitequeue kafka ...``, ``sqlitequeue decide``.

Each command is a module under :mod:`sqlitequeue.bench.commands` exposing ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``. Command modules import only the
standard library at module level; heavy imports (pandas, kafka clients) happen inside
``run`` so ``--help`` stays fast and works without the extras.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

#: ``sqlitequeue bench NAME`` -> module under sqlitequeue.bench.commands
BENCH_COMMANDS = {
    "run": "run",
    "compare": "compare",
    "report": "report",
    "capture": "capture",
    "list": "list_workloads",
    "selfcheck": "selfcheck",
    "queue": "queue_bench",
    "fairness": "fairness",
    "faults": "faults",
    "cost": "cost",
    "locust-import": "locust_import",
    "locust": "locust",
}

#: top-level commands that belong to the workbench
TOP_COMMANDS = {
    "kafka": "kafka",
    "decide": "decide",
}


def _load(module: str) -> Any | None:
    name = f"sqlitequeue.bench.commands.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None  # not built yet in this checkout
        raise


def _add(subparsers: Any, name: str, module_name: str) -> None:
    module = _load(module_name)
    if module is None:
        return
    parser = subparsers.add_parser(
        name,
        help=module.HELP,
        description=module.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    parser.set_defaults(func=module.run)


def register(subparsers: Any) -> None:
    """Add ``bench`` (with its sub-commands), ``kafka`` and ``decide`` to the CLI."""
    bench = subparsers.add_parser(
        "bench", help="benchmark SQLite against Kafka (needs: pip install 'sqlitequeue[all]')"
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND")
    bench.set_defaults(func=lambda args: bench.print_help() or 2)
    for name, module_name in BENCH_COMMANDS.items():
        _add(bench_sub, name, module_name)
    for name, module_name in TOP_COMMANDS.items():
        _add(subparsers, name, module_name)
