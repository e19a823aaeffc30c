"""Is Kafka handicapped by our Python client? Kafka's own ProducerPerformance beside our producer.

:class:`Comparison` runs org.apache.kafka.tools.ProducerPerformance (the Java client, from the
cached Kafka jars) and the kafka-confluent backend's producer with the same message size,
count, partitions and producer settings, each on a fresh topic, alternating which goes first.
Both are timed from the first send until every record is acknowledged (the JVM's start-up is
not counted); CPU seconds of each side are recorded too. :func:`write_results` stores a
results folder of kind ``fairness``.
"""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The backend within this factor of Kafka's own tool is "fair".
TARGET_RATIO = 2.0


def summary_lines(comparison: Comparison, rows: list[dict[str, Any]]) -> list[str]:
    """The terminal summary of ``rows``: one line per run, the medians and their ratio."""
    c = comparison
    lines = [
        "",
        f"{c.count} records x {c.size} B, {c.partitions} partition(s), {c.profile}",
        f"{'run':>3}  {'tool':<20} {'records/s':>12} {'MB/s':>8} {'seconds':>8} {'cpu s':>7}",
    ]
    lines += [
        f"{row['run']:>3}  {row['tool']:<20} {row['records_per_s']:>12,.0f} "
        f"{row['mb_per_s']:>8.1f} {row['seconds']:>8.2f} {row['cpu_s']:>7.2f}"
        for row in rows
    ]
    java = statistics.median(r["records_per_s"] for r in rows if r["tool"] == "ProducerPerformance")
    ours = statistics.median(r["records_per_s"] for r in rows if r["tool"] == "kafka-confluent")
    ratio = java / ours
    verdict = "within" if ratio <= TARGET_RATIO else "OUTSIDE"
    return [
        *lines,
        f"median ProducerPerformance: {java:,.0f} records/s",
        f"median kafka-confluent:     {ours:,.0f} records/s",
        f"ratio ProducerPerformance / kafka-confluent = {ratio:.2f}x "
        f"({verdict} the {TARGET_RATIO:g}x target)",
    ]


#: ProducerPerformance's summary line.
SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


@dataclass
class Comparison:
    """Runs both producers against ``servers`` with the same producer settings."""

    servers: str
    settings: Mapping[str, Any]
    profile: str
    count: int
    size: int
    partitions: int = 1
    backend_info: dict[str, Any] = field(default_factory=dict)
    java_command: list[str] = field(default_factory=list)

    def run(self, runs: int, progress: Callable[[str], None]) -> list[dict[str, Any]]:
        """Alternate the two producers ``runs`` times; return one row per measurement."""
        from sqlitequeue.bench.backends import BackendSpec, open_backend
        from sqlitequeue.bench.kafka import distribution

        dist = distribution.ensure(progress=progress)
        spec = BackendSpec(
            "kafka-confluent",
            settings=dict(self.settings),
            bootstrap_servers=self.servers,
            profile=self.profile,
        )
        rows: list[dict[str, Any]] = []
        with open_backend(spec) as backend, tempfile.TemporaryDirectory() as logs:
            self.backend_info = backend.describe()
            for index in range(1, runs + 1):
                order = ["java", "python"] if index % 2 else ["python", "java"]
                for which in order:
                    topic = f"fairness-{which}-{uuid.uuid4().hex[:8]}"
                    backend.create_topic(topic, self.partitions)
                    if which == "java":
                        row = self.run_java(dist, topic, Path(logs))
                    else:
                        row = self.run_python(backend, topic)
                    row["run"] = index
                    rows.append(row)
                    progress(f"run {index}: {row['tool']}: {row['records_per_s']:,.0f} records/s")
        return rows

    def run_java(self, dist: Any, topic: str, logs: Path) -> dict[str, Any]:
        """Run ProducerPerformance once; return its own summary figures.

        Raises KafkaError with the tool's output when it fails or prints no summary.
        """
        from sqlitequeue.bench.backends._kafka import java_producer_properties
        from sqlitequeue.bench.errors import KafkaError

        self.java_command = [
            *dist.tool_command("org.apache.kafka.tools.ProducerPerformance", logs),
            "--topic",
            topic,
            "--num-records",
            str(self.count),
            "--record-size",
            str(self.size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={self.servers}",
            *java_producer_properties(self.settings),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            self.java_command, capture_output=True, text=True, timeout=900, check=False
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        found = SUMMARY.findall(done.stdout)
        if done.returncode != 0 or not found or int(found[-1][0]) != self.count:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise KafkaError(f"ProducerPerformance failed (exit {done.returncode}):\n{tail}")
        rate = float(found[-1][1])
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return self._row("ProducerPerformance", self.count / rate, rate, cpu)

    def run_python(self, backend: Any, topic: str) -> dict[str, Any]:
        """Send ``count`` records through the backend's producer; time first send to flush.

        Raises BackendError if any delivery failed.
        """
        from sqlitequeue.bench.errors import BackendError

        payload = bytes(i % 251 for i in range(self.size))
        failed: list[str] = []

        def on_delivery(delivery: Any) -> None:
            if not delivery.ok:
                failed.append(delivery.error)

        producer = backend.producer(topic)
        try:
            cpu_start = time.process_time()
            start = time.perf_counter()
            for _ in range(self.count):
                producer.send(None, payload, on_delivery)
            producer.flush(900)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
        finally:
            producer.close()
        if failed:
            raise BackendError(f"{len(failed)} deliveries failed, e.g. {failed[0]}")
        return self._row("kafka-confluent", seconds, self.count / seconds, cpu)

    def _row(self, tool: str, seconds: float, rate: float, cpu: float) -> dict[str, Any]:
        return {
            "run": 0,
            "tool": tool,
            "records": self.count,
            "size": self.size,
            "partitions": self.partitions,
            "seconds": seconds,
            "records_per_s": rate,
            "mb_per_s": rate * self.size / (1024 * 1024),
            "cpu_s": cpu,
        }


def write_results(
    root: str, comparison: Comparison, rows: list[dict[str, Any]], broker: dict[str, Any]
) -> Path:
    """Write a results folder (kind ``fairness``) and return its path."""
    from sqlitequeue.bench.results import RunWriter, new_run_id

    workload = f"produce-{comparison.size}B"
    with RunWriter(Path(root), new_run_id("fairness"), kind="fairness") as writer:
        writer.metadata(
            broker=broker,
            backends={"kafka-confluent": comparison.backend_info},
            producer_performance={"command": comparison.java_command[6:]},
            fairness={
                "count": comparison.count,
                "size": comparison.size,
                "partitions": comparison.partitions,
                "profile": comparison.profile,
                "target_ratio": TARGET_RATIO,
            },
        )
        writer.table("fairness", rows)
        medians = {}
        for tool in ("ProducerPerformance", "kafka-confluent"):
            rates = [r["records_per_s"] for r in rows if r["tool"] == tool]
            medians[tool] = statistics.median(rates)
            writer.metric(tool, workload, "publish_rate_mean", medians[tool])
        ratio = medians["ProducerPerformance"] / medians["kafka-confluent"]
        writer.metric("kafka-confluent", workload, "fairness_ratio", ratio)
        return writer.dir
