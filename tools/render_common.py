"""What every block of ``tools/render_docs.py`` shares: where the results are, how a run is
loaded (once), and the line of facts, duration and command each block quotes from run.json."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlitequeue.bench.results import Results

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results"


@cache
def load_run(folder: Path) -> Results:
    """The results folder ``folder``, loaded once per process."""
    from sqlitequeue.bench.results import load

    return load(folder)


def facts(meta: dict) -> str:
    """One line of what a run ran on: run id and date, host, versions, commit, load."""
    host, versions = meta.get("host", {}), meta.get("versions", {})
    kafka = meta.get("kafka") or {}
    kafka_version = kafka.get("version") if isinstance(kafka, dict) else None
    memory = host.get("memory_bytes")
    parts = [
        f"run `{meta.get('run_id')}` ({meta.get('created', '?')})",
        f"{host.get('cpu_count', '?')} CPUs",
        f"{memory / 2**30:.0f} GiB" if memory else None,
        f"Python {versions.get('python')}",
        f"SQLite {versions.get('sqlite')}",
        f"Kafka {kafka_version}" if kafka_version else None,
        f"confluent-kafka {versions.get('confluent-kafka')}",
        f"kafka-python {versions.get('kafka-python')}",
        f"commit `{str(meta.get('git_commit'))[:12]}`",
    ]
    load = meta.get("load_average_at_start")
    if isinstance(load, list) and load:
        parts.append("load average at start " + "/".join(f"{x:.1f}" for x in load))
    return ", ".join(p for p in parts if p)


def took(meta: dict) -> str:
    """How long a run took, from run.json's ``created`` and ``finished``."""
    seconds = (
        datetime.fromisoformat(meta["finished"]) - datetime.fromisoformat(meta["created"])
    ).total_seconds()
    return f"{seconds / 60:.0f} minutes" if seconds >= 90 else f"{seconds:.0f} s"


def command_line(meta: dict) -> str:
    """The ``sqlitequeue ...`` command line recorded in run.json (its program path dropped)."""
    return " ".join(["sqlitequeue", *meta.get("command", [])[1:]])


def ms(value: float) -> str:
    """Milliseconds, two decimals below 10 ms, one above."""
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
