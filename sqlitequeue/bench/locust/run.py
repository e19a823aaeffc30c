"""Run the Locust load tests (``loadtests/``) as a subprocess and convert their CSVs.

Locust is never imported here (``import locust`` monkey-patches the importing process
with gevent, and hangs a Jupyter kernel): this module only builds the command line, starts
Kafka the way the workbench does (:meth:`KafkaBroker.auto`; ``KAFKA_BOOTSTRAP_SERVERS``
is passed to the Locust processes) and runs ``loadtests/run_locust.py``, which is Locust's
own command line with threads left unpatched (see docs/locust.md).

One user per process: a workload with P producers and C consumers runs ``-u P+C`` users
with ``--processes P+C``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlitequeue.bench.errors import BenchError, KafkaError
from sqlitequeue.bench.workload import load_workload

if TYPE_CHECKING:
    from sqlitequeue.bench.network.profiles import NetworkProfile

LOADTESTS = Path(__file__).resolve().parents[3] / "loadtests"
LOCUSTFILE = LOADTESTS / "locustfile.py"
LAUNCHER = LOADTESTS / "run_locust.py"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"

#: backend -> the locustfile's user class
USER_CLASSES = {
    "memory": "MemoryUser",
    "sqlite-queue": "SqliteQueueUser",
    "sqlite-stream": "SqliteStreamUser",
    "kafka": "KafkaPythonUser",
    "kafka-confluent": "KafkaConfluentUser",
    "kafka-managed": "KafkaManagedUser",
    "gateway-confluent": "GatewayConfluentUser",
    "gateway-kafka-python": "GatewayKafkaPythonUser",
}


def users_needed(workload: str) -> int:
    """Return how many users (= processes) ``workload`` needs: its producers + consumers.

    Raises WorkloadError for a bad workload file.
    """
    w = load_workload(workload)
    consumers = w.topics * w.subscriptions_per_topic * w.consumer_per_subscription
    return consumers + w.topics * w.producers_per_topic


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now (for the Locust master)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def locust_command(
    backend: str,
    workload: str,
    *,
    run_time: float | None,
    csv_prefix: str | os.PathLike[str] | None,
    headless: bool = True,
    processes: int | None = None,
    max_rate: bool = False,
    profile: str | None = None,
    master_port: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Return the command line for one Locust run of ``workload`` against ``backend``.

    ``processes`` defaults to one per user (``users_needed``); ``run_time`` None leaves
    the run open (web UI). Raises BenchError for an unknown backend.
    """
    if backend not in USER_CLASSES:
        raise BenchError(f"no Locust user for {backend!r}; choose from {', '.join(USER_CLASSES)}")
    users = users_needed(workload)
    cmd = [sys.executable, str(LAUNCHER), "-f", str(LOCUSTFILE), "--workload", workload]
    cmd += ["-u", str(users), "-r", str(users)]
    if headless:
        cmd.append("--headless")
    if run_time is not None:
        cmd += ["-t", f"{run_time:g}s"]
    n = users if processes is None else processes
    if n > 1:
        port = master_port or free_port()
        cmd += ["--processes", str(n), "--master-bind-port", str(port), "--master-port", str(port)]
    if csv_prefix is not None:
        cmd += ["--csv", str(csv_prefix), "--csv-full-history"]
    if max_rate:
        cmd.append("--max-rate")
    if profile:
        cmd += ["--backend-profile", profile]
    return [*cmd, *extra, USER_CLASSES[backend]]


@contextlib.contextmanager
def kafka_for(backend: str, network: NetworkProfile | None = None) -> Iterator[dict[str, str]]:
    """Yield the environment for the Locust processes, with a Kafka when ``backend`` needs one.

    Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set (and no network is emulated), else starts the
    backend's deployment (:mod:`sqlitequeue.bench.kafka.deployments`) over ``network``
    (default loopback), stopped on exit. Raises KafkaError when it cannot start.
    """
    from sqlitequeue.bench.kafka.deployments import DEPLOYMENT_OF, KafkaDeployments
    from sqlitequeue.bench.network.profiles import load_network

    env = dict(os.environ)
    network = network or load_network(None)
    if backend not in DEPLOYMENT_OF or (env.get(BOOTSTRAP_ENV) and not network.emulated):
        yield env
        return
    kafka = KafkaDeployments(network, printer=lambda text: print(text, flush=True))
    try:
        if kafka.start_for([backend]):
            raise KafkaError(f"no Kafka for {backend}: {kafka.unavailable}")
        broker = kafka.broker_for(backend)
        assert broker is not None
        env[BOOTSTRAP_ENV] = broker.bootstrap_servers
        yield env
    finally:
        kafka.stop()


@dataclass
class LocustRun:
    """One finished Locust subprocess: its CSV prefix, exit code and captured output."""

    backend: str
    workload: str
    csv_prefix: Path
    returncode: int
    output: str


def run_locust(
    backend: str,
    workload: str,
    *,
    run_time: float,
    csv_prefix: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    echo: bool = False,
    network: NetworkProfile | None = None,
    **options: object,
) -> LocustRun:
    """Run Locust headless for ``run_time`` seconds, writing ``csv_prefix``_*.csv.

    ``env`` (default: :func:`kafka_for`'s over ``network``) must carry
    ``KAFKA_BOOTSTRAP_SERVERS`` for Kafka backends. Returns the exit code rather than raising
    (1 = failures were recorded or the run was refused; the output says why).
    """
    prefix = Path(csv_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    cmd = locust_command(backend, workload, run_time=run_time, csv_prefix=prefix, **options)  # type: ignore[arg-type]
    limit = timeout if timeout is not None else run_time + 120
    with contextlib.ExitStack() as stack:
        if env is None:
            env = stack.enter_context(kafka_for(backend, network))
        proc = subprocess.run(
            cmd,
            env=env,
            stdout=None if echo else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=limit,
            check=False,
        )
    return LocustRun(backend, workload, prefix, proc.returncode, proc.stdout or "")
