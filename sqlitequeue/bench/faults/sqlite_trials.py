"""Fault trials against the SQLite queue (with the real Litestream for host loss).

Each function runs one repeat of one experiment and returns a :class:`Trial`; accounting
comes from the workers' ledgers and from the ids found in the file afterwards.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path
from typing import Any

from sqlitequeue.bench.faults import litestream
from sqlitequeue.bench.faults.lab import (
    Case,
    Lab,
    Trial,
    Unavailable,
    Worker,
    mount_namespace_problem,
    on_read_only_directory,
    on_small_file_system,
    throughput,
    trial_row,
    wait_for,
    wait_until,
)
from sqlitequeue.bench.faults.ledger import Event, account, first_time, ids_of
from sqlitequeue.bench.faults.workers import command, id_of

BACKEND = "sqlite-queue"
#: First id of a producer started after a fault (keeps generations apart in ledgers).
SECOND_GENERATION = 10_000_000


def stored_ids(db: Path, durability: str = "normal") -> list[int]:
    """Return the ids of every message stored in the queue at ``db`` (pending or dead).

    Reads without claiming (``peek``), so the file is left as it was. Messages still
    leased by a dead consumer show up once their lease has ended.
    """
    from sqlitequeue.queue import Queue

    with Queue(db, durability=durability) as queue:
        pending = queue.peek(limit=10**9)
        dead = queue.dead_letters(limit=10**9)
    return [id_of(m.payload) for m in [*pending, *dead]]


def create_queue(db: Path, durability: str) -> None:
    """Create the queue file (schema, WAL) so Litestream has a database to follow."""
    from sqlitequeue.queue import Queue

    Queue(db, durability=durability).close()


def producer_cfg(
    lab: Lab, d: Path, name: str, db: Path, durability: str, **extra: Any
) -> dict[str, Any]:
    """Return a sqlite-producer config writing ``d/name.ledger``."""
    s = lab.scale
    return {
        "db": str(db),
        "durability": durability,
        "rate": s.rate,
        "batch": s.batch,
        "payload_size": s.payload_size,
        "ledger": str(d / f"{name}.ledger"),
        "stop": str(d / "stop"),
        **extra,
    }


def _all(workers: list[Worker]) -> list[Event]:
    return [e for w in workers for e in w.events()]


def _ids(events: list[Event], kind: str) -> list[int]:
    return [i for _, i in ids_of(events, kind)]


# -- consumer SIGKILL --------------------------------------------------------------------


def consumer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """Two consumers share the queue; one is SIGKILLed while it holds claimed messages.

    RTO: from the kill until every message it held was processed by the survivor (the
    lease must run out first). Duplicates: messages the victim processed but never acked.
    """
    s, d = lab.scale, lab.trial_dir(case, repeat)
    db = d / "queue.db"
    create_queue(db, case.durability)
    consumers = [
        Worker(
            "sqlite-consumer",
            {
                "db": str(db),
                "lease": s.failure_timeout_s,
                "batch": s.batch,
                "process_s": s.process_s,
                "ledger": str(d / f"consumer{i}.ledger"),
                "stop": str(d / "stop"),
            },
            d / f"consumer{i}.log",
        )
        for i in (1, 2)
    ]
    producer = Worker(
        "sqlite-producer",
        producer_cfg(lab, d, "producer", db, case.durability, stop=str(d / "stop-producer")),
        d / "producer.log",
    )
    victim, survivor = consumers
    try:
        time.sleep(s.before_s)
        wait_until(lambda: bool(_held(victim.events())), 30, "consumer 1 to hold messages")
        t_fault = victim.kill()
        held = _held(victim.events())
        time.sleep(s.after_s)
        (d / "stop-producer").touch()
        producer.wait(s.drain_timeout_s)
        acked = set(_ids(producer.events(), "A"))
        t_recovered = wait_for(
            lambda: held <= set(_ids(survivor.events(), "P")),
            s.failure_timeout_s * 3 + s.drain_timeout_s,
        )
        wait_for(lambda: acked <= set(_ids(_all(consumers), "P")), s.drain_timeout_s)
    finally:
        (d / "stop-producer").touch()
        (d / "stop").touch()
        for w in (producer, *consumers):
            if w.running:
                w.wait(30)
    leftovers = stored_ids(db, case.durability)
    consumed = _all(consumers)
    processed = _ids(consumed, "P")
    acc = account(_ids(producer.events(), "S"), acked, processed + leftovers, processed)
    first_redelivery = first_time([e for e in survivor.events() if e.at > t_fault], "P")
    redelivered = [first_redelivery[i] for i in held if i in first_redelivery]
    done_at = max(redelivered) if redelivered and len(redelivered) == len(held) else t_recovered
    rto = None if done_at is None else done_at - t_fault
    notes = (
        f"lease {s.failure_timeout_s:g} s; victim held {len(held)} messages; "
        f"{acc.extra} stored but unacknowledged"
    )
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(producer.events(), consumed, t_fault, s.bin_s),
        [
            ("consumer SIGKILL", 0.0, t_fault, f"victim held {len(held)} messages"),
            ("held messages redelivered", rto or 0.0, t_fault + (rto or 0.0), ""),
        ],
    )


def _held(events: list[Event]) -> set[int]:
    """Ids a consumer received but had not acknowledged."""
    return set(_ids(events, "R")) - set(_ids(events, "C"))


# -- producer SIGKILL --------------------------------------------------------------------


def producer_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """The producer is SIGKILLed mid-stream and restarted; is everything acknowledged there?

    RTO: from the kill until the restarted producer's first acknowledged message.
    """
    s, d = lab.scale, lab.trial_dir(case, repeat)
    db = d / "queue.db"
    create_queue(db, case.durability)
    first = Worker(
        "sqlite-producer", producer_cfg(lab, d, "producer1", db, case.durability), d / "p1.log"
    )
    time.sleep(s.before_s)
    t_fault = first.kill()
    second = Worker(
        "sqlite-producer",
        producer_cfg(
            lab,
            d,
            "producer2",
            db,
            case.durability,
            first_id=SECOND_GENERATION,
            count=int(s.rate * s.after_s),
        ),
        d / "p2.log",
    )
    second.wait(s.drain_timeout_s + s.after_s * 2)
    produced = first.events() + second.events()
    found = stored_ids(db, case.durability)
    acc = account(_ids(produced, "S"), _ids(produced, "A"), found)
    acks_after = [e.at for e in second.events() if e.kind == "A"]
    rto = min(acks_after) - t_fault if acks_after else None
    notes = f"{acc.extra} stored but unacknowledged (in flight at the kill)"
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(produced, [], t_fault, s.bin_s),
        [
            ("producer SIGKILL", 0.0, t_fault, ""),
            ("restarted producer acknowledged", rto or 0.0, t_fault + (rto or 0.0), ""),
        ],
    )


# -- host loss with Litestream -----------------------------------------------------------


def host_loss(lab: Lab, case: Case, repeat: int, litestream_down: bool = False) -> Trial:
    """The host dies while Litestream replicates: producer and Litestream SIGKILLed, the
    database, -wal, -shm and Litestream's local state deleted; then restored from the replica.

    RTO = ``litestream restore`` + reopening the queue. RPO = acknowledged messages missing
    after the restore, and the window they span (fault time minus the earliest missing
    message's acknowledgement). With ``litestream_down`` Litestream dies
    ``litestream_down_s`` before the host (the control that proves loss is detected).
    """
    from sqlitequeue.queue import Queue

    s, d = lab.scale, lab.trial_dir(case, repeat)
    db = d / "data" / "queue.db"
    db.parent.mkdir()
    replica = litestream.FileReplica(d / "replica")
    create_queue(db, case.durability)
    rep = litestream.Replicator(
        db, replica, sync_interval=s.sync_interval_s, log_path=d / "litestream.log"
    ).start()
    lab.descriptions["litestream"] = rep.describe()
    events: list[tuple[str, float, float, str]] = []
    try:
        rep.wait_until_replicated()
        producer = Worker(
            "sqlite-producer", producer_cfg(lab, d, "producer1", db, case.durability), d / "p1.log"
        )
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
    with Queue(db, durability=case.durability) as queue:
        queue.stats()
    rto = time.monotonic() - started
    t_up = time.time()
    events.append(("restored and reopened", t_up - t_fault, t_up, f"restore {restore_s:.3f} s"))
    second = Worker(
        "sqlite-producer",
        producer_cfg(
            lab,
            d,
            "producer2",
            db,
            case.durability,
            first_id=SECOND_GENERATION,
            count=int(s.rate * s.after_s),
        ),
        d / "p2.log",
    )
    second.wait(s.drain_timeout_s + s.after_s * 2)
    produced = producer.events() + second.events()
    found = stored_ids(db, case.durability)
    acc = account(_ids(produced, "S"), _ids(produced, "A"), found)
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

    The producer must get a QueueError (recorded with its message); then space is freed
    (a ballast file deleted) and the same batch retried. RTO: from the first error until
    the first acknowledged write after it. The files are copied out and every
    acknowledged id looked for.
    """
    problem = mount_namespace_problem()
    if problem:
        raise Unavailable(problem)
    s, d = lab.scale, lab.trial_dir(case, repeat)
    fs, saved = d / "fs", d / "saved"
    fs.mkdir()
    cfg = producer_cfg(
        lab,
        d,
        "producer",
        fs / "queue.db",
        case.durability,
        rate=s.disk_rate,
        payload_size=s.disk_payload_size,
        on_error="retry",
        retry_s=0.05,
        ballast=str(fs / "ballast"),
        stop_after_recovery=True,
        copy_out=str(saved),
    )
    ballast = shlex.quote(str(fs / "ballast"))
    script = f"head -c 262144 /dev/zero > {ballast} && exec {shlex.join(_worker(cfg))}"
    argv = on_small_file_system(fs, s.disk_size, ["bash", "-c", script])
    worker = Worker("sqlite-producer", cfg, d / "producer.log", argv=argv)
    worker.wait(s.drain_timeout_s * 2)
    events = worker.events()
    errors = [e for e in events if e.kind == "E"]
    if not errors:
        raise _no_error("disk-full", worker)
    t_fault = errors[0].at
    found = stored_ids(saved / "queue.db", case.durability) if (saved / "queue.db").exists() else []
    acc = account(_ids(events, "S"), _ids(events, "A"), found)
    after = [e.at for e in events if e.kind == "A" and e.at > t_fault]
    rto = min(after) - t_fault if after else None
    notes = (
        f"producer got {errors[0].error} ({len(errors)} failed attempts, retried every "
        f"{cfg['retry_s']:g} s); tmpfs {s.disk_size}"
    )
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(events, [], t_fault, s.bin_s),
        [
            ("disk full", 0.0, t_fault, errors[0].error[:200]),
            ("space freed, write acknowledged", rto or 0.0, t_fault + (rto or 0.0), ""),
        ],
    )


def _worker(cfg: dict[str, Any]) -> list[str]:
    return command("sqlite-producer", cfg)


def _no_error(experiment: str, worker: Worker) -> Exception:
    from sqlitequeue.bench.errors import BenchError

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
    db = data / "queue.db"
    create_queue(db, case.durability)
    first = Worker(
        "sqlite-producer",
        producer_cfg(lab, d, "producer1", db, case.durability, count=int(s.rate * s.before_s)),
        d / "p1.log",
    )
    first.wait(s.drain_timeout_s + s.before_s * 2)
    cfg = producer_cfg(
        lab, d, "producer2", db, case.durability, first_id=SECOND_GENERATION // 2, count=s.batch
    )
    blocked = Worker(
        "sqlite-producer",
        cfg,
        d / "p2.log",
        argv=on_read_only_directory(data, command("sqlite-producer", cfg)),
    )
    blocked.wait(s.drain_timeout_s)
    writable_at = time.time()
    errors = [e for e in blocked.events() if e.kind == "E"]
    if not errors:
        raise _no_error("read-only", blocked)
    t_fault = errors[0].at
    third = Worker(
        "sqlite-producer",
        producer_cfg(
            lab,
            d,
            "producer3",
            db,
            case.durability,
            first_id=SECOND_GENERATION,
            count=int(s.rate * s.after_s),
        ),
        d / "p3.log",
    )
    third.wait(s.drain_timeout_s + s.after_s * 2)
    produced = first.events() + blocked.events() + third.events()
    acc = account(_ids(produced, "S"), _ids(produced, "A"), stored_ids(db, case.durability))
    after = [e.at for e in third.events() if e.kind == "A"]
    rto = min(after) - writable_at if after else None
    notes = f"producer got {errors[0].error}; rto from storage writable to first ack"
    return Trial(
        case,
        repeat,
        trial_row(acc, rto_s=rto, rpo_s=0.0 if acc.lost == 0 else None, notes=notes),
        throughput(produced, [], t_fault, s.bin_s),
        [
            ("storage read-only", 0.0, t_fault, errors[0].error[:200]),
            ("storage writable", writable_at - t_fault, writable_at, ""),
        ],
    )
