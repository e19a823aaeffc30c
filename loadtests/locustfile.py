"""Locust load tests that replay the workbench's workloads against SQLite and Kafka.

Pick ONE user class (one backend) per run, one user per process, and as many users as
the workload has producers + consumers (``sqlitequeue bench locust`` computes it)::

    python loadtests/run_locust.py -f loadtests/locustfile.py --headless \\
        -u 2 -r 2 -t 60s --processes 2 --workload steady-1kb \\
        --csv results/locust-sqlite-queue/locust --csv-full-history SqliteQueueUser

Kafka users read ``KAFKA_BOOTSTRAP_SERVERS``. Custom arguments: ``--workload NAME|PATH``,
``--backend-profile NAME|PATH``, ``--max-rate``, ``--duration SECONDS``, ``--data-dir DIR``.
Every operation is a Locust request: type = the backend, name = ``publish``, ``consume``
or ``end-to-end``. ``loadtests/run_locust.py`` is Locust's own command line with the gevent
patching our clients need; docs/locust.md explains why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

import backend_user
import locust.stats
from backend_client import response_time_bucket, roles
from backend_user import BackendUser, RunConfig
from gevent import monkey
from locust import events, task

from sqlitequeue.bench.kafka.broker import BOOTSTRAP_ENV
from sqlitequeue.bench.profiles import backend_spec
from sqlitequeue.bench.workload import Workload, load_workload
from sqlitequeue.errors import QueueError

log = logging.getLogger("sqlitequeue.locust")
#: backends whose client threads must be greenlets (see run_locust.py)
GREENLET_BACKENDS = ("kafka", "gateway-kafka-python")
#: seconds of each run left for consumers to drain after the producers' last send
MAX_DRAIN = 5.0


class MemoryUser(BackendUser):
    """No storage (harness checks): Unix sockets between processes."""

    backend = "memory"

    @task
    def replay(self) -> None:
        self.replay_workload()


class SqliteQueueUser(BackendUser):
    """sqlitequeue.Queue: a consumer group is a queue fed at publish time."""

    backend = "sqlite-queue"

    @task
    def replay(self) -> None:
        self.replay_workload()


class SqliteStreamUser(BackendUser):
    """sqlitequeue.Stream: a partitioned log with consumer-group offsets."""

    backend = "sqlite-stream"

    @task
    def replay(self) -> None:
        self.replay_workload()


class KafkaPythonUser(BackendUser):
    """Apache Kafka through kafka-python."""

    backend = "kafka"

    @task
    def replay(self) -> None:
        self.replay_workload()


class KafkaConfluentUser(BackendUser):
    """Apache Kafka through confluent-kafka (librdkafka)."""

    backend = "kafka-confluent"

    @task
    def replay(self) -> None:
        self.replay_workload()


class KafkaManagedUser(BackendUser):
    """A managed-shaped Kafka (3 brokers across zones, RF 3, acks=all) via confluent-kafka."""

    backend = "kafka-managed"

    @task
    def replay(self) -> None:
        self.replay_workload()


class GatewayConfluentUser(BackendUser):
    """confluent-kafka against `sqlitequeue serve` (one server, started on the run's file)."""

    backend = "gateway-confluent"

    @task
    def replay(self) -> None:
        self.replay_workload()


class GatewayKafkaPythonUser(BackendUser):
    """kafka-python against `sqlitequeue serve` (one server, started on the run's file)."""

    backend = "gateway-kafka-python"

    @task
    def replay(self) -> None:
        self.replay_workload()


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    """Add the workload arguments (also shown in the web UI)."""
    parser.add_argument(
        "--workload",
        default="steady-1kb",
        metavar="NAME|PATH",
        help="bundled workload name or workload YAML file (sqlitequeue bench list)",
        include_in_web_ui=True,
    )
    parser.add_argument(
        "--backend-profile",
        default="",
        metavar="NAME|PATH",
        help="backend settings profile (sqlitequeue/bench/profiles)",
    )
    parser.add_argument(
        "--max-rate",
        action="store_true",
        default=False,
        help="send as fast as possible instead of on the workload's schedule",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long producers replay the schedule (default: the run time minus a "
        f"drain of up to {MAX_DRAIN:g} s, at most the workload's duration)",
    )
    parser.add_argument("--data-dir", default="", metavar="DIR", help="where SQLite files go")


def drain_seconds(run_time: float | None) -> float:
    """Return the seconds kept at the end of ``run_time`` for consumers to catch up."""
    return min(MAX_DRAIN, max(1.0, run_time / 10)) if run_time else 0.0


def replay_seconds(workload: Workload, run_time: float | None, duration: float) -> float:
    """Return how long producers replay the schedule at most (see ``--duration``).

    The master shortens it at the common start so that the drain still fits.
    """
    if duration > 0:
        return duration
    if not run_time:
        return workload.duration_seconds
    return max(1.0, min(workload.duration_seconds, run_time - drain_seconds(run_time)))


def check_patching(backend: str) -> None:
    """Raise QueueError unless gevent patched this process the way ``backend`` needs.

    kafka-python needs greenlet threads (plain Locust); every other backend needs real
    threads with everything else patched (``loadtests/run_locust.py``).
    """
    greenlets = monkey.is_module_patched("threading")
    wanted = backend in GREENLET_BACKENDS
    if greenlets == wanted and monkey.is_module_patched("socket"):
        return
    how = "plain `locust` works too" if wanted else "plain `locust` does not"
    raise QueueError(
        f"{backend}: start Locust with `python loadtests/run_locust.py ...` (Locust's own "
        f"arguments; {how}) or `sqlitequeue bench locust`: the clients run their own threads, "
        + (
            "which must be greenlets for kafka-python"
            if wanted
            else "which must stay real threads (a SQLite write or confluent-kafka's delivery "
            "loop would stall a greenlet-threaded process)"
        )
        + "; see docs/locust.md"
    )


def build_config(environment: Any) -> RunConfig:
    """Validate the command line and return the run's configuration.

    Raises QueueError (WorkloadError, BackendError) with a message naming the problem.
    """
    options = environment.parsed_options
    backends = sorted({cls.backend for cls in environment.user_classes})
    if len(backends) != 1 and not getattr(options, "class_picker", False):
        names = ", ".join(cls.__name__ for cls in environment.user_classes)
        raise QueueError(
            f"pick one user class (one backend) per run, e.g. `locust -f {__file__} "
            f"SqliteQueueUser`; selected: {names}"
        )
    check_patching(backends[0])
    workload = load_workload(options.workload)
    if workload.finds_max_rate and not options.max_rate:
        raise QueueError(
            f"{workload.path}: field 'producerRate' is 0 (a max-rate search, which Locust "
            "does not run): give a rate, or pass --max-rate to send as fast as possible"
        )
    seconds = replay_seconds(workload, options.run_time, options.duration)
    workload.with_duration(seconds)  # validates the duration
    backend = backends[0]
    servers = os.environ.get(BOOTSTRAP_ENV)
    if backend.startswith("kafka") and not servers:
        raise QueueError(
            f"{backend} needs {BOOTSTRAP_ENV}=host:port (or run `sqlitequeue bench locust`, "
            "which starts Kafka the way the workbench does)"
        )
    spec = backend_spec(backend, options.backend_profile or None, bootstrap_servers=servers)
    return RunConfig(
        backend=backend,
        spec=spec,
        workload=workload,
        seconds=seconds,
        run_time=options.run_time,
        drain=drain_seconds(options.run_time),
        max_rate=options.max_rate,
        data_dir=options.data_dir or None,
        workload_arg=options.workload,
    )


@events.init.add_listener
def on_init(environment: Any, **_: Any) -> None:
    """Validate before any user starts; exit 1 with the reason when something is wrong."""
    # keep sub-ms precision (Locust documents replacing this; its hint says int, floats work)
    locust.stats.bucket_response_time = response_time_bucket  # type: ignore[assignment]
    try:
        config = build_config(environment)
    except QueueError as exc:
        sys.stderr.write(f"sqlitequeue: {exc}\n")
        sys.stderr.flush()
        stop_forked_workers()
        os._exit(1)  # nothing has started yet: no clean-up to run
    backend_user.register(environment, config)
    if backend_user.is_coordinator(environment.runner):
        n = len(roles(config.workload))
        log.info(
            "workload %s on %s: replaying %.0f s, %d user(s) needed",
            config.workload.name,
            config.backend,
            config.seconds,
            n,
        )
        environment.events.spawning_complete.add_listener(_check_user_count(environment, n))


def stop_forked_workers() -> None:
    """Kill the workers this process forked for ``--processes`` (they would otherwise keep
    retrying to connect to a master that is gone, for minutes)."""
    import signal

    import psutil

    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            os.kill(child.pid, signal.SIGKILL)


def _check_user_count(environment: Any, needed: int) -> Any:
    def check(user_count: int, **_: Any) -> None:
        if user_count < needed:
            log.error(
                "the workload needs %d users (its producers and consumers), only %d started: "
                "run with -u %d (one per process: --processes %d)",
                needed,
                user_count,
                needed,
                needed,
            )
            environment.process_exit_code = 1
            environment.runner.quit()

    return check


__all__ = [
    "KafkaConfluentUser",
    "KafkaManagedUser",
    "KafkaPythonUser",
    "MemoryUser",
    "SqliteQueueUser",
    "SqliteStreamUser",
]
