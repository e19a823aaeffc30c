"""Producer and consumer processes for the fault experiments (run, then SIGKILLed, for real).

Each worker is its own process started by :mod:`sqlitequeue.bench.faults.experiments`::

    python -m sqlitequeue.bench.faults.workers ROLE CONFIG_JSON

and records what happens in a ledger (:mod:`sqlitequeue.bench.faults.ledger`) right after
it happens: ``S`` before a send, ``A`` once the store confirmed it, ``R``/``P``/``C`` when
a consumer receives, processes and acknowledges. Message ids travel inside the payload (the
first 12 bytes, ASCII), so every count is computed from ids. A worker stops when the file
named ``stop`` in its config exists (or when killed).

Roles: ``sqlite-producer``, ``sqlite-consumer``, ``kafka-producer``, ``kafka-consumer``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlitequeue.bench.faults.ledger import LedgerWriter

ID_BYTES = 12


def payload_for(message_id: int, size: int) -> bytes:
    """Return a payload of ``size`` bytes (at least 12) carrying ``message_id``."""
    head = f"{message_id:>{ID_BYTES}d}".encode()
    return head + b"x" * max(0, size - ID_BYTES)


def id_of(payload: bytes | None) -> int:
    """Return the message id carried by ``payload``; raises ValueError if it has none."""
    if payload is None:
        raise ValueError("a record without a payload carries no message id")
    return int(payload[:ID_BYTES])


def paced_batches(cfg: dict[str, Any]) -> Iterator[list[int]]:
    """Yield batches of consecutive ids at ``rate`` msg/s until ``count`` or ``stop``.

    ``first_id`` starts the range, ``batch`` is the batch size; with ``rate`` 0 batches
    come as fast as the caller takes them.
    """
    rate, batch = float(cfg.get("rate", 0)), int(cfg.get("batch", 10))
    next_id = int(cfg.get("first_id", 0))
    end = None if cfg.get("count") is None else next_id + int(cfg["count"])
    stop = Path(cfg["stop"]) if cfg.get("stop") else None
    started = time.monotonic()
    sent = 0
    while stop is None or not stop.exists():
        n = batch if end is None else min(batch, end - next_id)
        if n <= 0:
            return
        if rate > 0:
            due = started + sent / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        ids = list(range(next_id, next_id + n))
        yield ids
        next_id += n
        sent += n


# -- SQLite ------------------------------------------------------------------------------


def sqlite_producer(cfg: dict[str, Any]) -> None:
    """Put paced batches with ``put_many``; on a QueueError record it and apply ``on_error``.

    ``on_error``: ``"exit"`` (default) stops; ``"retry"`` retries the same batch every
    ``retry_s`` seconds, first deleting the ``ballast`` file if one is named (freeing space).
    With ``stop_after_recovery`` the producer stops after the first batch that succeeds
    following an error. ``copy_out`` names a directory to copy the database files into at
    the end (for a file system that vanishes with the process).
    """
    from sqlitequeue.errors import QueueError
    from sqlitequeue.queue import Queue

    ledger = LedgerWriter(cfg["ledger"])
    size = int(cfg.get("payload_size", 100))
    try:
        queue = Queue(cfg["db"], durability=cfg.get("durability", "normal"))
    except QueueError as exc:
        ledger.error(exc, time.time())
        sys.exit(1)
    ballast = Path(cfg["ballast"]) if cfg.get("ballast") else None
    failed = False
    for ids in paced_batches(cfg):
        if failed and cfg.get("stop_after_recovery"):
            break
        while True:
            ledger.event("S", ids, time.time())
            try:
                queue.put_many([payload_for(i, size) for i in ids])
            except QueueError as exc:
                ledger.error(exc, time.time())
                if cfg.get("on_error", "exit") != "retry":
                    queue.close()
                    sys.exit(1)
                failed = True
                if ballast is not None and ballast.exists():
                    ballast.unlink()
                time.sleep(float(cfg.get("retry_s", 0.05)))
                continue
            ledger.event("A", ids, time.time())
            break
    queue.close()
    if cfg.get("copy_out"):
        _copy_database(Path(cfg["db"]), Path(cfg["copy_out"]))


def _copy_database(db: Path, target: Path) -> None:
    """Copy the database and its -wal (what a reboot would find) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        source = Path(f"{db}{suffix}")
        if source.exists():
            shutil.copyfile(source, target / source.name)


def sqlite_consumer(cfg: dict[str, Any]) -> None:
    """Claim batches under a ``lease``, process each message (``process_s``), then ack."""
    from sqlitequeue.errors import LeaseLost
    from sqlitequeue.queue import Queue

    ledger = LedgerWriter(cfg["ledger"])
    queue = Queue(cfg["db"], durability=cfg.get("durability", "normal"))
    lease, batch = float(cfg["lease"]), int(cfg.get("batch", 10))
    process_s = float(cfg.get("process_s", 0.0))
    stop = Path(cfg["stop"])
    idle_since = time.monotonic()
    while True:
        messages = queue.get_many(batch, timeout=0.1, lease=lease)
        if not messages:
            if stop.exists() and time.monotonic() - idle_since > 0.3:
                break
            continue
        idle_since = time.monotonic()
        ids = [id_of(m.payload) for m in messages]
        ledger.event("R", ids, time.time())
        _process(ledger, ids, process_s)
        try:
            queue.ack_many(messages)
        except LeaseLost as exc:  # processed too slowly: another consumer has them now
            ledger.error(exc, time.time())
            continue
        ledger.event("C", ids, time.time())
    queue.close()


def _process(ledger: LedgerWriter, ids: list[int], process_s: float) -> None:
    """The consumer's side effect: one ``P`` event per message, ``process_s`` apart."""
    for i in ids:
        if process_s > 0:
            time.sleep(process_s)
        ledger.event("P", [i], time.time())


# -- Kafka -------------------------------------------------------------------------------


def kafka_producer(cfg: dict[str, Any]) -> None:
    """Produce paced batches with confluent-kafka (acks=all, idempotent by default).

    Delivery reports are written as ``A`` (success) or ``E`` events as they arrive. At the
    end the producer flushes for up to ``flush_s`` seconds.
    """
    from confluent_kafka import Producer

    ledger = LedgerWriter(cfg["ledger"])
    size = int(cfg.get("payload_size", 100))
    settings = {
        "bootstrap.servers": cfg["bootstrap"],
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 1,
        "message.timeout.ms": int(cfg.get("message_timeout_ms", 120000)),
        **cfg.get("settings", {}),
    }
    producer = Producer(settings)
    acked: list[int] = []

    def report(err: Any, msg: Any) -> None:
        if err is None:
            acked.append(id_of(msg.value()))
        else:
            ledger.error(RuntimeError(f"{err} (message {id_of(msg.value())})"), time.time())

    def drain() -> None:
        if acked:
            ledger.event("A", list(acked), time.time())
            acked.clear()

    topic = cfg["topic"]
    for ids in paced_batches(cfg):
        ledger.event("S", ids, time.time())
        for i in ids:
            _produce(producer, topic, payload_for(i, size), report)
        producer.poll(0)
        drain()
    deadline = time.monotonic() + float(cfg.get("flush_s", 60))
    while len(producer) > 0 and time.monotonic() < deadline:
        producer.poll(0.1)
        drain()
    drain()


def _produce(producer: Any, topic: str, payload: bytes, report: Callable[..., None]) -> None:
    while True:
        try:
            producer.produce(topic, payload, on_delivery=report)
            return
        except BufferError:  # the local queue is full while the broker is away
            producer.poll(0.1)


def kafka_consumer(cfg: dict[str, Any]) -> None:
    """Consume as a member of ``group``: poll a batch, process it, commit synchronously."""
    from confluent_kafka import Consumer, KafkaException

    ledger = LedgerWriter(cfg["ledger"])
    consumer = Consumer(
        {
            "bootstrap.servers": cfg["bootstrap"],
            "group.id": cfg["group"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": int(float(cfg["lease"]) * 1000),
            # Frequent heartbeats: the group then acts on a death within ~session.timeout.ms
            # (not up to one more heartbeat interval early or late) and RTO measures it.
            "heartbeat.interval.ms": max(100, int(float(cfg["lease"]) * 1000) // 20),
            **cfg.get("settings", {}),
        }
    )

    def show(kind: str) -> Callable[[Any, Any], None]:
        def callback(_consumer: Any, partitions: Any) -> None:
            parts = ",".join(f"{p.partition}@{p.offset}" for p in partitions)
            print(f"{time.time():.6f} {kind} {parts}", flush=True)

        return callback

    consumer.subscribe([cfg["topic"]], on_assign=show("assigned"), on_revoke=show("revoked"))
    stop, process_s = Path(cfg["stop"]), float(cfg.get("process_s", 0.0))
    idle_since = time.monotonic()
    while True:
        records = consumer.consume(int(cfg.get("batch", 10)), timeout=0.2)
        records = [r for r in records if r.error() is None]
        if not records:
            if stop.exists() and time.monotonic() - idle_since > 1.0:
                break
            continue
        idle_since = time.monotonic()
        ids = [id_of(r.value()) for r in records]
        ledger.event("R", ids, time.time())
        _process(ledger, ids, process_s)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:  # a rebalance took the partition: redelivered elsewhere
            ledger.error(exc, time.time())
            continue
        ledger.event("C", ids, time.time())
    consumer.close()


ROLES: dict[str, Callable[[dict[str, Any]], None]] = {
    "sqlite-producer": sqlite_producer,
    "sqlite-consumer": sqlite_consumer,
    "kafka-producer": kafka_producer,
    "kafka-consumer": kafka_consumer,
}


def command(role: str, cfg: dict[str, Any]) -> list[str]:
    """Return the argv that runs worker ``role`` with ``cfg`` in a new Python process."""
    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r}")
    return [sys.executable, "-m", "sqlitequeue.bench.faults.workers", role, json.dumps(cfg)]


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``ROLE CONFIG_JSON``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ROLES:
        print(f"usage: fault_workers {{{','.join(ROLES)}}} CONFIG_JSON", file=sys.stderr)
        return 2
    ROLES[args[0]](json.loads(args[1]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
