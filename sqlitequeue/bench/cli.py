"""The workbench's commands: ``sqlitequeue bench ...``, ``kafka ...`` and ``decide``.

Each command is a module under :mod:`sqlitequeue.bench.commands` that declares
``COMMAND = Command(...)`` (:class:`sqlitequeue.cli.command.Command`): one-line help, its
arguments, and ``run(args)``, a thin layer over a library call. Command modules import only
the standard library at module level; heavy imports (pandas, Kafka clients) happen inside
``run``, so ``--help`` stays fast and works without the extras. :mod:`sqlitequeue.cli`
imports this module only when one of these commands is run.
"""

from __future__ import annotations

from sqlitequeue.bench.commands import (
    capture,
    compare,
    cost,
    decide,
    fairness,
    faults,
    kafka,
    list_workloads,
    locust,
    locust_import,
    queue_bench,
    report,
    run,
    selfcheck,
)
from sqlitequeue.cli import WORKBENCH_COMMANDS
from sqlitequeue.cli.command import Command, CommandGroup

#: ``sqlitequeue bench NAME``, in the order ``--help`` lists them.
BENCH_COMMANDS: tuple[Command, ...] = tuple(
    module.COMMAND
    for module in (
        run,
        compare,
        report,
        capture,
        list_workloads,
        selfcheck,
        queue_bench,
        fairness,
        faults,
        cost,
        locust_import,
        locust,
    )
)

COMMANDS: tuple[Command | CommandGroup, ...] = (
    CommandGroup("bench", WORKBENCH_COMMANDS["bench"], BENCH_COMMANDS),
    kafka.COMMAND,
    decide.COMMAND,
)
