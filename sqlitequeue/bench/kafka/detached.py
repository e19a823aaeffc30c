"""A detached local broker (``sqlitequeue kafka start``) that outlives the command; its state.

``start`` launches a :class:`~sqlitequeue.bench.kafka.broker.LocalKafka` in detached mode and
records it in ``<cache>/kafka-broker.json``; ``status`` and ``stop`` find it again from that
file, checking that each recorded pid still runs a Kafka JVM of this broker (pid reuse).
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from sqlitequeue.bench.cache import cache_root
from sqlitequeue.bench.errors import KafkaError
from sqlitequeue.bench.kafka.broker import LocalKafka
from sqlitequeue.bench.kafka.node import pid_alive, signal_group, terminate_pid
from sqlitequeue.bench.kafka.readiness import wait_for_metadata
from sqlitequeue.bench.network.profiles import NetworkProfile


def state_path() -> Path:
    """Where `kafka start` records its broker: ``<cache>/kafka-broker.json``."""
    return cache_root() / "kafka-broker.json"


def read_state() -> dict[str, Any] | None:
    """The recorded broker, or None when there is none (or the file is unreadable)."""
    try:
        state = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def live_pids(state: dict[str, Any]) -> list[int]:
    """The recorded pids that still run a Kafka JVM of this broker (guards against pid reuse)."""
    live = []
    for pid in state.get("pids", []):
        cmdline = _cmdline(pid)
        if pid_alive(pid) and b"kafka.Kafka" in cmdline and state["data_dir"].encode() in cmdline:
            live.append(pid)
    return live


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def start_detached(
    brokers: int, *, port: int | None, heap: str | None, network: NetworkProfile | None = None
) -> dict[str, Any]:
    """Start a detached local broker (1 or 3 nodes), record it, and return its state.

    With an emulated ``network`` its Toxiproxy server is detached too, recorded and stopped
    with it. Raises KafkaError (from :class:`LocalKafka`) when it cannot start.
    """
    broker = LocalKafka(brokers, port=port, heap=heap, detached=True, network=network)
    broker.start()
    state = {
        "pids": broker.pids,
        "proxy_pid": broker.proxy.pid if broker.proxy is not None else None,
        "network": broker.network.name,
        "bootstrap": broker.bootstrap_servers,
        "data_dir": str(broker.data_dir),
        "version": broker.version,
        "brokers": brokers,
        "started_at": time.time(),
    }
    state_path().parent.mkdir(parents=True, exist_ok=True)
    state_path().write_text(json.dumps(state, indent=2) + "\n")
    return state


def health(state: dict[str, Any]) -> str:
    """One line: whether the recorded broker answers a Metadata request within 5 s."""
    try:
        meta = wait_for_metadata(state["bootstrap"], timeout=5.0)
    except KafkaError as exc:
        return f"NOT answering: {exc}"
    return f"answering: {len(meta.brokers)} broker(s), cluster {meta.cluster_id}"


def forget() -> None:
    """Remove the state file (the broker it names is gone)."""
    state_path().unlink(missing_ok=True)


def stop_detached(state: dict[str, Any]) -> list[int]:
    """Stop the recorded broker's live JVMs, delete its data and the state; return their pids."""
    live = live_pids(state)
    for pid in live:  # all at once, so no node waits for a quorum that is shutting down
        signal_group(pid, signal.SIGTERM)
    for pid in live:
        terminate_pid(pid, timeout=30.0)
    proxy = state.get("proxy_pid")
    if proxy and pid_alive(proxy) and b"toxiproxy" in _cmdline(proxy):
        terminate_pid(proxy, timeout=5.0)
    shutil.rmtree(state["data_dir"], ignore_errors=True)
    forget()
    return live
