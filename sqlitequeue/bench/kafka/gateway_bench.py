"""`sqlitequeue serve` beside a real Kafka broker, in one run (issue 14's performance figures).

``python -m sqlitequeue.bench.kafka.gateway_bench [--records 200000] [--size 1024]``

1. Kafka's ProducerPerformance (Java client, acks=all) against the broker and the gateway,
   alternating, ``--repeats`` times each: records/s and latency as the tool reports them.
2. End to end at a fixed rate (``--rate``, default 1,000 msg/s) with confluent-kafka: a
   producer stamps each record, a consumer in the same process measures receive - stamp.
3. The gateway process's peak RSS under that load, and its CPU while idle (no client, then
   one idle consumer connected).

Writes ``results/<run-id>/`` (run.json + metrics.csv, long format; backends ``kafka`` and
``gateway``). A benchmark, not a test: it needs the Java jars and takes a few minutes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from sqlitequeue.bench.kafka import distribution
from sqlitequeue.bench.kafka.broker import KafkaBroker
from sqlitequeue.bench.kafka.fairness import SUMMARY
from sqlitequeue.bench.results import DEFAULT_ROOT, RunWriter, new_run_id

LATENCY = re.compile(r"([\d.]+) ms avg latency.*?(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th")


def producer_performance(bootstrap: str, topic: str, records: int, size: int) -> dict[str, float]:
    """Run ProducerPerformance once (acks=all); return records/s and its latency figures."""
    dist = distribution.ensure()
    logs = tempfile.mkdtemp(prefix="producer-performance-")
    done = subprocess.run(
        [
            *dist.tool_command("org.apache.kafka.tools.ProducerPerformance", logs),
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    shutil.rmtree(logs, ignore_errors=True)
    found = SUMMARY.findall(done.stdout)
    latency = LATENCY.findall(done.stdout)
    if done.returncode != 0 or not found or not latency:
        raise RuntimeError(
            f"ProducerPerformance failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    avg, p50, p95, p99 = (float(v) for v in latency[-1])
    return {
        "records_per_s": float(found[-1][1]),
        "mb_per_s": float(found[-1][2]),
        "latency_ms.mean": avg,
        "latency_ms.p50": p50,
        "latency_ms.p95": p95,
        "latency_ms.p99": p99,
    }


def end_to_end(bootstrap: str, topic: str, rate: int, seconds: float) -> dict[str, float]:
    """Produce ``rate`` msg/s for ``seconds`` and measure end-to-end latency percentiles."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-{topic}",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 1,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the e2e consumer got no partition of {topic} within 60 s")
        consumer.poll(0.1)
    latencies: list[float] = []
    total = int(rate * seconds)
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() and len(latencies) < total:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                latencies.append((time.time() - float(message.value() or 0)) * 1000)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        producer.produce(topic, value=b"%.6f" % time.time())
        producer.poll(0)
    producer.flush(30)
    reader.join(30)
    done.set()
    consumer.close()
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "received": float(len(ordered)),
        "e2e_latency_ms.p50": pct(0.5),
        "e2e_latency_ms.p99": pct(0.99),
        "e2e_latency_ms.max": ordered[-1],
        "e2e_latency_ms.mean": statistics.fmean(ordered),
    }


def start_gateway(path: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlitequeue", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    found = re.search(r"on (\S+:\d+)", process.stdout.readline())
    if not found:
        raise RuntimeError("sqlitequeue serve did not start")
    return process, found.group(1)


class PeakRss(threading.Thread):
    """Samples a process's RSS every 0.1 s; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self.peak = max(self.peak, self.process.memory_info().rss)


def idle_cpu_percent(pid: int, seconds: float) -> float:
    """CPU used by ``pid`` over ``seconds``, in percent of one core."""
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(process.cpu_times()[:2]) - before) / seconds * 100


def idle_cpu_with_consumer(pid: int, bootstrap: str, topic: str, seconds: float) -> float:
    """Like :func:`idle_cpu_percent` while one consumer long-polls an idle topic."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "idle"})
    consumer.subscribe([topic])
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            consumer.poll(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(5)  # joined and caught up
    try:
        return idle_cpu_percent(pid, seconds)
    finally:
        stop.set()
        poller.join()
        consumer.close()


def run(args: argparse.Namespace) -> Path:
    writer = RunWriter(Path(args.out), new_run_id("gateway"), kind="gateway")
    rows: list[tuple[str, str, str, float | None, float]] = []
    with tempfile.TemporaryDirectory() as tmp, KafkaBroker.auto().start() as broker:
        process, gateway = start_gateway(Path(tmp) / "gateway.db")
        rss = PeakRss(process.pid)
        rss.start()
        try:
            targets = {"kafka": broker.bootstrap_servers, "gateway": gateway}
            writer.metadata(
                backends={"kafka": broker.describe(), "gateway": {"bootstrap": gateway}}
            )
            for repeat in range(args.repeats):
                for backend, bootstrap in targets.items():
                    topic = f"perf-{repeat}"
                    figures = producer_performance(bootstrap, topic, args.records, args.size)
                    print(
                        f"{backend}: ProducerPerformance {figures['records_per_s']:,.0f} records/s"
                    )
                    rows += [
                        (backend, "producer-performance", k, None, v) for k, v in figures.items()
                    ]
            for backend, bootstrap in targets.items():
                figures = end_to_end(bootstrap, f"e2e-{backend}", args.rate, args.seconds)
                print(f"{backend}: e2e p99 {figures['e2e_latency_ms.p99']:.2f} ms")
                rows += [(backend, "e2e", k, None, v) for k, v in figures.items()]
            rss.stop.set()
            rows.append(("gateway", "process", "rss_bytes.peak", None, float(rss.peak)))
            idle = idle_cpu_percent(process.pid, 10)
            rows.append(("gateway", "process", "cpu_percent.idle", None, idle))
            idle = idle_cpu_with_consumer(process.pid, gateway, "e2e-gateway", 10)
            rows.append(("gateway", "process", "cpu_percent.idle_one_consumer", None, idle))
        finally:
            process.terminate()
            process.wait(30)
    writer.metrics(rows)
    writer.metadata(records=args.records, size=args.size, rate=args.rate, repeats=args.repeats)
    writer.close()
    print(f"results: {writer.dir}")
    return writer.dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", default=str(DEFAULT_ROOT))
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
