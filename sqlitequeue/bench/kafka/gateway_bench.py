"""The parts of ``bench fairness`` beyond Kafka's own tools: a paced end-to-end probe with
confluent-kafka, and the gateway server's memory and idle CPU.

* :func:`end_to_end_at_rate`: a producer stamps each record with its send time at a fixed
  rate, a consumer in the same process measures receive - stamp (issue 14's "end to end at
  1,000 msg/s with kafka-confluent"); every record sent must arrive, else it fails naming
  how many did not.
* :class:`PeakRss`: samples a process's resident memory while a benchmark runs; ``peak``
  is the largest seen.
* :func:`idle_cpu_percent` and :func:`idle_cpu_with_consumer`: the CPU a process uses, in
  percent of one core, while nothing happens (alone, then with one consumer long-polling).

Every function raises :class:`~sqlitequeue.bench.errors.BenchError` when its clients cannot
do their part (e.g. the consumer gets no partition within a minute). The command is
``sqlitequeue bench fairness`` (see :mod:`sqlitequeue.bench.kafka.fairness`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping
from typing import Any

import psutil

from sqlitequeue.bench.errors import BenchError

#: How long a consumer may take to be assigned its partition (seconds).
ASSIGN_TIMEOUT_S = 60.0
#: How long after the last send of the paced probe every record must have arrived (seconds).
LATE_AFTER_S = 30.0


def create_topic(
    bootstrap: str, topic: str, partitions: int, configs: Mapping[str, Any] | None = None
) -> None:
    """Create ``topic`` (replication factor 1) with the admin client; BenchError on failure."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {key: str(value) for key, value in (configs or {}).items()}
    new = NewTopic(topic, partitions, 1, config=config)
    for future in admin.create_topics([new]).values():
        try:
            future.result(30)
        except Exception as exc:  # KafkaException, or a timeout
            raise BenchError(f"could not create topic {topic} at {bootstrap}: {exc}") from exc


def _assigned_consumer(bootstrap: str, topic: str, group: str) -> Any:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "fetch.min.bytes": 1,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + ASSIGN_TIMEOUT_S
    while not consumer.assignment():
        if time.monotonic() > deadline:
            consumer.close()
            raise BenchError(
                f"the consumer got no partition of {topic} at {bootstrap} "
                f"within {ASSIGN_TIMEOUT_S:.0f} s"
            )
        consumer.poll(0.1)
    return consumer


def end_to_end_at_rate(
    bootstrap: str, topic: str, rate: int, seconds: float, acks: str = "all"
) -> dict[str, float]:
    """Produce ``rate`` msg/s for ``seconds`` and return end-to-end latency figures (ms).

    Keys: ``sent``, ``received`` (equal), ``mean``, ``p50``, ``p99``, ``max``. The topic is
    created with one partition. Raises BenchError when any record sent has not arrived at
    the consumer :data:`LATE_AFTER_S` after the last send (percentiles of what arrived
    would hide the lost and late ones), saying how many.
    """
    from confluent_kafka import Producer

    create_topic(bootstrap, topic, 1)
    consumer = _assigned_consumer(bootstrap, topic, f"e2e-{topic}")
    latencies: list[float] = []
    total = max(1, int(rate * seconds))
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() and len(latencies) < total:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                latencies.append((time.time() - float(message.value() or 0)) * 1000)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0})
    start = time.monotonic()
    for i in range(total):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        producer.produce(topic, value=b"%.6f" % time.time())
        producer.poll(0)
    unacknowledged = producer.flush(LATE_AFTER_S)
    reader.join(LATE_AFTER_S)
    done.set()
    reader.join(5)
    consumer.close()
    received = len(latencies)
    if received < total:
        raise BenchError(
            f"{total - received:,} of the {total:,} records sent to {topic} at {bootstrap} "
            f"({rate:,} msg/s for {seconds:g} s) did not reach the consumer within "
            f"{LATE_AFTER_S:g} s of the last send ({unacknowledged:,} not acknowledged): "
            "the latency figures would hide them. Check the server (its log), or lower "
            "--rate to one it sustains"
        )
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "sent": float(total),
        "received": float(received),
        "mean": statistics.fmean(ordered),
        "p50": pct(0.5),
        "p99": pct(0.99),
        "max": ordered[-1],
    }


class PeakRss(threading.Thread):
    """Samples a process's RSS every 0.1 s until :meth:`stop`; ``peak`` is the largest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        """Sample until stopped or the process is gone."""
        while not self._done.wait(0.1):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        """Stop sampling; return the peak RSS in bytes."""
        self._done.set()
        self.join(5)
        return self.peak


def idle_cpu_percent(pid: int, seconds: float) -> float:
    """CPU used by ``pid`` over the next ``seconds``, in percent of one core."""
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(process.cpu_times()[:2]) - before) / seconds * 100


def idle_cpu_with_consumer(pid: int, bootstrap: str, topic: str, seconds: float) -> float:
    """Like :func:`idle_cpu_percent` while one consumer long-polls the idle ``topic``."""
    consumer = _assigned_consumer(bootstrap, topic, f"idle-{topic}")
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            consumer.poll(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(min(2.0, seconds))  # caught up with the topic before measuring
    try:
        return idle_cpu_percent(pid, seconds)
    finally:
        stop.set()
        poller.join()
        consumer.close()
