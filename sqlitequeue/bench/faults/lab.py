"""The fault lab's shared parts: scale, per-trial directories, worker processes, results.

A *trial* is one repeat of one experiment case; it returns a :class:`Trial` holding its
``faults.csv`` row, its throughput series around the fault, and its fault events. The
:class:`Lab` owns the scratch directory and the Kafka brokers started for the run.
A :class:`Deployment` is a system made ready for a trial (the backend to open by name, its
topic and group); :func:`producer_config` and :func:`consumer_config` make the configs of
the generic worker roles (:mod:`sqlitequeue.bench.faults.workers`) that drive it.
Storage faults (a full disk, read-only storage) run a worker inside a private mount
namespace (``unshare --mount``, root only) so the mounts are invisible to everything else.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends import BackendSpec, open_backend
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults import workers
from sqlitequeue.bench.faults.ledger import (
    Accounting,
    Event,
    account,
    ids_of,
    rates,
    read_ledger,
)
from sqlitequeue.bench.faults.workers import ConsumerConfig, ProducerConfig, WorkerConfig
from sqlitequeue.bench.network.profiles import NetworkProfile, load_network
from sqlitequeue.bench.processes import log_tail

#: Columns of faults.csv, in order (decide/cost code reads RTO/RPO from them).
FAULT_COLUMNS = (
    "run_id",
    "experiment",
    "backend",
    "durability",
    "repeat",
    "produced",
    "acknowledged",
    "recovered",
    "lost",
    "duplicated",
    "rto_s",
    "rpo_messages",
    "rpo_s",
    "notes",
)
EVENT_COLUMNS = ("experiment", "backend", "durability", "repeat", "event", "t", "at", "detail")
SERIES_COLUMNS = ("experiment", "backend", "durability", "repeat", "metric", "t", "value")
#: First id of a producer started after a fault (keeps generations apart in ledgers).
SECOND_GENERATION = 10_000_000
#: A case's backend label -> the registered backend that drives it, where they differ
#: (results say "kafka" for Apache Kafka and "gateway" for ``sqlitequeue serve``, both
#: driven through confluent-kafka).
SEAM_BACKENDS = {"kafka": "kafka-confluent", "gateway": "kafka-confluent"}


class Unavailable(BenchError):
    """An experiment cannot run here (e.g. it needs root); the message says why."""


@dataclass(frozen=True)
class Scale:
    """How big and how long each trial is (see :data:`QUICK` and :data:`FULL`).

    ``rate`` msg/s in batches of ``batch``; ``before_s``/``after_s`` of workload around the
    fault; ``failure_timeout_s`` is both the SQLite lease and Kafka's session.timeout.ms
    (a consumer's failure-detection time, set equal for a fair comparison; Kafka's floor
    is 6 s by default); ``process_s`` per message in consumers; ``sync_interval_s`` is
    Litestream's; ``litestream_down_s`` how long before a host loss Litestream dies in the
    control experiment; ``disk_size`` the tiny file system of the disk-full experiment.
    """

    rate: float = 200.0
    batch: int = 10
    payload_size: int = 200
    before_s: float = 2.0
    after_s: float = 2.0
    failure_timeout_s: float = 6.0
    process_s: float = 0.002
    sync_interval_s: float = 1.0
    litestream_down_s: float = 2.0
    disk_size: str = "2m"
    disk_payload_size: int = 1000
    disk_rate: float = 1000.0
    bin_s: float = 0.25
    drain_timeout_s: float = 60.0

    def with_(self, **changes: Any) -> Scale:
        """Return a copy with ``changes`` applied."""
        return Scale(**{**asdict(self), **changes})


QUICK = Scale()
FULL = Scale(rate=500.0, before_s=5.0, after_s=5.0, bin_s=0.5)


@dataclass(frozen=True)
class Case:
    """One experiment on one backend (with one durability setting)."""

    experiment: str
    backend: str
    durability: str

    @property
    def label(self) -> str:
        """``experiment/backend[/durability]`` as shown in progress output."""
        return f"{self.experiment}/{self.backend}/{self.durability}"

    @property
    def seam_backend(self) -> str:
        """The registered backend (:data:`~sqlitequeue.bench.backends.BACKENDS`) to drive."""
        return SEAM_BACKENDS.get(self.backend, self.backend)


@dataclass
class Trial:
    """What one trial produced: its faults.csv row, series and events."""

    case: Case
    repeat: int
    row: dict[str, Any]
    series: list[tuple[str, float, float]] = field(default_factory=list)
    events: list[FaultEvent] = field(default_factory=list)

    def fault_row(self) -> dict[str, Any]:
        """Return the faults.csv row (every column of :data:`FAULT_COLUMNS` but run_id)."""
        base = {
            "experiment": self.case.experiment,
            "backend": self.case.backend,
            "durability": self.case.durability,
            "repeat": self.repeat,
        }
        return {c: {**base, **self.row}.get(c) for c in FAULT_COLUMNS if c != "run_id"}


def trial_row(
    acc: Accounting | None,
    *,
    rto_s: float | None,
    rpo_s: float | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Return the measured part of a faults.csv row (``rpo_messages`` = lost).

    ``rpo_s`` None: 0 when nothing was lost, else unknown (empty).
    """
    if acc is None:
        return {"notes": notes}
    if rpo_s is None and acc.lost == 0:
        rpo_s = 0.0
    row: dict[str, Any] = acc.as_row()
    row.update(
        rto_s=None if rto_s is None else round(rto_s, 4),
        rpo_messages=acc.lost,
        rpo_s=None if rpo_s is None else round(rpo_s, 4),
        notes=notes,
    )
    return row


#: A fault_events.csv row: ``(event, seconds after the fault, unix time, detail)``.
FaultEvent = tuple[str, float, float, str]


def fault_events(t_fault: float, *events: tuple[str, float | None, str]) -> list[FaultEvent]:
    """Return the rows of ``(event, seconds after t_fault, detail)``, each with its unix time.

    Seconds None (a recovery never seen) are written as 0.
    """
    return [(name, t or 0.0, t_fault + (t or 0.0), detail) for name, t, detail in events]


def account_sends(produced: Sequence[Event], found: Iterable[int]) -> Accounting:
    """Account for producers' ``S``/``A`` events against the ids ``found`` afterwards."""
    return account(ids_in(produced, "S"), ids_in(produced, "A"), found)


def seconds_to_ack(events: Iterable[Event], since: float) -> float | None:
    """Seconds from ``since`` to the first ``A`` event after it; None if there is none."""
    acks = [e.at for e in events if e.kind == "A" and e.at > since]
    return min(acks) - since if acks else None


def unavailable_trial(case: Case, repeat: int, reason: str) -> Trial:
    """Return the row of a trial that could not run here (numbers left empty)."""
    return Trial(case, repeat, {"notes": f"unavailable: {reason}"})


def throughput(
    producer_events: Sequence[Event], consumer_events: Sequence[Event], origin: float, bin_s: float
) -> list[tuple[str, float, float]]:
    """Return ``(metric, t, value)``: publish_rate from ``A``, consume_rate from ``P`` events."""
    series: list[tuple[str, float, float]] = []
    for metric, events, kind in (
        ("publish_rate", producer_events, "A"),
        ("consume_rate", consumer_events, "P"),
    ):
        times = [e.at for e in events if e.kind == kind for _ in e.ids]
        series.extend((metric, t, v) for t, v in rates(times, origin, bin_s))
    return series


def ids_in(events: Iterable[Event], kind: str) -> list[int]:
    """Every id of every ``kind`` event, repeats kept."""
    return [i for _, i in ids_of(events, kind)]


# -- deployments and worker configs ------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """A system made ready for a trial's workers.

    ``spec`` names the registered backend and its settings; ``topic`` and ``group`` are
    what producers send to and consumers read as; ``producer_waits``: producers flush
    after every batch (an application waiting for its write) rather than pipelining;
    ``replays_history`` is the backend's flag (a log keeps what was consumed, a queue does
    not).
    """

    spec: BackendSpec
    topic: str
    group: str
    producer_waits: bool
    replays_history: bool


def deploy(spec: BackendSpec, topic: str, group: str, *, producer_waits: bool) -> Deployment:
    """Open the backend of ``spec`` and subscribe ``group`` where the backend needs it.

    A backend that feeds groups at publish time gets the group subscribed now, so
    producers started before the consumers lose nothing. Raises BenchError (BackendError)
    if the backend cannot be opened.
    """
    with open_backend(spec) as backend:
        workers.subscribe_groups(backend, topic, [group])
        replays = backend.replays_history
    return Deployment(spec, topic, group, producer_waits, replays)


def producer_config(
    lab: Lab, d: Path, target: Deployment, name: str, **changes: Any
) -> ProducerConfig:
    """Return the config of a producer of ``target`` at the lab's scale, ledger ``d/name``.

    ``changes`` override any :class:`~sqlitequeue.bench.faults.workers.ProducerConfig` field.
    """
    s = lab.scale
    config = ProducerConfig(
        **_role_fields(d, target, name),
        groups=(target.group,),
        wait_each_batch=target.producer_waits,
        rate=s.rate,
        batch=s.batch,
        payload_size=s.payload_size,
    )
    return replace(config, **changes)


def consumer_config(lab: Lab, d: Path, target: Deployment, name: str) -> ConsumerConfig:
    """Return the config of a consumer of ``target``'s group, ledger ``d/name.ledger``."""
    s = lab.scale
    fields = _role_fields(d, target, name)
    return ConsumerConfig(**fields, group=target.group, batch=s.batch, process_s=s.process_s)


def _role_fields(d: Path, target: Deployment, name: str) -> dict[str, Any]:
    ledger, stop = str(d / f"{name}.ledger"), str(d / "stop")
    return {"backend": target.spec, "topic": target.topic, "ledger": ledger, "stop": stop}


# -- processes ---------------------------------------------------------------------------


class Worker:
    """One worker process (see :mod:`sqlitequeue.bench.faults.workers`) and its ledger.

    ``argv`` replaces the plain command (e.g. to run it inside a private mount namespace).
    """

    def __init__(self, config: WorkerConfig, log: Path, argv: list[str] | None = None) -> None:
        self.role = config.role
        self.config = config
        self.ledger = Path(config.ledger)
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                argv or workers.command(config),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def events(self) -> list[Event]:
        """Return the ledger's events so far."""
        return read_ledger(self.ledger)

    def kill(self) -> float:
        """SIGKILL the process; return the unix time of the kill."""
        at = time.time()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        return at

    def pause(self) -> float:
        """SIGSTOP the process (its ledger then stands still); return the unix time."""
        at = time.time()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)
        return at

    def resume(self) -> None:
        """SIGCONT a process stopped by :meth:`pause`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def wait(self, timeout: float) -> int:
        """Wait for a normal exit; on timeout SIGKILL it and raise BenchError with its log."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(
                f"{self.role} did not finish within {timeout:g} s:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 20) -> str:
        """Return the end of the worker's stdout/stderr."""
        return log_tail(self.log, lines)

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process.poll() is None


def events_of(workers: Iterable[Worker]) -> list[Event]:
    """The events of every worker's ledger, one after the other."""
    return [e for w in workers for e in w.events()]


def restarted_producer(lab: Lab, d: Path, target: Deployment, name: str) -> Worker:
    """Run a producer started after the fault to its end and return it.

    It sends ``rate * after_s`` messages with ids from :data:`SECOND_GENERATION`, ledger
    ``d/name.ledger``; raises BenchError if it does not finish in time.
    """
    s = lab.scale
    config = producer_config(
        lab, d, target, name, first_id=SECOND_GENERATION, count=int(s.rate * s.after_s)
    )
    worker = Worker(config, d / f"{name}.log")
    worker.wait(s.drain_timeout_s + s.after_s * 2)
    return worker


def finish(workers: Iterable[Worker], d: Path, timeout: float) -> None:
    """Touch ``d/stop-producer`` and ``d/stop``, then wait for every worker still running."""
    (d / "stop-producer").touch()
    (d / "stop").touch()
    for w in workers:
        if w.running:
            w.wait(timeout)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.05
) -> float:
    """Poll ``predicate`` until true; return the unix time it became true.

    Raises BenchError naming ``what`` after ``timeout`` seconds.
    """
    at = wait_for(predicate, timeout, poll)
    if at is None:
        raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
    return at


def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.05) -> float | None:
    """Poll ``predicate`` until true; return the unix time it did, or None after ``timeout``.

    For outcomes that are measurements (a message never redelivered is a loss to count,
    not a harness failure).
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.time()
        if time.monotonic() > deadline:
            return None
        time.sleep(poll)


# -- storage faults ----------------------------------------------------------------------


def mount_namespace_problem() -> str | None:
    """Return None when private mounts work here (root + ``unshare``), else the reason."""
    if os.geteuid() != 0:
        return "needs root to mount a private tmpfs / read-only bind mount (unshare --mount)"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "needs the util-linux `unshare` and `mount` commands"
    probe = subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"`unshare --mount` is not permitted here ({probe.stderr.strip()})"
    return None


def on_small_file_system(directory: Path, size: str, command: Sequence[str]) -> list[str]:
    """Return argv running ``command`` with a fresh tmpfs of ``size`` on ``directory``.

    The tmpfs lives in a private mount namespace and vanishes with the process; the
    command must copy out whatever should survive.
    """
    d = shlex.quote(str(directory))
    script = f"mount -t tmpfs -o size={shlex.quote(size)} tmpfs {d} && {shlex.join(command)}"
    return ["unshare", "--mount", "bash", "-c", script]


def on_read_only_directory(directory: Path, command: Sequence[str]) -> list[str]:
    """Return argv running ``command`` while ``directory`` is a read-only bind mount."""
    d = shlex.quote(str(directory))
    script = f"mount --bind -o ro {d} {d} && exec {shlex.join(command)}"
    return ["unshare", "--mount", "bash", "-c", script]


# -- the lab -----------------------------------------------------------------------------


class Lab:
    """Scratch space, scale and Kafka for a set of trials; ``close()`` stops what it started.

    ``kafka_bootstrap`` names a broker for the experiments that do not kill brokers;
    ``kafka_broker`` a single broker that may be killed and restarted; ``kafka_cluster`` a
    3-broker cluster (RF=3, min.insync.replicas=2). Any not given is started on first use
    (a local KRaft broker from Apache Kafka's jars).
    """

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        scale: Scale = QUICK,
        *,
        kafka_bootstrap: str | None = None,
        kafka_broker: Any = None,
        kafka_cluster: Any = None,
        log: Callable[[str], None] | None = None,
        network: NetworkProfile | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.network = network or load_network(None)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.scale = scale
        self._bootstrap = kafka_bootstrap
        self._broker = kafka_broker
        self._cluster = kafka_cluster
        self._owned: list[Any] = []
        self.log = log or (lambda message: None)
        self.descriptions: dict[str, Any] = {}

    def trial_dir(self, case: Case, repeat: int) -> Path:
        """Return a fresh directory for one trial."""
        path = self.work_dir / f"{case.label.replace('/', '-')}-r{repeat}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def bootstrap(self) -> str:
        """Bootstrap servers of a broker for non-destructive Kafka experiments."""
        if self._bootstrap is None:
            self._bootstrap = str(self.killable_broker().bootstrap_servers)
        return self._bootstrap

    def killable_broker(self) -> Any:
        """A single started broker that experiments may SIGKILL and restart."""
        if self._broker is None:
            from sqlitequeue.bench.kafka.broker import KafkaBroker, LocalKafka

            self.log(f"starting a local Kafka broker (network {self.network.name}) ...")
            mode = "local" if self.network.emulated else None
            broker = KafkaBroker.auto(mode, network=self.network)
            if not isinstance(broker, LocalKafka):
                raise Unavailable(
                    f"needs a local broker it may kill (Kafka mode is {broker.mode!r})"
                )
            self._broker = self._own(broker.start())
            self.descriptions["kafka"] = broker.describe()
        return self._broker

    def cluster(self) -> Any:
        """A started managed-shaped cluster: 3 brokers across emulated zones, RF 3, min ISR 2.

        Over the lab's network, or cross-az when it names none (see
        :func:`sqlitequeue.bench.kafka.deployments.network_for`).
        """
        if self._cluster is None:
            from sqlitequeue.bench.kafka.broker import KafkaCluster
            from sqlitequeue.bench.kafka.deployments import network_for

            network = network_for("managed", self.network)
            self.log(f"starting a local 3-broker Kafka cluster (network {network.name}) ...")
            self._cluster = self._own(KafkaCluster(brokers=3, network=network).start())
            self.descriptions["kafka_cluster"] = self._cluster.describe()
        return self._cluster

    def _own(self, broker: Any) -> Any:
        self._owned.append(broker)
        return broker

    def close(self) -> None:
        """Stop every broker this lab started."""
        for broker in reversed(self._owned):
            try:
                broker.stop()
            except Exception as exc:  # never hide the results because a broker lingers
                print(f"warning: could not stop {broker!r}: {exc}", file=sys.stderr)
        self._owned.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
