"""The server around the protocol: the extra's import error, the warning when bound beyond
loopback, retention applied to what Kafka clients produced, auto-create switched off."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.protocol.metadata import MetadataRequest, MetadataResponse

from sqlitequeue import QueueError, Retention, Stream
from sqlitequeue import stream as stream_module
from sqlitequeue.gateway import Server, serve
from sqlitequeue.gateway import server as server_module
from tests.gateway_wire import RawConnection


def test_importing_the_gateway_without_its_extra_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['crc32c'] = None\n"
        "try:\n    import sqlitequeue.gateway\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("QueueError") and "pip install 'sqlitequeue[gateway]'" in out


def test_binding_beyond_loopback_warns_that_there_is_no_authentication(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sqlitequeue.gateway"):
        Server(db_path, host="0.0.0.0", port=0).start().close()
    assert "no authentication" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sqlitequeue.gateway"), serve(db_path):
        pass
    assert "no authentication" not in caplog.text


def test_retention_applies_to_produced_batches(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "RETENTION_INTERVAL", 0.1)
    monkeypatch.setattr(stream_module, "RETENTION_INTERVAL", 3600.0)
    with Stream(db_path, "short", retention=Retention(max_age=0.5)):
        pass
    with serve(db_path) as server:
        producer = KafkaProducer(bootstrap_servers=server.bootstrap)
        for _ in range(5):
            producer.send("short", b"old")
        producer.flush()
        time.sleep(1.0)
        producer.send("short", b"new")
        producer.flush()
        producer.close()
        deadline = time.monotonic() + 10
        with Stream(db_path, "short") as stream:
            while stream.earliest_offsets()[0] < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [r.payload for r in stream.read(0, 0)] == [b"new"]


def test_without_auto_create_an_unknown_topic_is_refused(db_path: Path) -> None:
    with serve(db_path, auto_create=False) as server:
        producer = KafkaProducer(bootstrap_servers=server.bootstrap, max_block_ms=1000)
        with pytest.raises(KafkaTimeoutError):
            producer.send("missing", b"x").get(timeout=5)
        producer.close()
    with Stream(db_path, "present") as stream:
        assert [t.name for t in stream.topics()] == ["present"]


def test_a_produce_waiting_for_the_files_lock_does_not_stall_other_clients(
    db_path: Path,
) -> None:
    with Stream(db_path, "t") as stream:
        stream.append(b"before")
    with serve(db_path) as server:
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        producer = KafkaProducer(bootstrap_servers=server.bootstrap, linger_ms=0)
        future = producer.send("t", b"after")
        time.sleep(0.5)
        assert not future.is_done  # the produce waits for the lock ...
        reader = KafkaConsumer(
            "t",
            bootstrap_servers=server.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        assert [m.value for m in reader][:1] == [b"before"]  # ... the others are served
        reader.close()
        blocker.execute("COMMIT")
        assert future.get(timeout=10).offset == 1
        producer.close()
        blocker.close()


def test_a_port_in_use_is_a_clear_error(db_path: Path) -> None:
    with serve(db_path) as server, pytest.raises(QueueError, match="choose another --port"):
        Server(db_path, port=server.port).start()


def test_metadata_gives_the_advertised_address_for_a_server_behind_a_proxy(
    db_path: Path,
) -> None:
    with serve(db_path, advertise="proxy.example:19092") as server:
        connection = RawConnection(server.bootstrap)
        try:
            response = connection.request(MetadataRequest(topics=[]), 12, MetadataResponse)
        finally:
            connection.close()
    assert [(b.host, b.port) for b in response.brokers] == [("proxy.example", 19092)]


def test_a_bad_advertised_address_is_a_clear_error(db_path: Path) -> None:
    with pytest.raises(QueueError, match="give HOST:PORT"):
        Server(db_path, advertise="no-port")
