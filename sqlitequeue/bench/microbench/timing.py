"""Measure one repeat of one pattern: the ``time_*`` functions and their worker processes.

Single-process patterns time calls on an opened implementation. Multi-process patterns
(end-to-end latency, 4 draining consumers, 2 stream groups) start worker processes with
the ``spawn`` method; the workers are module-level functions (pickled by qualified name)
that open their own connections. :func:`sleep_jitter` measures the machine's noise floor.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import struct
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.microbench.patterns import (
    CLAIM_BATCH,
    DRAIN_CONSUMERS,
    IDLE_SECONDS,
    LATENCY_WARMUP,
    LIFECYCLE_POLL_BATCH,
    PAYLOAD_BYTES,
    PUT_BATCH,
    STREAM_GROUPS,
    payloads,
)
from sqlitequeue.bench.microbench.queues import QUEUE_IMPLS, QueueImpl
from sqlitequeue.bench.microbench.streams import STREAM_IMPLS, StreamImpl


class _Cap:
    """Counts operations and says when a measurement ran out of its time budget."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + seconds
        self.capped = False

    def over(self, done: int) -> bool:
        if done & 63 == 0 and time.perf_counter() > self.deadline:
            self.capped = True
        return self.capped

    def rate(self, done: int) -> float:
        return done / max(time.perf_counter() - self.start, 1e-9)


def _sample(rate: float, capped: bool, done: int, planned: int) -> tuple[dict[str, float], str]:
    note = "stopped by the time budget (rate of a partial run)" if capped else ""
    return {"rate": rate, "done": done, "planned": planned}, note


def _time_one_by_one(
    send: Callable[[bytes], Any], count: int, cap: float
) -> tuple[dict[str, float], str]:
    items = payloads(count)
    clock = _Cap(cap)
    done = 0
    for data in items:
        if clock.over(done):
            break
        send(data)
        done += 1
    return _sample(clock.rate(done), clock.capped, done, count)


def _time_in_batches(
    send: Callable[[list[bytes]], Any], count: int, cap: float
) -> tuple[dict[str, float], str]:
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    clock = _Cap(cap)
    done = 0
    for batch in batches:
        if time.perf_counter() > clock.deadline:
            clock.capped = True
            break
        send(batch)
        done += len(batch)
    return _sample(clock.rate(done), clock.capped, done, count)


def time_put(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Put ``count`` payloads one call each; return ({"rate": msgs/s}, note)."""
    return _time_one_by_one(impl.put, count, cap)


def time_put_many(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Put ``count`` payloads with put_many(PUT_BATCH); return ({"rate": msgs/s}, note)."""
    return _time_in_batches(impl.put_many, count, cap)


def time_get_ack(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` messages (untimed), then get+ack one at a time until empty."""
    impl.fill(payloads(count))
    clock = _Cap(cap)
    done = 0
    while not clock.over(done) and impl.get_ack():
        done += 1
    sample, note = _sample(clock.rate(done), clock.capped, done, count)
    if not clock.capped and done != count:
        note = f"ERROR: got {done:,} of {count:,} messages"
    return sample, note


def time_get_many(impl: QueueImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` messages (untimed), then get_many(CLAIM_BATCH)+ack_many until empty."""
    impl.fill(payloads(count))
    clock = _Cap(cap)
    done = 0
    while time.perf_counter() < clock.deadline:
        got = impl.claim_ack(CLAIM_BATCH)
        if not got:
            break
        done += got
    else:
        clock.capped = True
    sample, note = _sample(clock.rate(done), clock.capped, done, count)
    if not clock.capped and done != count:
        note = f"ERROR: got {done:,} of {count:,} messages"
    return sample, note


def time_append(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Append ``count`` records one call each."""
    return _time_one_by_one(impl.append, count, cap)


def time_append_many(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Append ``count`` records with append_many(PUT_BATCH)."""
    return _time_in_batches(impl.append_many, count, cap)


def _read_all(impl: StreamImpl, reader: Any, count: int, batch: int, clock: _Cap) -> int:
    done = 0
    while done < count:
        if time.perf_counter() > clock.deadline:
            clock.capped = True
            break
        got = impl.poll_commit(reader, batch)
        if not got:
            break
        done += got
    return done


def time_poll_commit(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` records (untimed), then poll(CLAIM_BATCH)+commit through them."""
    impl.fill(payloads(count))
    reader = impl.reader("g1")
    clock = _Cap(cap)
    done = _read_all(impl, reader, count, CLAIM_BATCH, clock)
    sample, note = _sample(clock.rate(done), clock.capped, done, count)
    if not clock.capped and done != count:
        note = f"ERROR: read {done:,} of {count:,} records"
    return sample, note


def time_lifecycle(impl: StreamImpl, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Append ``count`` records in batches, then read and commit them all; records/s."""
    batches = [payloads(PUT_BATCH) for _ in range(max(1, count // PUT_BATCH))]
    total = len(batches) * PUT_BATCH
    reader = impl.reader("g1")
    clock = _Cap(cap * 2)
    for batch in batches:
        impl.append_many(batch)
    done = _read_all(impl, reader, total, LIFECYCLE_POLL_BATCH, clock)
    sample, note = _sample(clock.rate(done), clock.capped, done, total)
    if not clock.capped and done != total:
        note = f"ERROR: read {done:,} of {total:,} records"
    return sample, note


# -- multi-process patterns --------------------------------------------------------------

_MP = mp.get_context("spawn")
_WORKER_TIMEOUT = 60.0


def _report_errors(results: Any, role: str, body: Callable[[], Any]) -> None:
    """Run a worker body; put its result, or the error it raised, on ``results``."""
    try:
        results.put((role, "ok", body()))
    except BaseException as exc:
        results.put((role, "error", f"{type(exc).__name__}: {exc}"))


def _latency_budget(seconds: float) -> float:
    """How long a latency run may last before its workers give up (an overloaded system)."""
    return seconds * 1.5 + 2.0


def _latency_producer(
    key: str, path: str, durability: str, rate: int, count: int, ready: Any, results: Any
) -> None:
    def body() -> dict[str, float]:
        impl = QUEUE_IMPLS[key]()
        impl.open(Path(path), durability)
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
            impl.put(struct.pack("<q", now) + pad)  # stamped just before the send
            sent += 1
        elapsed = (time.monotonic_ns() - start) / 1e9
        impl.close()
        return {"sent": sent, "sent_rate": sent / elapsed}

    _report_errors(results, "producer", body)


def _latency_consumer(
    key: str,
    path: str,
    durability: str,
    count: int,
    skip: int,
    budget: float,
    ready: Any,
    results: Any,
) -> None:
    def body() -> tuple[bytes, int, float]:
        impl = QUEUE_IMPLS[key]()
        impl.open(Path(path), durability)
        latencies = array("d")
        ready.set()
        deadline = time.monotonic() + budget + 1.0
        got = 0
        while got < count and time.monotonic() < deadline:
            item = impl.receive(0.2, CLAIM_BATCH)
            if item is None:
                continue
            now = time.monotonic_ns()
            handle, batch = item
            for data in batch:
                got += 1
                if got > skip:
                    latencies.append((now - struct.unpack_from("<q", data)[0]) / 1e6)
            impl.ack(handle)
        idle = _idle_cpu_percent(impl)
        impl.close()
        return latencies.tobytes(), got, idle

    _report_errors(results, "consumer", body)


def _idle_cpu_percent(impl: QueueImpl) -> float:
    """CPU used (% of one core) while blocked in receive for IDLE_SECONDS, nothing coming."""
    cpu, wall = time.process_time(), time.monotonic()
    while (left := IDLE_SECONDS - (time.monotonic() - wall)) > 0:
        impl.receive(left, 1)
    return 100.0 * (time.process_time() - cpu) / (time.monotonic() - wall)


def _collect(results: Any, procs: list[Any], expected: int) -> list[tuple[str, str, Any]]:
    """Gather ``expected`` worker results; raise BenchError naming a failed worker."""
    got: list[tuple[str, str, Any]] = []
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
    errors = [f"{role}: {detail}" for role, status, detail in got if status != "ok"]
    if errors:
        raise BenchError("; ".join(errors))
    return got


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def time_latency(
    key: str, path: Path, durability: str, rate: int, seconds: float
) -> tuple[dict[str, float], str]:
    """Paced open-loop producer process -> consumer process; end-to-end latency in ms.

    The producer sends ``rate * seconds`` messages on a fixed schedule and stamps each with
    ``time.monotonic_ns()`` just before ``put``; the consumer blocks in
    ``get_many(CLAIM_BATCH, timeout)`` (one message when it keeps up, a batch when it
    fell behind; peers without a batch claim get one at a time), takes the time as soon
    as the call returns, acks (``ack`` for one, ``ack_many`` for more) and ignores the
    first ``LATENCY_WARMUP`` seconds. Returns p50/p95/p99/max, the rate actually sent, and
    ``idle_cpu``: the consumer's CPU (% of a core) while it then blocks ``IDLE_SECONDS`` in
    the same receive call with nothing arriving.
    """
    count = max(10, int(rate * seconds))
    skip = min(count // 2, int(rate * LATENCY_WARMUP))
    impl = QUEUE_IMPLS[key]()
    impl.open(path, durability)  # create the file before two processes race to do it
    impl.close()
    ready, results = _MP.Event(), _MP.Queue()
    args = (key, str(path), durability)
    procs = [
        _MP.Process(
            target=_latency_consumer,
            args=(*args, count, skip, _latency_budget(seconds), ready, results),
        ),
        _MP.Process(target=_latency_producer, args=(*args, rate, count, ready, results)),
    ]
    for p in procs:
        p.start()
    got = {role: detail for role, _status, detail in _collect(results, procs, 2)}
    arr = array("d")
    arr.frombytes(got["consumer"][0])
    received, sent = got["consumer"][1], int(got["producer"]["sent"])
    idle_cpu = float(got["consumer"][2])
    ordered = sorted(arr)
    if not ordered:
        raise BenchError("the latency consumer received nothing")
    sample = {
        "p50": _percentile(ordered, 0.50),
        "p95": _percentile(ordered, 0.95),
        "p99": _percentile(ordered, 0.99),
        "max": ordered[-1],
        "rate": got["producer"]["sent_rate"],
        "idle_cpu": idle_cpu,
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
    """Start worker processes that meet at ``barrier`` and each report (done, end ns,
    capped); return the total done, the combined rate from the barrier to the last end,
    and whether any worker hit its time budget."""
    for p in procs:
        p.start()
    barrier.wait(_WORKER_TIMEOUT)
    start = time.monotonic_ns()
    got = [detail for _role, _status, detail in _collect(results, procs, len(procs))]
    done = sum(d[0] for d in got)
    elapsed = (max(d[1] for d in got) - start) / 1e9
    return done, done / max(elapsed, 1e-9), any(d[2] for d in got)


def _drain_worker(
    key: str, path: str, durability: str, cap: float, barrier: Any, results: Any
) -> None:
    def body() -> tuple[int, int, bool]:
        impl = QUEUE_IMPLS[key]()
        impl.open(Path(path), durability)
        barrier.wait(_WORKER_TIMEOUT)
        clock = _Cap(cap)
        done = 0
        while not clock.over(done) and impl.get_ack():
            done += 1
        end = time.monotonic_ns()
        impl.close()
        return done, end, clock.capped

    _report_errors(results, "drain consumer", body)


def time_drain(
    key: str, path: Path, durability: str, count: int, cap: float
) -> tuple[dict[str, float], str]:
    """Fill ``count`` messages, then DRAIN_CONSUMERS processes get+ack until it is empty."""
    impl = QUEUE_IMPLS[key]()
    impl.open(path, durability)
    impl.fill(payloads(count))
    impl.close()
    barrier, results = _MP.Barrier(DRAIN_CONSUMERS + 1), _MP.Queue()
    procs = [
        _MP.Process(target=_drain_worker, args=(key, str(path), durability, cap, barrier, results))
        for _ in range(DRAIN_CONSUMERS)
    ]
    done, rate, capped = _run_together(procs, barrier, results)
    sample, note = _sample(rate, capped, done, count)
    if not capped and done != count:
        note = f"ERROR: drained {done:,} of {count:,} messages"
    return sample, note


def _group_worker(
    key: str, path: str, group: str, count: int, cap: float, barrier: Any, results: Any
) -> None:
    def body() -> tuple[int, int, bool]:
        impl = STREAM_IMPLS[key]()
        impl.open(Path(path), "normal")
        reader = impl.reader(group)
        barrier.wait(_WORKER_TIMEOUT)
        clock = _Cap(cap)
        done = _read_all(impl, reader, count, CLAIM_BATCH, clock)
        end = time.monotonic_ns()
        impl.close()
        return done, end, clock.capped

    _report_errors(results, f"group {group}", body)


def time_groups(key: str, path: Path, count: int, cap: float) -> tuple[dict[str, float], str]:
    """Fill ``count`` records, then STREAM_GROUPS processes (one group each) read them all
    with poll(CLAIM_BATCH)+commit at the same time; records delivered per second in total.
    """
    impl = STREAM_IMPLS[key]()
    impl.open(path, "normal")
    impl.fill(payloads(count))
    impl.close()
    barrier, results = _MP.Barrier(STREAM_GROUPS + 1), _MP.Queue()
    procs = [
        _MP.Process(
            target=_group_worker, args=(key, str(path), f"g{i}", count, cap, barrier, results)
        )
        for i in range(STREAM_GROUPS)
    ]
    done, rate, capped = _run_together(procs, barrier, results)
    planned = count * STREAM_GROUPS
    sample, note = _sample(rate, capped, done, planned)
    if not capped and done != planned:
        note = f"ERROR: read {done:,} of {planned:,} records"
    return sample, note


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
