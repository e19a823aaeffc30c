"""A comparison's logs, kept under ``results/<run-id>/logs/`` and recorded in run.json.

One file per backend label, ``logs/<label>.log`` (``@`` spelled ``_at_``): a header line per
run (workload, repeat), then what that run's processes logged: the client library's lines
(librdkafka, kafka-python; routed there through the Kafka backends' ``log.file`` setting
instead of the terminal) and, when the run failed, its error with the child process's
traceback. A backend that could not run at all (Kafka unavailable) gets a file saying why
and how to add Kafka. Each local Kafka broker's own logs (``server.log``, ``kafka.out``,
Toxiproxy's) are copied from its data directory into ``logs/broker-<deployment>/`` before
the broker is stopped and that directory removed.

run.json ``logs`` maps a name to a path relative to the results folder: the backend label
(``"kafka-confluent": "logs/kafka-confluent.log"``) or ``broker-<deployment>/<file>``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlitequeue.bench.kafka.deployments import KafkaDeployments

#: log files of a local broker's node (its ``log_dir``) worth keeping
BROKER_LOG_FILES = ("server.log", "kafka.out", "controller.log", "state-change.log")


@dataclass
class RunLogs:
    """The ``logs/`` folder of one results folder ``results``."""

    results: Path
    recorded: dict[str, str] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.results / "logs"

    def path_for(self, label: str) -> Path:
        """Return backend ``label``'s log file (created, with its folder, if missing)."""
        path = self.dir / f"{label.replace('@', '_at_').replace('/', '_')}.log"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        self.recorded[label] = str(path.relative_to(self.results))
        return path

    def begin(self, label: str, what: str) -> Path:
        """Append a header line for a run of ``label`` (``what``: workload, repeat); return
        the file, to hand to the backend as its client-library log."""
        path = self.path_for(label)
        with path.open("a") as fh:
            fh.write(f"=== {_now()} {label}: {what} ===\n")
        return path

    def append(self, label: str, text: str) -> Path:
        """Append ``text`` (an error, a note) to ``label``'s log; return the file."""
        path = self.path_for(label)
        with path.open("a") as fh:
            fh.write(text.rstrip("\n") + "\n")
        return path

    def keep_brokers(self, kafka: KafkaDeployments) -> None:
        """Copy each local broker's logs here (call before the brokers are stopped)."""
        for key, broker in {**kafka.given, **kafka.started}.items():
            target = self.dir / f"broker-{key.replace('@', '_at_')}"
            for name, source in _broker_logs(broker):
                dest = target / name
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, dest)
                except OSError:
                    continue
                self.recorded[f"broker-{key}/{name}"] = str(dest.relative_to(self.results))
        for key, why in kafka.unavailable.items():
            path = self.dir / f"broker-{key.replace('@', '_at_')}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"Kafka ({key}) was not available: {why}\n")
            self.recorded[f"broker-{key}"] = str(path.relative_to(self.results))

    def absolute(self) -> dict[str, Path]:
        """Every recorded log as name -> absolute path."""
        return {name: self.results / rel for name, rel in self.recorded.items()}


def _broker_logs(broker: Any) -> list[tuple[str, Path]]:
    """(name, path) of the log files a local broker wrote; none for an external cluster."""
    found: list[tuple[str, Path]] = []
    nodes = getattr(broker, "nodes", None) or []
    for i, node in enumerate(nodes):
        log_dir = getattr(node, "log_dir", None)
        if log_dir is None:
            continue
        for name in BROKER_LOG_FILES:
            if (Path(log_dir) / name).is_file():
                found.append((f"node-{i}/{name}", Path(log_dir) / name))
    data_dir = getattr(broker, "data_dir", None)
    if data_dir is not None and (Path(data_dir) / "toxiproxy.log").is_file():
        found.append(("toxiproxy.log", Path(data_dir) / "toxiproxy.log"))
    return found


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")
