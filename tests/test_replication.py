"""Litestream for real: install script, replicate, wait until replicated, restore."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sqlitequeue.bench.errors import LitestreamError
from sqlitequeue.bench.faults import litestream
from sqlitequeue.queue import Queue
from tests.helpers import REPO

pytestmark = pytest.mark.litestream


def payloads(n: int) -> list[bytes]:
    return [f"message {i}".encode() for i in range(n)]


def test_install_script_is_quick_and_idempotent_once_installed() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "tools" / "install_litestream.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "litestream:" in result.stdout
    assert litestream.litestream_version(litestream.find_litestream()).startswith("v0.5.")


def test_replicated_queue_restores_every_committed_message(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as queue:
        queue.put_many(payloads(50))
        replica = litestream.FileReplica(tmp_path / "replica")
        with litestream.Replicator(db, replica) as rep:
            queue.put_many(payloads(50))
            assert rep.wait_until_replicated() >= 0
            restored = tmp_path / "restored.db"
            assert rep.restore(restored) >= 0
    with Queue(restored) as copy:
        assert [m.payload for m in copy.peek(limit=1000)] == payloads(50) + payloads(50)


def test_host_loss_then_restore_to_the_original_path(tmp_path: Path) -> None:
    db = tmp_path / "data" / "queue.db"
    db.parent.mkdir()
    replica = litestream.FileReplica(tmp_path / "replica")
    with Queue(db) as queue:
        queue.put_many(payloads(20))
    rep = litestream.Replicator(db, replica).start()
    try:
        rep.wait_until_replicated()
        rep.kill()
        gone = litestream.delete_local_database(db)
        assert db in gone and not db.exists()
        assert not any(p.exists() for p in litestream.local_state_paths(db))
        litestream.restore(db, db, replica)
    finally:
        rep.close()
    with Queue(db) as queue:
        assert queue.stats().pending == 20


def test_describe_records_version_intervals_and_replica(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    Queue(db).close()
    rep = litestream.Replicator(db, sync_interval=0.5)
    try:
        info = rep.describe()
    finally:
        rep.close()
    assert info["litestream_version"].startswith("v0.5.")
    assert info["sync_interval_s"] == 0.5
    assert info["monitor_interval_s"] == litestream.DEFAULT_MONITOR_INTERVAL
    assert info["replica"] == {"type": "file", "path": str(tmp_path / "queue.db.replica")}


def test_restore_without_a_replica_raises_litestream_error(tmp_path: Path) -> None:
    with pytest.raises(LitestreamError, match="restore"):
        litestream.restore(
            tmp_path / "queue.db",
            tmp_path / "out.db",
            litestream.FileReplica(tmp_path / "nothing-here"),
        )


def test_restore_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "exists.db"
    target.write_bytes(b"")
    with pytest.raises(LitestreamError, match="already exists"):
        litestream.restore(tmp_path / "queue.db", target)


def test_missing_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "litestream"
    fake.write_text("#!/bin/sh\necho v0.3.13\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LITESTREAM_BIN", str(fake))
    monkeypatch.setenv("SQLITEQUEUE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LitestreamError, match="make litestream") as info:
        litestream.find_litestream()
    assert "v0.3.13" in str(info.value)


def test_s3_replica_from_environment_keeps_secrets_out_of_the_config() -> None:
    env = {
        "SQLITEQUEUE_S3_BUCKET": "queues",
        "SQLITEQUEUE_S3_ENDPOINT": "http://127.0.0.1:9000",
        "SQLITEQUEUE_S3_PATH": "prod/jobs",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret",
    }
    replica = litestream.S3Replica.from_env(env)
    assert replica is not None
    assert replica.config() == {
        "type": "s3",
        "bucket": "queues",
        "path": "prod/jobs",
        "region": "us-east-1",
        "endpoint": "http://127.0.0.1:9000",
    }
    assert replica.env() == {
        "LITESTREAM_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "LITESTREAM_SECRET_ACCESS_KEY": "very-secret",
    }
    assert "very-secret" not in repr(replica.describe())
    assert litestream.S3Replica.from_env({}) is None


def test_config_written_for_litestream_is_valid_and_uses_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.chdir(tmp_path)
    path = litestream.write_config(
        tmp_path / "ls.yml",
        Path("queue.db"),
        litestream.FileReplica(Path("replica")),
        sync_interval=0.25,
    )
    config = yaml.safe_load(path.read_text())
    db = config["dbs"][0]
    assert db["path"] == str(tmp_path / "queue.db")
    assert db["replica"] == {
        "type": "file",
        "path": str(tmp_path / "replica"),
        "sync-interval": "250ms",
    }
