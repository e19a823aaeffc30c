"""What the queue benchmark does: payloads, batch sizes, per-pattern sizes and the patterns.

Shared by every other module of the micro-benchmark; imports nothing from them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PAYLOAD_BYTES = 64
PUT_BATCH = 1000  # put_many / append_many batch
CLAIM_BATCH = 100  # get_many / poll batch
LIFECYCLE_POLL_BATCH = 1000  # poll batch of the batched append+poll+commit pattern
DRAIN_CONSUMERS = 4
PUT_THREADS = 8  # threads sharing one queue object in the group-commit pattern
#: Puts sent one at a time, untimed, before each group-commit row, so both rows are timed
#: with the WAL at its working size (a long-running producer's case). It raises the ratio:
#: the first ~1,000 WAL frames of a freshly opened file extend it, such commits fsync more
#: slowly, and their similar count is a far larger share of the 8-thread row's commits.
PUT_THREADS_WARMUP = 1000
STREAM_GROUPS = 2
LATENCY_RATES = (1000, 5000)
LATENCY_WARMUP = 0.25  # seconds of messages a latency consumer discards at the start
IDLE_SECONDS = 1.0  # after a latency run, the consumer blocks this long with nothing to get
PEER_EMPTY_SLEEP = 0.001  # a peer without a blocking get sleeps this long on an empty queue
TOPIC = "bench"  # the queue's name, the stream's topic
GROUP = "g1"  # the consumer group of single-consumer patterns


# -- sizes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much work each pattern does. Peers that are too slow stop at ``peer_cap``."""

    puts: int  # put / append one at a time at NORMAL
    puts_full: int  # put one at a time at FULL (an fsync per commit)
    puts_threads: int  # put at FULL from PUT_THREADS threads (and from one, for the ratio)
    batch_rows: int  # rows written by put_many(1000) / append_many(1000)
    get_acks: int  # get+ack one at a time at NORMAL (also the queue depth)
    get_acks_full: int  # get+ack one at a time at FULL
    claim_rows: int  # rows drained by get_many(100)+ack_many
    latency_seconds: float  # length of each end-to-end latency run
    drain_messages: int  # messages drained by the 4 consumer processes
    stream_rows: int  # records of the poll/commit and lifecycle patterns
    cap_seconds: float  # safety net: a measurement of ours or the raw loop stops after this
    peer_cap_seconds: float  # a peer's measurement stops after this (they can be very slow)
    drain_cap_seconds: float  # the drain of ours or the raw loop stops after this

    def cap(self, key: str, pattern: str = "") -> float:
        """The time budget of one measurement of implementation ``key``."""
        if key not in ("ours", "raw", "minimal"):
            return self.peer_cap_seconds
        return self.drain_cap_seconds if pattern == "drain" else self.cap_seconds


FULL_SIZES = Sizes(
    puts=20_000,
    puts_full=1_000,
    puts_threads=4_000,
    batch_rows=100_000,
    get_acks=10_000,
    get_acks_full=1_000,
    claim_rows=100_000,
    latency_seconds=2.0,
    drain_messages=100_000,
    stream_rows=200_000,
    cap_seconds=6.0,
    peer_cap_seconds=3.0,
    drain_cap_seconds=16.0,
)
QUICK_SIZES = Sizes(
    puts=3_000,
    puts_full=300,
    puts_threads=800,
    batch_rows=20_000,
    get_acks=10_000,
    get_acks_full=300,
    claim_rows=20_000,
    latency_seconds=0.75,
    drain_messages=10_000,
    stream_rows=50_000,
    cap_seconds=3.0,
    peer_cap_seconds=1.0,
    drain_cap_seconds=5.0,
)


def payload(i: int = 0) -> bytes:
    """A 64-byte payload whose first 8 bytes hold ``i``."""
    return struct.pack("<q", i) + b"x" * (PAYLOAD_BYTES - 8)


def payloads(count: int) -> list[bytes]:
    """``count`` distinct 64-byte payloads."""
    return [payload(i) for i in range(count)]


# -- patterns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One benchmarked pattern: what it measures and which targets apply to it.

    ``peer_target`` is the minimum ours/peer ratio (None: shown without a target).
    """

    key: str
    title: str
    unit: str  # "msgs/s", "records/s" or "ms"
    peer_target: float | None = None
    latency: bool = False


PATTERNS = (
    Pattern("put", "put one at a time", "msgs/s", peer_target=1.5),
    Pattern("put_many", f"put_many({PUT_BATCH})", "msgs/s"),
    Pattern(
        "put_threads", f"put one at a time from {PUT_THREADS} threads (group commit)", "msgs/s"
    ),
    Pattern("get_ack", "get + ack one at a time", "msgs/s", peer_target=10.0),
    Pattern("get_many", f"get_many({CLAIM_BATCH}) + ack_many", "msgs/s"),
    Pattern("latency_1000", "end-to-end latency at 1,000 msgs/s", "ms", latency=True),
    Pattern("latency_5000", "end-to-end latency at 5,000 msgs/s", "ms", latency=True),
    Pattern("drain", f"{DRAIN_CONSUMERS} consumer processes draining (get + ack)", "msgs/s"),
    Pattern("append", "stream: append one at a time", "records/s"),
    Pattern("append_many", f"stream: append_many({PUT_BATCH})", "records/s"),
    Pattern("poll_commit", f"stream: poll({CLAIM_BATCH}) + commit", "records/s"),
    Pattern("groups", f"stream: {STREAM_GROUPS} groups reading concurrently", "records/s"),
    Pattern(
        "lifecycle",
        f"stream: append_many({PUT_BATCH}) + poll({LIFECYCLE_POLL_BATCH}) + commit",
        "records/s",
    ),
)
PATTERN_BY_KEY = {p.key: p for p in PATTERNS}
