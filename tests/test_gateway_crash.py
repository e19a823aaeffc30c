"""`sqlitequeue serve` as a process: SIGKILL mid-produce loses no acknowledged record, and
after a restart a group resumes from its committed offset; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer

from sqlitequeue import Stream


def start_server(path: Path) -> tuple[subprocess.Popen[str], str]:
    """Run `sqlitequeue serve PATH --port 0`; return the process and its bootstrap address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlitequeue", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"on (\S+:\d+)", line)
    assert found, f"no address in {line!r}"
    return process, found.group(1)


def test_sigkill_mid_produce_loses_no_acknowledged_record(db_path: Path) -> None:
    with Stream(db_path, "k", partitions=2):
        pass
    process, bootstrap = start_server(db_path)
    acked: list[bytes] = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "retries": 0}
    )

    def delivered(err: object, message: object) -> None:
        if err is None:
            acked.append(message.value())  # type: ignore[attr-defined]

    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            producer.produce("k", value=b"%d" % i, on_delivery=delivered)
            producer.poll(0)
            i += 1
            if i % 50 == 0:
                time.sleep(0.001)

    sender = threading.Thread(target=produce, daemon=True)
    sender.start()
    deadline = time.monotonic() + 30
    while len(acked) < 2000 and time.monotonic() < deadline:
        producer.poll(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    sender.join()
    producer.flush(2)
    assert len(acked) >= 2000
    with Stream(db_path, "k") as stream:
        stored = {r.payload for p in range(2) for r in stream.read(p, 0, 10**6)}
    assert set(acked) <= stored


def test_a_group_resumes_from_its_committed_offset_after_a_kill(db_path: Path) -> None:
    with Stream(db_path, "r") as stream:
        stream.append_many([b"%d" % i for i in range(20)])
    process, bootstrap = start_server(db_path)
    settings = {
        "bootstrap.servers": bootstrap,
        "group.id": "resume",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    consumer = Consumer(settings)
    consumer.subscribe(["r"])
    got: list[int] = []
    while len(got) < 8:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            got.append(message.offset())
    consumer.commit(offsets=None, asynchronous=False)  # commits position 8 or later
    committed = consumer.committed(consumer.assignment())[0].offset
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    consumer.close()
    process, bootstrap = start_server(db_path)
    try:
        again = Consumer({**settings, "bootstrap.servers": bootstrap})
        again.subscribe(["r"])
        first = None
        deadline = time.monotonic() + 30
        while first is None and time.monotonic() < deadline:
            message = again.poll(1)
            if message is not None and message.error() is None:
                first = message.offset()
        again.close()
        assert first == committed
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0  # SIGTERM: drained and closed cleanly
