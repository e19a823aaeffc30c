"""Fault trials against the SQLite queue (with the real Litestream for host loss).

Each function runs one repeat of one experiment and returns a :class:`Trial`; accounting
comes from the workers' ledgers and from the ids found in the file afterwards. The workers
drive the ``sqlite-queue`` backend (:mod:`sqlitequeue.bench.backends.sqlite_queue`): one
file, ``<data dir>/sqlite-queue.db``, where the lab's group has its own queue
(``faults/lab``), subscribed before any producer starts. The consumer's lease is the
backend's ``lease_s`` setting, the durability its ``synchronous``.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path

from sqlitequeue.bench.backends import BackendSpec
from sqlitequeue.bench.backends.sqlite_queue import SqliteQueueBackend
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults import kill_trials, litestream
from sqlitequeue.bench.faults.kill_trials import System
from sqlitequeue.bench.faults.lab import (
    SECOND_GENERATION,
    Case,
    Deployment,
    FaultEvent,
    Lab,
    Scale,
    Trial,
    Unavailable,
    Worker,
    account_sends,
    deploy,
    fault_events,
    ids_in,
    mount_namespace_problem,
    on_read_only_directory,
    on_small_file_system,
    producer_config,
    restarted_producer,
    seconds_to_ack,
    throughput,
    trial_row,
    wait_until,
)
from sqlitequeue.bench.faults.ledger import Accounting, first_time
from sqlitequeue.bench.faults.workers import OnError, command, id_of
from sqlitequeue.queue import Queue

BACKEND = "sqlite-queue"
#: The topic the lab's producers send to and the group its consumers read as; the
#: backend keeps the group's messages in the queue ``<TOPIC>/<GROUP>``.
TOPIC, GROUP = "faults", "lab"


def backend_spec(data_dir: Path, durability: str = "normal", lease_s: float = 30.0) -> BackendSpec:
    """Return the spec of a ``sqlite-queue`` in ``data_dir`` (durability normal/full)."""
    settings = {"synchronous": durability.upper(), "lease_s": lease_s}
    return BackendSpec(BACKEND, settings=settings, data_dir=str(data_dir))


def planned(lab: Lab, case: Case, data_dir: Path) -> Deployment:
    """The queue in ``data_dir`` as the workers see it (nothing created yet)."""
    spec = backend_spec(data_dir, case.durability, lab.scale.failure_timeout_s)
    return Deployment(spec, TOPIC, GROUP, producer_waits=True, replays_history=False)


def deployment(lab: Lab, case: Case, data_dir: Path) -> Deployment:
    """Create the queue file in ``data_dir`` with the lab's group subscribed (schema, WAL)."""
    return deploy(planned(lab, case, data_dir).spec, TOPIC, GROUP, producer_waits=True)


def queue_file(data_dir: Path) -> Path:
    """The backend's file in ``data_dir``."""
    return SqliteQueueBackend(backend_spec(data_dir)).path


def open_queue(data_dir: Path, durability: str = "normal") -> Queue:
    """Open the lab group's queue in ``data_dir`` as the backend does."""
    return SqliteQueueBackend(backend_spec(data_dir, durability)).queue(TOPIC, GROUP)


def stored_ids(data_dir: Path, durability: str = "normal") -> list[int]:
    """Return the ids of every message stored for the lab's group in ``data_dir``.

    Pending or dead. Reads without claiming (``peek``), so the file is left as it was.
    Messages still leased by a dead consumer show up once their lease has ended.
    """
    with open_queue(data_dir, durability) as queue:
        pending = queue.peek(limit=10**9)
        dead = queue.dead_letters(limit=10**9)
    return [id_of(m.payload) for m in [*pending, *dead]]


class SqliteQueue(System):
    """The SQLite queue in the kill trials: a lease decides the consumer's RTO."""

    unit = "messages"

    def deploy(self, lab: Lab, case: Case, d: Path, partitions: int) -> Deployment:
        """Create the queue file in ``d`` (a queue has no partitions)."""
        return deployment(lab, case, d)

    def stored_ids(self, target: Deployment) -> list[int]:
        """The ids still in the group's queue."""
        return stored_ids(Path(target.spec.data_dir), str(target.spec.settings["synchronous"]))

    def recovery_window(self, scale: Scale) -> float:
        """The lease must run out first: three leases, plus the drain time."""
        return scale.failure_timeout_s * 3 + scale.drain_timeout_s

    def consumer_kill_notes(self, victim: Worker, held: set[int], acc: Accounting) -> str:
        """The lease, what the victim held, what was stored but never acknowledged."""
        lease = float(victim.config.backend.settings["lease_s"])
        return (
            f"lease {lease:g} s; victim held {len(held)} messages; "
            f"{acc.extra} stored but unacknowledged"
        )


SYSTEM = SqliteQueue()


def consumer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """Two consumers share the queue; one is SIGKILLed while it holds claimed messages.

    RTO: from the kill until every message it held was processed by the survivor (the
    lease must run out first). Duplicates: messages the victim processed but never acked.
    """
    return kill_trials.consumer_kill(lab, case, repeat, SYSTEM)


def producer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """The producer is SIGKILLed mid-stream and restarted; is everything acknowledged there?

    RTO: from the kill until the restarted producer's first acknowledged message.
    """
    return kill_trials.producer_kill(lab, case, repeat, SYSTEM)


# -- host loss with Litestream -----------------------------------------------------------


def host_loss(lab: Lab, case: Case, repeat: int, litestream_down: bool = False) -> Trial:
    """The host dies while Litestream replicates: producer and Litestream SIGKILLed, the
    database, -wal, -shm and Litestream's local state deleted; then restored from the replica.

    RTO = ``litestream restore`` + reopening the queue. RPO = acknowledged messages missing
    after the restore, and the window they span (fault time minus the earliest missing
    message's acknowledgement). With ``litestream_down`` Litestream dies
    ``litestream_down_s`` before the host (the control that proves loss is detected).
    """
    s, d = lab.scale, lab.trial_dir(case, repeat)
    data = d / "data"
    data.mkdir()
    replica = litestream.FileReplica(d / "replica")
    target = deployment(lab, case, data)
    db = queue_file(data)
    rep = litestream.Replicator(
        db, replica, sync_interval=s.sync_interval_s, log_path=d / "litestream.log"
    ).start()
    lab.descriptions["litestream"] = rep.describe()
    events: list[FaultEvent] = []
    try:
        rep.wait_until_replicated()
        producer = Worker(producer_config(lab, d, target, "producer1"), d / "producer1.log")
        # the clock starts at the first acknowledged write, however long the worker took to start
        wait_until(lambda: bool(ids_in(producer.events(), "A")), 60, "the producer's first ack")
        if litestream_down:
            time.sleep(max(0.0, s.before_s - s.litestream_down_s))
            down_at = time.time()
            rep.kill()
            time.sleep(min(s.before_s, s.litestream_down_s))
        else:
            time.sleep(s.before_s)
        t_fault = time.time()
        if rep.pid is not None:  # the host dies: Litestream and the application at once
            os.kill(rep.pid, signal.SIGKILL)
        producer.kill()
    finally:
        rep.kill()
        rep.close()
    if litestream_down:
        events.append(("litestream SIGKILL", down_at - t_fault, down_at, "replication stops"))
    events.append(("host lost", 0.0, t_fault, "producer + litestream SIGKILL; files deleted"))
    litestream.delete_local_database(db)
    started = time.monotonic()
    restore_s = rep.restore(db)
    with open_queue(data, case.durability) as reopened:
        reopened.stats()
    rto = time.monotonic() - started
    t_up = time.time()
    events.append(("restored and reopened", t_up - t_fault, t_up, f"restore {restore_s:.3f} s"))
    second = restarted_producer(lab, d, target, "producer2")
    produced = producer.events() + second.events()
    found = stored_ids(data, case.durability)
    acc = account_sends(produced, found)
    acked_at = first_time(produced, "A")
    rpo_s = t_fault - min(acked_at[i] for i in acc.lost_ids) if acc.lost_ids else 0.0
    notes = (
        f"restore {restore_s:.3f} s + reopen {rto - restore_s:.3f} s; "
        f"sync-interval {s.sync_interval_s:g} s; {rep.version}"
        + (
            f"; litestream killed {s.litestream_down_s:g} s before the host"
            if litestream_down
            else ""
        )
    )
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=rpo_s, notes=notes),
        throughput(produced, [], t_fault, s.bin_s),
        events,
    )


def host_loss_litestream_down(lab: Lab, case: Case, repeat: int) -> Trial:
    """Host loss after Litestream already died: the lab must report the loss."""
    return host_loss(lab, case, repeat, litestream_down=True)


# -- storage faults ----------------------------------------------------------------------


def disk_full(lab: Lab, case: Case, repeat: int) -> Trial:
    """The queue's file system fills up mid-stream (a tiny private tmpfs).

    The producer must get a QueueError (the failed delivery report, recorded with its
    message); then space is freed (a ballast file deleted) and the failed messages sent
    again. RTO: from the first error until the first acknowledged write after it. The
    files are copied out and every acknowledged id looked for. The tmpfs exists only in
    the producer's mount namespace, so the producer subscribes the group itself.
    """
    problem = mount_namespace_problem()
    if problem:
        raise Unavailable(problem)
    s, d = lab.scale, lab.trial_dir(case, repeat)
    fs, saved = d / "fs", d / "saved"
    fs.mkdir()
    config = producer_config(
        lab,
        d,
        planned(lab, case, fs),
        "producer",
        rate=s.disk_rate,
        payload_size=s.disk_payload_size,
        on_error=OnError.RETRY,
        retry_s=0.05,
        ballast=str(fs / "ballast"),
        stop_after_recovery=True,
        copy_out=str(saved),
    )
    ballast = shlex.quote(str(fs / "ballast"))
    script = f"head -c 262144 /dev/zero > {ballast} && exec {shlex.join(command(config))}"
    argv = on_small_file_system(fs, s.disk_size, ["bash", "-c", script])
    worker = Worker(config, d / "producer.log", argv=argv)
    worker.wait(s.drain_timeout_s * 2)
    events = worker.events()
    errors = [e for e in events if e.kind == "E"]
    if not errors:
        raise _no_error("disk-full", worker)
    t_fault = errors[0].at
    found = stored_ids(saved, case.durability) if queue_file(saved).exists() else []
    acc = account_sends(events, found)
    rto = seconds_to_ack(events, t_fault)
    notes = (
        f"producer got {errors[0].error} ({len(errors)} failed attempts, retried every "
        f"{config.retry_s:g} s); tmpfs {s.disk_size}"
    )
    rows = fault_events(
        t_fault,
        ("disk full", 0.0, errors[0].error[:200]),
        ("space freed, write acknowledged", rto, ""),
    )
    series = throughput(events, [], t_fault, s.bin_s)
    return Trial(case, repeat, trial_row(acc, rto_s=rto, notes=notes), series, rows)


def _no_error(experiment: str, worker: Worker) -> Exception:
    return BenchError(
        f"{experiment}: the producer never recorded a QueueError; its output:\n{worker.log_tail()}"
    )


def read_only(lab: Lab, case: Case, repeat: int) -> Trial:
    """The storage comes back read-only (a read-only bind mount) and the producer restarts.

    The producer must fail with a clear QueueError; once the storage is writable again a
    restarted producer acknowledges writes (RTO: from writable again to the first
    acknowledgement) and every message acknowledged before the fault is still there.
    Linux refuses to remount a file system read-only while the queue holds it open for
    writing (EBUSY), so the fault hits at (re)start, as after an fsck remounted it.
    """
    problem = mount_namespace_problem()
    if problem:
        raise Unavailable(problem)
    s, d = lab.scale, lab.trial_dir(case, repeat)
    data = d / "data"
    data.mkdir()
    target = deployment(lab, case, data)
    config = producer_config(lab, d, target, "producer1", count=int(s.rate * s.before_s))
    first = Worker(config, d / "producer1.log")
    first.wait(s.drain_timeout_s + s.before_s * 2)
    config = producer_config(
        lab, d, target, "producer2", first_id=SECOND_GENERATION // 2, count=s.batch
    )
    blocked = Worker(
        config, d / "producer2.log", argv=on_read_only_directory(data, command(config))
    )
    blocked.wait(s.drain_timeout_s)
    writable_at = time.time()
    errors = [e for e in blocked.events() if e.kind == "E"]
    if not errors:
        raise _no_error("read-only", blocked)
    t_fault = errors[0].at
    third = restarted_producer(lab, d, target, "producer3")
    produced = first.events() + blocked.events() + third.events()
    acc = account_sends(produced, stored_ids(data, case.durability))
    rto = seconds_to_ack(third.events(), writable_at)
    notes = f"producer got {errors[0].error}; rto from storage writable to first ack"
    events = fault_events(
        t_fault,
        ("storage read-only", 0.0, errors[0].error[:200]),
        ("storage writable", writable_at - t_fault, ""),
    )
    series = throughput(produced, [], t_fault, s.bin_s)
    return Trial(case, repeat, trial_row(acc, rto_s=rto, notes=notes), series, events)
