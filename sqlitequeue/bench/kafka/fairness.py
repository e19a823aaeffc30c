"""Kafka's own tools against the real broker and ``sqlitequeue serve``, in one run.

:class:`Comparison` measures, on each target it is given (``broker``: a real Kafka broker;
``gateway``: ``sqlitequeue serve`` on a fresh file), each tool with the same settings on
both targets (not every tool the same ones):

* Kafka's ``org.apache.kafka.tools.ProducerPerformance`` (the Java client, from the cached
  Kafka jars), with the profile's producer settings: records/s, MB/s and the tool's own
  latency average, p50 and p99;
* on the broker, the kafka-confluent backend's producer with the same count, size and
  producer settings (is Kafka handicapped by our Python client? within 2x is "fair");
* Kafka's ``org.apache.kafka.tools.EndToEndLatency`` (one record at a time: send, wait for
  it at a consumer, repeat), given only acks and the record size: average, p50, p99 and
  p99.9;
* a paced end-to-end probe with confluent-kafka at ``rate`` msg/s, with acks,
  ``linger.ms=0`` and no idempotence, on records holding their send time
  (:func:`~sqlitequeue.bench.kafka.gateway_bench.end_to_end_at_rate`; a record missing
  fails it);
* the gateway server's peak RSS over the whole run, and its CPU while idle, alone and with
  one consumer long-polling.

Each measurement uses a fresh topic; the order of the targets (and tools) alternates from
run to run. Producers are timed from the first send until every record is acknowledged (the
JVM's start-up is not counted); CPU seconds of each producer are recorded too. Under an
emulated network both the broker's and the gateway's client listeners sit behind the same
kind of Toxiproxy hop. :func:`write_results` stores a results folder of kind ``fairness``.
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlitequeue.bench.network.profiles import NetworkProfile

#: The backend within this factor of Kafka's own tool is "fair".
TARGET_RATIO = 2.0
#: The steps run once, unrecorded, before the measured runs (see Comparison._warm_up).
WARMED_UP = frozenset({"ProducerPerformance", "kafka-confluent"})
#: What the comparison can run against.
TARGETS = ("broker", "gateway")
#: Issue 14's targets for the gateway: ProducerPerformance >= this share of the broker's
#: records/s; paced e2e p99 <= the broker's; peak RSS below this; idle CPU below this.
GATEWAY_MIN_SHARE = 0.5
GATEWAY_MAX_RSS_MB = 100.0
GATEWAY_MAX_IDLE_CPU = 2.0
PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
END_TO_END_LATENCY = "org.apache.kafka.tools.EndToEndLatency"

#: ProducerPerformance's summary line, and its latency figures.
SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")
LATENCY = re.compile(
    r"([\d.]+) ms avg latency.*?([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th"
)
#: EndToEndLatency's result lines.
E2E_AVG = re.compile(r"Avg latency: ([\d.]+) ms")
E2E_PERCENTILES = re.compile(r"50th = ([\d.]+), 99th = ([\d.]+), 99\.9th = ([\d.]+)")

Progress = Callable[[str], None]


@dataclass
class Measurements:
    """What one comparison measured: producer rows, latency rows, the server's figures."""

    producers: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    process: dict[str, float] = field(default_factory=dict)

    def median(self, table: str, target: str, tool: str, column: str) -> float | None:
        """The median of ``column`` over ``table``'s rows of ``target`` and ``tool``."""
        rows = self.producers if table == "producers" else self.latency
        values = [
            float(r[column])
            for r in rows
            if r["target"] == target and r["tool"] == tool and r.get(column) is not None
        ]
        return statistics.median(values) if values else None


@dataclass
class Comparison:
    """Kafka's tools (and our producer) against ``servers`` and/or a gateway (see module).

    ``warm_up``: run each producer step once, uncounted, before the measured runs
    (:meth:`_warm_up`); off only where the first run's speed does not matter (tests).
    """

    servers: str | None
    settings: Mapping[str, Any]
    profile: str
    count: int
    size: int
    partitions: int = 1
    against: tuple[str, ...] = TARGETS
    network: NetworkProfile | None = None
    e2e_count: int = 5_000
    rate: int = 1_000
    rate_seconds: float = 20.0
    idle_seconds: float = 10.0
    warm_up: bool = True
    backend_info: dict[str, Any] = field(default_factory=dict)
    gateway_info: dict[str, Any] = field(default_factory=dict)
    #: ProducerPerformance's arguments (after its class name): the broker's run, else the gateway's.
    producer_performance_args: list[str] = field(default_factory=list)

    @property
    def acks(self) -> str:
        """The producers' acks (the profile's, else ``all``)."""
        return str(self.settings.get("producer.acks", "all"))

    def run(self, runs: int, progress: Progress) -> Measurements:
        """Measure ``runs`` times, alternating the order; return every row and figure.

        Raises KafkaError or BenchError (with the tool's output) when a tool fails, and
        BenchError when ``against`` names the broker without ``servers``.
        """
        from sqlitequeue.bench.kafka import distribution

        dist = distribution.ensure(progress=progress)
        found = Measurements()
        with ExitStack() as stack:
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            targets, backend, rss = self._open(stack, logs, progress)
            if self.warm_up:
                self._warm_up(dist, logs, targets, backend, progress)
            for index in range(1, runs + 1):
                for target, tool in self._steps(index, list(targets)):
                    row = self._measure(dist, logs, targets[target], target, tool, backend)
                    row["run"] = index
                    table = found.latency if "latency" in row else found.producers
                    table.append({k: v for k, v in row.items() if k != "latency"})
                    progress(f"run {index}/{runs}: {_progress_line(row)}")
            if rss is not None:
                found.process = self._server_figures(rss, targets["gateway"], progress)
        return found

    def _open(self, stack: ExitStack, logs: Path, progress: Progress) -> tuple[Any, Any, Any]:
        """Open the broker's producer backend and start the gateway, as ``against`` says."""
        from sqlitequeue.bench.backends import BackendSpec, open_backend
        from sqlitequeue.bench.backends.gateway import SharedServer
        from sqlitequeue.bench.errors import BenchError
        from sqlitequeue.bench.kafka.gateway_bench import PeakRss

        targets: dict[str, str] = {}
        backend = rss = None
        if "broker" in self.against:
            if not self.servers:
                raise BenchError(
                    "a comparison against the broker needs the broker's bootstrap servers: "
                    "pass servers= (e.g. KafkaBroker.auto().bootstrap_servers, as `sqlitequeue "
                    "bench fairness` does), or measure only the gateway with against=('gateway',)"
                )
            spec = BackendSpec(
                "kafka-confluent",
                settings=dict(self.settings),
                bootstrap_servers=self.servers,
                profile=self.profile,
            )
            backend = stack.enter_context(open_backend(spec))
            self.backend_info = backend.describe()
            targets["broker"] = self.servers
        if "gateway" in self.against:
            server = SharedServer(logs / "gateway", self.network)
            targets["gateway"] = server.attach()
            stack.callback(server.release)
            self.gateway_info = {**server.describe(), "bootstrap": targets["gateway"]}
            progress(f"gateway: sqlitequeue serve at {targets['gateway']}")
            rss = PeakRss(server.server_pid)
            rss.start()
            stack.callback(rss.stop)
        return targets, backend, rss

    def _warm_up(
        self, dist: Any, logs: Path, targets: dict[str, str], backend: Any, progress: Progress
    ) -> None:
        """Run each producer step once, unrecorded: a freshly started broker JVM (and a
        fresh gateway file) is much slower on its first run than after, and counting that
        run would flatter whichever target started warm."""
        for target, tool in self._steps(1, list(targets)):
            if tool in WARMED_UP:
                self._measure(dist, logs, targets[target], target, tool, backend)
                progress(f"warm-up: {tool} on the {target} (not counted)")

    def _steps(self, index: int, targets: list[str]) -> list[tuple[str, str]]:
        """Run ``index``'s (target, tool) steps: odd runs in order, even runs reversed."""
        producers = [(t, "ProducerPerformance") for t in targets]
        if "broker" in targets:
            producers.insert(1, ("broker", "kafka-confluent"))
        order = targets if index % 2 else targets[::-1]
        latency = [(t, tool) for tool in ("EndToEndLatency", "e2e-confluent") for t in order]
        if index % 2 == 0:
            producers.reverse()
        return producers + latency

    def _measure(
        self, dist: Any, logs: Path, bootstrap: str, target: str, tool: str, backend: Any
    ) -> dict[str, Any]:
        from sqlitequeue.bench.backends._kafka import section
        from sqlitequeue.bench.kafka.gateway_bench import create_topic, end_to_end_at_rate

        topic = f"fairness-{tool.lower()}-{uuid.uuid4().hex[:8]}"
        if tool == "e2e-confluent":
            figures = end_to_end_at_rate(bootstrap, topic, self.rate, self.rate_seconds, self.acks)
            return self._latency_row(target, f"confluent-kafka@{self.rate}/s", figures)
        partitions = 1 if tool == "EndToEndLatency" else self.partitions
        create_topic(bootstrap, topic, partitions, section(self.settings, "topic"))
        if tool == "ProducerPerformance":
            return self.run_java(dist, bootstrap, topic, logs, target)
        if tool == "EndToEndLatency":
            return self.run_end_to_end(dist, bootstrap, topic, logs, target)
        return self.run_python(backend, topic)

    def run_java(
        self, dist: Any, bootstrap: str, topic: str, logs: Path, target: str = "broker"
    ) -> dict[str, Any]:
        """Run ProducerPerformance once; return its own summary figures.

        Raises KafkaError with the tool's output when it fails or prints no summary.
        """
        from sqlitequeue.bench.backends._kafka import java_producer_properties

        arguments = [
            "--topic",
            topic,
            "--num-records",
            str(self.count),
            "--record-size",
            str(self.size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            *java_producer_properties(self.settings),
        ]
        if target == "broker" or not self.producer_performance_args:
            self.producer_performance_args = arguments
        command = [*dist.tool_command(PRODUCER_PERFORMANCE, logs), *arguments]
        out, cpu = _run_tool("ProducerPerformance", command)
        found = SUMMARY.findall(out)
        latency = LATENCY.findall(out)
        if not found or int(found[-1][0]) != self.count or not latency:
            tail = "\n".join(out.splitlines()[-20:])
            raise _tool_error("ProducerPerformance printed no complete summary", tail)
        rate = float(found[-1][1])
        row = self._row("ProducerPerformance", self.count / rate, rate, cpu, target)
        avg, p50, p99 = (float(v) for v in latency[-1])
        return {**row, "latency_ms_mean": avg, "latency_ms_p50": p50, "latency_ms_p99": p99}

    def run_end_to_end(
        self, dist: Any, bootstrap: str, topic: str, logs: Path, target: str
    ) -> dict[str, Any]:
        """Run EndToEndLatency once (``e2e_count`` records, one at a time); return its figures.

        Raises KafkaError with the tool's output when it fails or prints no result.
        """
        command = [
            *dist.tool_command(END_TO_END_LATENCY, logs),
            bootstrap,
            topic,
            str(self.e2e_count),
            self.acks,
            str(self.size),
        ]
        out, _cpu = _run_tool("EndToEndLatency", command)
        avg, percentiles = E2E_AVG.findall(out), E2E_PERCENTILES.findall(out)
        if not avg or not percentiles:
            raise _tool_error("EndToEndLatency printed no result", out[-2000:])
        p50, p99, p999 = (float(v) for v in percentiles[-1])
        figures = {"received": self.e2e_count, "mean": float(avg[-1]), "p50": p50, "p99": p99}
        return self._latency_row(target, "EndToEndLatency", {**figures, "p99.9": p999})

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
        return self._row("kafka-confluent", seconds, self.count / seconds, cpu, "broker")

    def _server_figures(self, rss: Any, bootstrap: str, progress: Progress) -> dict[str, float]:
        from sqlitequeue.bench.kafka.gateway_bench import (
            create_topic,
            idle_cpu_percent,
            idle_cpu_with_consumer,
        )

        peak = rss.stop()
        pid = rss.process.pid
        progress(f"gateway: peak RSS {peak / 2**20:.1f} MB; idle CPU for {self.idle_seconds:g} s…")
        idle = idle_cpu_percent(pid, self.idle_seconds)
        topic = f"fairness-idle-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic, 1)
        with_consumer = idle_cpu_with_consumer(pid, bootstrap, topic, self.idle_seconds)
        progress(f"gateway: idle CPU {idle:.2f}% alone, {with_consumer:.2f}% with one consumer")
        return {
            "rss_bytes.peak": float(peak),
            "cpu_percent.idle": idle,
            "cpu_percent.idle_one_consumer": with_consumer,
        }

    def _row(
        self, tool: str, seconds: float, rate: float, cpu: float, target: str
    ) -> dict[str, Any]:
        return {
            "run": 0,
            "target": target,
            "tool": tool,
            "records": self.count,
            "size": self.size,
            "partitions": self.partitions,
            "seconds": seconds,
            "records_per_s": rate,
            "mb_per_s": rate * self.size / (1024 * 1024),
            "cpu_s": cpu,
            "latency_ms_mean": None,
            "latency_ms_p50": None,
            "latency_ms_p99": None,
        }

    def _latency_row(self, target: str, tool: str, figures: Mapping[str, float]) -> dict[str, Any]:
        return {
            "latency": True,
            "run": 0,
            "target": target,
            "tool": tool,
            "messages": int(figures["received"]),
            "size": self.size if tool == "EndToEndLatency" else None,
            "mean_ms": figures["mean"],
            "p50_ms": figures["p50"],
            "p99_ms": figures["p99"],
            "p99_9_ms": figures.get("p99.9"),
            "max_ms": figures.get("max"),
        }


def _run_tool(name: str, command: list[str]) -> tuple[str, float]:
    """Run one Java tool; return its stdout and CPU seconds. KafkaError when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise _tool_error(f"{name} failed (exit {done.returncode})", tail)
    return done.stdout, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _tool_error(what: str, output: str) -> Exception:
    from sqlitequeue.bench.errors import KafkaError

    return KafkaError(f"{what}:\n{output}")


def _progress_line(row: Mapping[str, Any]) -> str:
    where = f"{row['tool']} -> {row['target']}"
    if "latency" in row:
        return f"{where}: e2e avg {row['mean_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms"
    return f"{where}: {row['records_per_s']:,.0f} records/s"


# -- figures, summary and results ------------------------------------------------------------

#: (metric, workload, table, tool, column) of each median in metrics.csv.
_MEDIANS = (
    ("records_per_s", "producer-performance", "producers", "ProducerPerformance", "records_per_s"),
    ("mb_per_s", "producer-performance", "producers", "ProducerPerformance", "mb_per_s"),
    (
        "latency_ms.mean",
        "producer-performance",
        "producers",
        "ProducerPerformance",
        "latency_ms_mean",
    ),
    (
        "latency_ms.p50",
        "producer-performance",
        "producers",
        "ProducerPerformance",
        "latency_ms_p50",
    ),
    (
        "latency_ms.p99",
        "producer-performance",
        "producers",
        "ProducerPerformance",
        "latency_ms_p99",
    ),
    ("e2e_latency_ms.mean", "end-to-end-latency", "latency", "EndToEndLatency", "mean_ms"),
    ("e2e_latency_ms.p50", "end-to-end-latency", "latency", "EndToEndLatency", "p50_ms"),
    ("e2e_latency_ms.p99", "end-to-end-latency", "latency", "EndToEndLatency", "p99_ms"),
    ("e2e_latency_ms.p99.9", "end-to-end-latency", "latency", "EndToEndLatency", "p99_9_ms"),
    ("e2e_latency_ms.mean", "paced-e2e", "latency", "paced", "mean_ms"),
    ("e2e_latency_ms.p50", "paced-e2e", "latency", "paced", "p50_ms"),
    ("e2e_latency_ms.p99", "paced-e2e", "latency", "paced", "p99_ms"),
    ("e2e_latency_ms.max", "paced-e2e", "latency", "paced", "max_ms"),
)

Figures = dict[tuple[str, str, str], float]


def figures(comparison: Comparison, found: Measurements) -> Figures:
    """``(target, workload, metric) -> median over the runs``, as metrics.csv stores them."""
    paced = f"confluent-kafka@{comparison.rate}/s"
    out: Figures = {}
    for target in comparison.against:
        for metric, workload, table, tool, column in _MEDIANS:
            value = found.median(table, target, paced if tool == "paced" else tool, column)
            if value is not None:
                out[(target, workload, metric)] = value
    for metric, value in found.process.items():
        out[("gateway", "server", metric)] = value
    return out


def summary_table(found: Figures, rate: int) -> list[list[str]]:
    """The summary as rows of text: figure, broker, gateway, gateway/broker, issue 14's target.

    ``found`` is :func:`figures`' mapping (or the same rows read back from metrics.csv).
    """
    from sqlitequeue.bench.report.formatting import format_number

    def row(label: str, workload: str, metric: str, target: str = "") -> list[str]:
        broker = found.get(("broker", workload, metric))
        gateway = found.get(("gateway", workload, metric))
        ratio = gateway / broker if broker and gateway is not None else None
        shown = f"{ratio:.2f}x" if ratio is not None else "-"
        return [label, format_number(broker), format_number(gateway), shown, target]

    pp, e2e, paced = "producer-performance", "end-to-end-latency", "paced-e2e"
    rows = [
        row("ProducerPerformance records/s", pp, "records_per_s", _share_target(found)),
        row("ProducerPerformance MB/s", pp, "mb_per_s"),
        row("ProducerPerformance latency avg ms", pp, "latency_ms.mean"),
        row("ProducerPerformance latency p50 ms", pp, "latency_ms.p50"),
        row("ProducerPerformance latency p99 ms", pp, "latency_ms.p99"),
        row("EndToEndLatency avg ms", e2e, "e2e_latency_ms.mean"),
        row("EndToEndLatency p50 ms", e2e, "e2e_latency_ms.p50"),
        row("EndToEndLatency p99 ms", e2e, "e2e_latency_ms.p99"),
        row(f"confluent-kafka at {rate:,} msg/s: e2e p50 ms", paced, "e2e_latency_ms.p50"),
        row(
            f"confluent-kafka at {rate:,} msg/s: e2e p99 ms",
            paced,
            "e2e_latency_ms.p99",
            _p99_target(found),
        ),
    ]
    rss = found.get(("gateway", "server", "rss_bytes.peak"))
    if rss is not None:
        mb = rss / 2**20
        met = "met" if mb < GATEWAY_MAX_RSS_MB else "NOT met"
        rows.append(
            [
                "server peak RSS MB",
                "-",
                format_number(mb),
                "-",
                f"< {GATEWAY_MAX_RSS_MB:g} MB: {met}",
            ]
        )
    idle = found.get(("gateway", "server", "cpu_percent.idle"))
    if idle is not None:
        met = "met" if idle < GATEWAY_MAX_IDLE_CPU else "NOT met"
        target = f"< {GATEWAY_MAX_IDLE_CPU:g}% of a core: {met}"
        rows.append(["server idle CPU %, alone", "-", format_number(idle), "-", target])
    polled = found.get(("gateway", "server", "cpu_percent.idle_one_consumer"))
    if polled is not None:  # not idle: the consumer fetches (every 100 ms) and heartbeats
        label = "server CPU %, one consumer polling an idle topic"
        rows.append([label, "-", format_number(polled), "-", "shown, not a target"])
    return rows


def _share_target(found: Figures) -> str:
    broker = found.get(("broker", "producer-performance", "records_per_s"))
    gateway = found.get(("gateway", "producer-performance", "records_per_s"))
    if not broker or gateway is None:
        return f">= {GATEWAY_MIN_SHARE:g}x"
    met = "met" if gateway / broker >= GATEWAY_MIN_SHARE else "NOT met"
    return f">= {GATEWAY_MIN_SHARE:g}x: {met}"


def _p99_target(found: Figures) -> str:
    broker = found.get(("broker", "paced-e2e", "e2e_latency_ms.p99"))
    gateway = found.get(("gateway", "paced-e2e", "e2e_latency_ms.p99"))
    if broker is None or gateway is None:
        return "<= broker"
    return f"<= broker: {'met' if gateway <= broker else 'NOT met'}"


SUMMARY_HEADER = [
    "figure (median of the runs)",
    "broker",
    "gateway",
    "gateway/broker",
    "issue 14 target",
]


def text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Rows aligned for a terminal: the first column left, the others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(r) for r in rows)]


def summary_lines(comparison: Comparison, found: Measurements) -> list[str]:
    """The terminal summary: the run's settings, the client check, the gateway/broker table."""
    c = comparison
    network = c.network.name if c.network is not None else "loopback"
    lines = [
        "",
        f"{c.count:,} records x {c.size} B, {c.partitions} partition(s), profile {c.profile}, "
        f"acks={c.acks}, network {network}; EndToEndLatency {c.e2e_count:,} records; "
        f"paced e2e {c.rate:,} msg/s for {c.rate_seconds:g} s",
    ]
    java = found.median("producers", "broker", "ProducerPerformance", "records_per_s")
    ours = found.median("producers", "broker", "kafka-confluent", "records_per_s")
    if java is not None and ours is not None:
        ratio = java / ours
        verdict = "within" if ratio <= TARGET_RATIO else "OUTSIDE"
        lines += [
            f"our client on the broker: ProducerPerformance {java:,.0f} records/s, "
            f"kafka-confluent {ours:,.0f}; ratio {ratio:.2f}x ({verdict} the "
            f"{TARGET_RATIO:g}x target)",
        ]
    lines += ["", *text_table(SUMMARY_HEADER, summary_table(figures(c, found), c.rate))]
    return lines


def write_results(
    root: str, comparison: Comparison, found: Measurements, broker: dict[str, Any] | None
) -> Path:
    """Write a results folder (kind ``fairness``) and return its path.

    Files: run.json; fairness.csv (one row per producer run); latency.csv (one row per
    latency run); metrics.csv (long format: the medians of :func:`figures`, backends
    ``broker`` and ``gateway``; and, when the broker ran, ``publish_rate_mean`` of
    ProducerPerformance and kafka-confluent on workload ``produce-<size>B`` with
    kafka-confluent's ``fairness_ratio``).
    """
    from sqlitequeue.bench.results import RunWriter, new_run_id

    c = comparison
    with RunWriter(Path(root), new_run_id("fairness"), kind="fairness") as writer:
        writer.metadata(
            broker=broker,
            gateway=c.gateway_info,
            backends={"kafka-confluent": c.backend_info} if c.backend_info else {},
            producer_performance={"command": [PRODUCER_PERFORMANCE, *c.producer_performance_args]},
            network=(c.network.to_dict() if c.network is not None else None),
            fairness={
                "count": c.count,
                "size": c.size,
                "partitions": c.partitions,
                "profile": c.profile,
                "acks": c.acks,
                "against": list(c.against),
                "e2e_count": c.e2e_count,
                "rate": c.rate,
                "rate_seconds": c.rate_seconds,
                "idle_seconds": c.idle_seconds,
                "target_ratio": TARGET_RATIO,
            },
        )
        writer.table("fairness", found.producers)
        writer.table("latency", found.latency)
        writer.metrics((t, w, m, None, v) for (t, w, m), v in figures(c, found).items())
        java = found.median("producers", "broker", "ProducerPerformance", "records_per_s")
        ours = found.median("producers", "broker", "kafka-confluent", "records_per_s")
        if java is not None and ours is not None:
            workload = f"produce-{c.size}B"
            writer.metric("ProducerPerformance", workload, "publish_rate_mean", java)
            writer.metric("kafka-confluent", workload, "publish_rate_mean", ours)
            writer.metric("kafka-confluent", workload, "fairness_ratio", java / ours)
        return writer.dir
