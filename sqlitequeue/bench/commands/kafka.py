"""Get a real Apache Kafka for the workbench and the notebooks.

  sqlitequeue kafka install              download Kafka's jars into the cache (idempotent, fast
                                         when cached; `make kafka` runs this)
  sqlitequeue kafka start [--brokers 3] [--network cross-az]
                                         start a local KRaft broker that keeps running after this
                                         command exits; prints `export KAFKA_BOOTSTRAP_SERVERS=...`
  sqlitequeue kafka status               is the broker started by `kafka start` up? (exit 3: no)
  sqlitequeue kafka stop                 stop it and delete its data (exit 3: nothing to stop)

Example:
  eval "$(sqlitequeue kafka start)"   # the notebooks and `bench` now use this broker
  sqlitequeue kafka stop
"""

from __future__ import annotations

import argparse
import sys
import time

from sqlitequeue.bench.commands.arguments import add_network_arguments, network_from
from sqlitequeue.cli import WORKBENCH_COMMANDS
from sqlitequeue.cli.command import Command, ExitCode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the install/start/status/stop sub-commands."""
    parser.set_defaults(kafka_help=parser.format_help)
    sub = parser.add_subparsers(dest="kafka_action", metavar="ACTION")
    install = sub.add_parser("install", help="download Kafka's jars from Maven Central (cached)")
    install.add_argument("--version", default=None, help="Kafka version (default: %(default)s)")
    start = sub.add_parser("start", help="start a detached local broker; print the export line")
    start.add_argument("--brokers", type=int, choices=(1, 3), default=1, help="1 (default) or 3")
    start.add_argument("--port", type=int, default=None, help="client port (default: a free one)")
    start.add_argument("--heap", default=None, help="JVM heap per node, e.g. 1G (default)")
    add_network_arguments(start)
    sub.add_parser("status", help="show the broker started by `kafka start`")
    sub.add_parser("stop", help="stop the broker started by `kafka start`; delete its data")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; return the exit code."""
    actions = {"install": _install, "start": _start, "status": _status, "stop": _stop}
    action = actions.get(getattr(args, "kafka_action", None) or "")
    if action is None:
        print(args.kafka_help(), file=sys.stderr)
        return ExitCode.USAGE
    return action(args)


# --------------------------------------------------------------------------- actions


def _install(args: argparse.Namespace) -> int:
    from sqlitequeue.bench.errors import KafkaError
    from sqlitequeue.bench.kafka import distribution

    version = args.version or distribution.KAFKA_VERSION
    libs = distribution.install(version)
    print(f"Apache Kafka {version} jars: {libs}")
    try:
        java = distribution.require_java()
        print(f"Java: {java} (Java {distribution.java_major_version(java)})")
    except KafkaError as exc:
        print(f"warning: the local broker cannot run yet: {exc}", file=sys.stderr)
    return ExitCode.OK


def _start(args: argparse.Namespace) -> int:
    from sqlitequeue.bench.kafka import detached

    state = detached.read_state()
    if state and detached.live_pids(state):
        print(f"export KAFKA_BOOTSTRAP_SERVERS={state['bootstrap']}")
        print(
            f"already running (pids {state['pids']}); `sqlitequeue kafka stop` stops it",
            file=sys.stderr,
        )
        return ExitCode.OK
    started = time.monotonic()
    network = network_from(args)
    state = detached.start_detached(args.brokers, port=args.port, heap=args.heap, network=network)
    print(f"export KAFKA_BOOTSTRAP_SERVERS={state['bootstrap']}")
    print(
        f"Kafka {state['version']} ready in {time.monotonic() - started:.1f} s over the "
        f"{network.name} network "
        f"(pids {state['pids']}, data and logs in {state['data_dir']}); "
        "stop it with `sqlitequeue kafka stop`",
        file=sys.stderr,
    )
    return ExitCode.OK


def _status(args: argparse.Namespace) -> int:
    from sqlitequeue.bench.kafka import detached

    state = detached.read_state()
    if state is None:
        print("no broker started by `sqlitequeue kafka start`")
        return ExitCode.EMPTY
    live = detached.live_pids(state)
    if not live:
        detached.forget()
        print(f"not running: its JVMs {state['pids']} are gone (stale state removed)")
        return ExitCode.EMPTY
    uptime = time.time() - float(state.get("started_at", time.time()))
    print(f"Kafka {state['version']} at {state['bootstrap']}: {detached.health(state)}")
    print(f"pids {live} of {state['pids']}, up {uptime:.0f} s, data in {state['data_dir']}")
    print(f"export KAFKA_BOOTSTRAP_SERVERS={state['bootstrap']}")
    return ExitCode.OK


def _stop(args: argparse.Namespace) -> int:
    from sqlitequeue.bench.kafka import detached

    state = detached.read_state()
    if state is None:
        print("no broker started by `sqlitequeue kafka start`: nothing to stop")
        return ExitCode.EMPTY
    live = detached.stop_detached(state)
    print(f"stopped Kafka at {state['bootstrap']} (pids {live}); removed {state['data_dir']}")
    return ExitCode.OK


COMMAND = Command("kafka", WORKBENCH_COMMANDS["kafka"], add_arguments, run, description=__doc__)
