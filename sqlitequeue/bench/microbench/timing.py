"""Measure one repeat of one pattern: the ``time_*`` functions and their worker processes.

Every pattern drives its subject through the seam of :mod:`sqlitequeue.bench.backends.base`
(see :mod:`sqlitequeue.bench.microbench.subject` for how each maps onto send/flush/poll/
commit), so ours, the raw loops and the peers pay the same per-call overhead. Single-process
patterns time calls on an opened subject. Multi-process patterns (end-to-end latency, 4
draining consumers, 2 stream groups) start worker processes with the ``spawn`` method; the
workers are module-level functions (pickled by qualified name) that build their own subject
from its :class:`BackendSpec`. :func:`sleep_jitter` measures the machine's noise floor, and
:func:`thread_handoff_us` what waking a thread costs, and :func:`fsync_us` the floor under
what one durable commit waits for (group commit's gain depends on both).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import statistics
import struct
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlitequeue.bench.backends.base import BackendSpec, Consumer, Producer
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.microbench.patterns import (
    CLAIM_BATCH,
    DRAIN_CONSUMERS,
    GROUP,
    IDLE_SECONDS,
    LATENCY_WARMUP,
    LIFECYCLE_POLL_BATCH,
    PAYLOAD_BYTES,
    PUT_BATCH,
    PUT_THREADS,
    PUT_THREADS_WARMUP,
    STREAM_GROUPS,
    TOPIC,
    payloads,
)
from sqlitequeue.bench.microbench.subject import Subject, open_subject

Sample = tuple[dict[str, float], str]


class _Cap:
    """Says when a measurement ran out of its time budget."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + seconds
        self.capped = False

    def over(self, calls: int, every: int = 64) -> bool:
        """True once the budget is spent; the clock is read every ``every`` calls."""
        if calls % every == 0 and time.perf_counter() > self.deadline:
            self.capped = True
        return self.capped

    def rate(self, done: int) -> float:
        return done / max(time.perf_counter() - self.start, 1e-9)


def _sample(rate: float, capped: bool, done: int, planned: int) -> Sample:
    note = "stopped by the time budget (rate of a partial run)" if capped else ""
    return {"rate": rate, "done": done, "planned": planned}, note


def _checked(clock: _Cap, done: int, planned: int, verb: str, what: str) -> Sample:
    """The sample of a read-back pattern; an ERROR note when a finished run missed some."""
    sample, note = _sample(clock.rate(done), clock.capped, done, planned)
    if not clock.capped and done != planned:
        note = f"ERROR: {verb} {done:,} of {planned:,} {what}"
    return sample, note


def fill(subject: Subject, items: list[bytes]) -> None:
    """Send ``items``, flushing every PUT_BATCH (set-up, not timed)."""
    producer = subject.producer(TOPIC)
    for start in range(0, len(items), PUT_BATCH):
        for data in items[start : start + PUT_BATCH]:
            producer.send(None, data)
        producer.flush()
    producer.close()


def _consume(consumer: Consumer, batch: int, planned: int, clock: _Cap) -> int:
    """``poll(batch, 0)`` + ``commit()`` until nothing is left, ``planned`` records were
    read or the time budget is spent; return how many were read."""
    poll, commit = consumer.poll, consumer.commit
    every = 64 if batch == 1 else 1
    done = calls = 0
    while done < planned and not clock.over(calls, every):
        records = poll(batch, 0)
        if not records:
            break
        commit()
        done += len(records)
        calls += 1
    return done


def time_sends(subject: Subject, count: int, cap: float) -> Sample:
    """``send`` + ``flush`` ``count`` payloads one at a time (put / append one at a time)."""
    producer = subject.producer(TOPIC)
    send, flush = producer.send, producer.flush
    clock = _Cap(cap)
    done = 0
    for data in payloads(count):
        if clock.over(done):
            break
        send(None, data)
        flush()
        done += 1
    return _sample(clock.rate(done), clock.capped, done, count)


def time_threaded_sends(subject: Subject, count: int, cap: float, threads: int) -> Sample:
    """``count`` payloads sent one at a time (``send`` + ``flush``) from ``threads`` threads,
    each with its own producer on the subject's one queue object (the group-commit pattern:
    at FULL their puts may share commits); msgs/s from the moment every thread is ready
    (started, its payloads built) to the last end. First, untimed, PUT_THREADS_WARMUP
    payloads are sent one at a time from one thread, so every row is timed with the file's
    WAL at its working size."""
    producers = [subject.producer(TOPIC) for _ in range(threads)]
    send, flush = producers[0].send, producers[0].flush
    for data in payloads(PUT_THREADS_WARMUP):
        send(None, data)
        flush()
    share = max(1, count // threads)
    shares = [payloads(share) for _ in range(threads)]
    clocks: list[_Cap] = []
    ready = threading.Barrier(threads, action=lambda: clocks.append(_Cap(cap)))
    sent = [0] * threads
    errors: list[BaseException] = []

    def run(n: int) -> None:
        send, flush = producers[n].send, producers[n].flush
        try:
            ready.wait()
            clock = clocks[0]
            for data in shares[n]:
                if clock.over(sent[n], 16):
                    break
                send(None, data)
                flush()
                sent[n] += 1
        except BaseException as exc:  # reported by the measuring thread
            errors.append(exc)
            ready.abort()  # no other thread waits for this one at the barrier

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    try:
        for worker in workers:
            worker.start()
    except BaseException:
        ready.abort()  # the started ones stop waiting for the rest
        raise
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    done = sum(sent)
    clock = clocks[0]
    return _sample(clock.rate(done), clock.capped, done, share * threads)


def _send_batches(producer: Producer, batches: list[list[bytes]], clock: _Cap) -> int:
    send, flush = producer.send, producer.flush
    done = 0
    for batch in batches:
        if time.perf_counter() > clock.deadline:
            clock.capped = True
            break
        for data in batch:
            send(None, data)
        flush()
        done += len(batch)
    return done


def time_send_batches(subject: Subject, count: int, cap: float) -> Sample:
    """PUT_BATCH ``send`` + one ``flush`` at a time (put_many / append_many(PUT_BATCH))."""
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    producer = subject.producer(TOPIC)
    clock = _Cap(cap)
    done = _send_batches(producer, batches, clock)
    return _sample(clock.rate(done), clock.capped, done, count)


def time_get_ack(subject: Subject, count: int, cap: float) -> Sample:
    """Fill ``count`` messages (untimed), then ``poll(1, 0)`` + ``commit()`` until empty."""
    fill(subject, payloads(count))
    consumer = subject.consumer(TOPIC, GROUP)
    clock = _Cap(cap)
    done = _consume(consumer, 1, count, clock)
    return _checked(clock, done, count, "got", "messages")


def time_get_many(subject: Subject, count: int, cap: float) -> Sample:
    """Fill ``count`` messages (untimed), then ``poll(CLAIM_BATCH, 0)`` + ``commit()``."""
    fill(subject, payloads(count))
    consumer = subject.consumer(TOPIC, GROUP)
    clock = _Cap(cap)
    done = _consume(consumer, CLAIM_BATCH, count, clock)
    return _checked(clock, done, count, "got", "messages")


def time_poll_commit(subject: Subject, count: int, cap: float) -> Sample:
    """Fill ``count`` records (untimed), then ``poll(CLAIM_BATCH, 0)`` + ``commit()``."""
    fill(subject, payloads(count))
    consumer = subject.consumer(TOPIC, GROUP)
    clock = _Cap(cap)
    done = _consume(consumer, CLAIM_BATCH, count, clock)
    return _checked(clock, done, count, "read", "records")


def time_lifecycle(subject: Subject, count: int, cap: float) -> Sample:
    """Send ``count`` records in flushes of PUT_BATCH, then read and commit them all with
    ``poll(LIFECYCLE_POLL_BATCH, 0)``; records/s over both."""
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    total = len(batches) * PUT_BATCH
    consumer = subject.consumer(TOPIC, GROUP)
    producer = subject.producer(TOPIC)
    clock = _Cap(cap * 2)
    _send_batches(producer, batches, clock)
    done = _consume(consumer, LIFECYCLE_POLL_BATCH, total, clock)
    return _checked(clock, done, total, "read", "records")


# -- multi-process patterns --------------------------------------------------------------

_MP = mp.get_context("spawn")
_WORKER_TIMEOUT = 60.0


class WorkerReport(NamedTuple):
    """What a worker process puts on the results queue: its result, or the error it raised."""

    role: str
    ok: bool
    detail: Any  # the body's result when ok, else "ErrorType: message"


class ReaderResult(NamedTuple):
    """A draining consumer's or a group reader's result."""

    done: int
    end_ns: int  # time.monotonic_ns() when it stopped
    capped: bool


class LatencyResult(NamedTuple):
    """The latency consumer's result."""

    latencies: bytes  # array("d") of milliseconds, after the warm-up
    received: int
    idle_cpu: float


def _report_errors(results: Any, role: str, body: Callable[[], Any]) -> None:
    """Run a worker body; put a WorkerReport with its result, or the error it raised."""
    try:
        results.put(WorkerReport(role, True, body()))
    except BaseException as exc:
        results.put(WorkerReport(role, False, f"{type(exc).__name__}: {exc}"))


def _latency_budget(seconds: float) -> float:
    """How long a latency run may last before its workers give up (an overloaded system)."""
    return seconds * 1.5 + 2.0


def _latency_producer(spec: BackendSpec, rate: int, count: int, ready: Any, results: Any) -> None:
    def body() -> dict[str, float]:
        with open_subject(spec) as subject:
            producer = subject.producer(TOPIC)
            send, flush = producer.send, producer.flush
            pad = b"x" * (PAYLOAD_BYTES - 8)
            period = 1e9 / rate
            if not ready.wait(_WORKER_TIMEOUT):
                raise BenchError("the latency consumer did not start")
            start = time.monotonic_ns() + 20_000_000
            give_up = start + int(_latency_budget(count / rate) * 1e9)
            sent = 0
            for i in range(count):
                due = start + int(i * period)
                now = time.monotonic_ns()
                if due > now:
                    time.sleep((due - now) / 1e9)
                    now = time.monotonic_ns()
                elif now > give_up:
                    break
                send(None, struct.pack("<q", now) + pad)  # stamped just before the send
                flush()
                sent += 1
            elapsed = (time.monotonic_ns() - start) / 1e9
            producer.close()
        return {"sent": sent, "sent_rate": sent / elapsed}

    _report_errors(results, "producer", body)


def _latency_consumer(
    spec: BackendSpec, count: int, skip: int, budget: float, ready: Any, results: Any
) -> None:
    def body() -> LatencyResult:
        with open_subject(spec) as subject:
            consumer = subject.consumer(TOPIC, GROUP)
            latencies = array("d")
            ready.set()
            deadline = time.monotonic() + budget + 1.0
            got = 0
            while got < count and time.monotonic() < deadline:
                records = consumer.poll(CLAIM_BATCH, 0.2)
                if not records:
                    continue
                now = time.monotonic_ns()
                for record in records:
                    got += 1
                    if got > skip:
                        latencies.append((now - struct.unpack_from("<q", record.payload)[0]) / 1e6)
                consumer.commit()
            idle = _idle_cpu_percent(consumer)
            consumer.close()
        return LatencyResult(latencies.tobytes(), got, idle)

    _report_errors(results, "consumer", body)


def _idle_cpu_percent(consumer: Consumer) -> float:
    """CPU used (% of one core) while blocked in poll for IDLE_SECONDS, nothing coming."""
    cpu, wall = time.process_time(), time.monotonic()
    while (left := IDLE_SECONDS - (time.monotonic() - wall)) > 0:
        consumer.poll(1, left)
    return 100.0 * (time.process_time() - cpu) / (time.monotonic() - wall)


def _collect(results: Any, procs: list[Any], expected: int) -> list[WorkerReport]:
    """Gather ``expected`` worker reports; raise BenchError naming a failed worker."""
    got: list[WorkerReport] = []
    deadline = time.monotonic() + _WORKER_TIMEOUT * 2
    while len(got) < expected:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError("benchmark workers did not finish in time")
        try:
            got.append(results.get(timeout=min(left, 1.0)))
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in procs) and results.empty():
                raise BenchError("a benchmark worker died without reporting") from None
    for p in procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    errors = [f"{r.role}: {r.detail}" for r in got if not r.ok]
    if errors:
        raise BenchError("; ".join(errors))
    return got


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def time_latency(spec: BackendSpec, rate: int, seconds: float) -> Sample:
    """Paced open-loop producer process -> consumer process; end-to-end latency in ms.

    The producer sends ``rate * seconds`` messages on a fixed schedule, each stamped with
    ``time.monotonic_ns()`` just before its ``send`` + ``flush``; the consumer blocks in
    ``poll(CLAIM_BATCH, timeout)`` (one message when it keeps up, a batch when it fell
    behind; peers without a batch claim return one at a time), takes the time as soon as
    the call returns, commits and ignores the first ``LATENCY_WARMUP`` seconds. Returns
    p50/p95/p99/max, the rate actually sent, and ``idle_cpu``: the consumer's CPU (% of a
    core) while it then blocks ``IDLE_SECONDS`` in ``poll`` with nothing arriving.
    """
    count = max(10, int(rate * seconds))
    skip = min(count // 2, int(rate * LATENCY_WARMUP))
    with open_subject(spec) as subject:
        subject.create_topic(TOPIC)  # create the file before two processes race to do it
    ready, results = _MP.Event(), _MP.Queue()
    procs = [
        _MP.Process(
            target=_latency_consumer,
            args=(spec, count, skip, _latency_budget(seconds), ready, results),
        ),
        _MP.Process(target=_latency_producer, args=(spec, rate, count, ready, results)),
    ]
    for p in procs:
        p.start()
    got = {r.role: r.detail for r in _collect(results, procs, 2)}
    consumer: LatencyResult = got["consumer"]
    arr = array("d")
    arr.frombytes(consumer.latencies)
    received, sent = consumer.received, int(got["producer"]["sent"])
    ordered = sorted(arr)
    if not ordered:
        raise BenchError("the latency consumer received nothing")
    sample = {
        "p50": _percentile(ordered, 0.50),
        "p95": _percentile(ordered, 0.95),
        "p99": _percentile(ordered, 0.99),
        "max": ordered[-1],
        "rate": got["producer"]["sent_rate"],
        "idle_cpu": float(consumer.idle_cpu),
    }
    sample["received_fraction"] = received / max(sent, 1)
    notes = []
    if sent < count or sample["rate"] < rate * 0.95:
        notes.append("producer fell behind the rate")
    if received > sent:
        notes.append("ERROR: received more than was sent")
    elif received < sent:
        notes.append("consumer fell behind (percentiles are a lower bound)")
    return sample, "; ".join(notes)


def _run_together(procs: list[Any], barrier: Any, results: Any) -> tuple[int, float, bool]:
    """Start worker processes that meet at ``barrier`` and each report a ReaderResult;
    return the total done, the combined rate from the barrier to the last end, and whether
    any worker hit its time budget."""
    for p in procs:
        p.start()
    barrier.wait(_WORKER_TIMEOUT)
    start = time.monotonic_ns()
    got: list[ReaderResult] = [r.detail for r in _collect(results, procs, len(procs))]
    done = sum(r.done for r in got)
    elapsed = (max(r.end_ns for r in got) - start) / 1e9
    return done, done / max(elapsed, 1e-9), any(r.capped for r in got)


def _reader(
    spec: BackendSpec, group: str, batch: int, planned: int, cap: float, barrier: Any, results: Any
) -> None:
    """A worker process: join ``group``, meet at ``barrier``, then ``poll(batch, 0)`` +
    ``commit()`` until nothing is left (or ``planned`` records)."""

    def body() -> ReaderResult:
        with open_subject(spec) as subject:
            consumer = subject.consumer(TOPIC, group)
            barrier.wait(_WORKER_TIMEOUT)
            clock = _Cap(cap)
            done = _consume(consumer, batch, planned, clock)
            end = time.monotonic_ns()
            consumer.close()
        return ReaderResult(done, end, clock.capped)

    _report_errors(results, f"reader of group {group}", body)


def _fill_and_read_together(
    spec: BackendSpec, count: int, readers: list[tuple[str, int, int]], cap: float
) -> tuple[int, float, bool]:
    """Fill ``count`` records, then start one process per (group, batch, planned) reader."""
    with open_subject(spec) as subject:
        fill(subject, payloads(count))
    barrier, results = _MP.Barrier(len(readers) + 1), _MP.Queue()
    procs = [
        _MP.Process(target=_reader, args=(spec, *reader, cap, barrier, results))
        for reader in readers
    ]
    return _run_together(procs, barrier, results)


def time_drain(spec: BackendSpec, count: int, cap: float) -> Sample:
    """Fill ``count`` messages, then DRAIN_CONSUMERS processes of one group ``poll(1, 0)`` +
    ``commit()`` until it is empty."""
    readers = [(GROUP, 1, count)] * DRAIN_CONSUMERS
    done, rate, capped = _fill_and_read_together(spec, count, readers, cap)
    sample, note = _sample(rate, capped, done, count)
    if not capped and done != count:
        note = f"ERROR: drained {done:,} of {count:,} messages"
    return sample, note


def time_groups(spec: BackendSpec, count: int, cap: float) -> Sample:
    """Fill ``count`` records, then STREAM_GROUPS processes (one group each) read them all
    with ``poll(CLAIM_BATCH, 0)`` + ``commit()`` at the same time; records delivered per
    second in total."""
    readers = [(f"g{i}", CLAIM_BATCH, count) for i in range(STREAM_GROUPS)]
    done, rate, capped = _fill_and_read_together(spec, count, readers, cap)
    planned = count * STREAM_GROUPS
    sample, note = _sample(rate, capped, done, planned)
    if not capped and done != planned:
        note = f"ERROR: read {done:,} of {planned:,} records"
    return sample, note


def thread_handoff_us(threads: int = PUT_THREADS, hops: int = 4000) -> float:
    """Microseconds per hop of a token passed round ``threads`` threads, each waiting on
    its own lock: a thread wakes, wakes the next and waits again, with no other work. On
    a VM whose idle cores halt, each hop is an inter-processor wake-up through the
    hypervisor; group commit pays one per thread between two fsyncs (see
    sqlitequeue/_group_commit.py), and a lone put one as its fsync completes."""
    locks = [threading.Lock() for _ in range(threads)]
    for lock in locks:
        lock.acquire()
    passed = [0]

    def relay(n: int) -> None:
        mine, following = locks[n], locks[(n + 1) % threads]
        while True:
            mine.acquire()
            passed[0] += 1
            following.release()
            if passed[0] >= hops:
                return

    ring = [threading.Thread(target=relay, args=(n,), daemon=True) for n in range(threads)]
    for thread in ring:
        thread.start()
    start = time.perf_counter()
    locks[0].release()
    for thread in ring:
        thread.join()
    return (time.perf_counter() - start) / passed[0] * 1e6


#: fsync_us rewrites this many blocks of a file in place, one fdatasync each.
FSYNC_SAMPLES = 200
#: The size of each rewrite: one page, as a commit's WAL frame holds.
FSYNC_BLOCK = 4096


def fsync_us(
    directory: str | os.PathLike[str] | None = None, samples: int = FSYNC_SAMPLES
) -> float | None:
    """Median microseconds to rewrite one page of a file in ``directory`` (default: the
    temp directory) and ``fdatasync`` it: the floor under what a commit at FULL waits for
    with the WAL at its working size (frames rewritten in place; a real commit writes a
    little more). A batch of group commit pays one such wait for all its puts, a lone put
    one each, so the 8-thread row's gain over one thread grows with it (and means nothing
    on tmpfs). None where the file system refuses the calls (the bench goes on without it)."""
    sync = getattr(os, "fdatasync", os.fsync)
    block = b"\x5a" * FSYNC_BLOCK
    took = []
    try:
        with tempfile.TemporaryFile(dir=directory) as file:
            fd = file.fileno()
            os.write(fd, block * samples)
            os.fsync(fd)
            for n in range(samples):
                start = time.perf_counter()
                os.pwrite(fd, block, n * FSYNC_BLOCK)
                sync(fd)
                took.append(time.perf_counter() - start)
    except (OSError, AttributeError):  # e.g. EINVAL on some FUSE mounts; no pwrite
        return None
    return statistics.median(took) * 1e6


def sleep_jitter(samples: int = 500, pause: float = 0.001) -> dict[str, float]:
    """How late ``time.sleep(pause)`` wakes up here, in ms (p50/p99/max): the machine's
    scheduling noise floor, which no queue's latency tail can beat."""
    late = []
    for _ in range(samples):
        start = time.perf_counter()
        time.sleep(pause)
        late.append((time.perf_counter() - start - pause) * 1000)
    late.sort()
    return {
        "p50": _percentile(late, 0.5),
        "p99": _percentile(late, 0.99),
        "max": late[-1],
    }
