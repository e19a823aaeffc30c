"""What the runner's child processes tell the parent: one small record per message.

Every message names its sender's role. A producer is :class:`ProducerRole` (topic index,
producer index within the topic); a consumer is :class:`ConsumerRole` (topic index, group
index, consumer index within the group). Topics and groups are indices, not names, so the
parent can key its totals by them.

A child sends, in order: :class:`Ready` once it has connected; a consumer then sends
:class:`Primed` for each priming message it receives; during the run, a stats record
(:class:`ProducerStats` or :class:`ConsumerStats`) every ``REPORT_EVERY`` seconds with the
counts *since the previous one* (deltas); finally a done record (:class:`ProducerDone` or
:class:`ConsumerDone`). :class:`Failed` replaces whatever is left when the child raises.
"""

from __future__ import annotations

from dataclasses import dataclass

#: histogram states by time window, as :meth:`WindowedHistograms.take` returns them (a delta)
HistogramStates = dict[int, tuple[dict[int, int], int, int, int, int]]


@dataclass(frozen=True, slots=True)
class ProducerRole:
    """Producer ``index`` of the topic with index ``topic``."""

    topic: int
    index: int

    @property
    def kind(self) -> str:
        return "producer"

    @property
    def process_name(self) -> str:
        return f"sqq-producer-{self.topic}-{self.index}"


@dataclass(frozen=True, slots=True)
class ConsumerRole:
    """Consumer ``index`` of consumer group ``group`` on the topic with index ``topic``."""

    topic: int
    group: int
    index: int

    @property
    def kind(self) -> str:
        return "consumer"

    @property
    def process_name(self) -> str:
        return f"sqq-consumer-{self.topic}-{self.group}-{self.index}"


Role = ProducerRole | ConsumerRole


@dataclass(frozen=True, slots=True)
class Ready:
    """The child opened its backend and its producer or consumer; ``pid`` is its process."""

    role: Role
    pid: int


@dataclass(frozen=True, slots=True)
class Primed:
    """The consumer received a priming message: its group is live."""

    role: ConsumerRole


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """A producer's counts since its previous stats message."""

    role: ProducerRole
    sent: int
    acked: int
    errors: int
    #: how far the producer lagged behind its schedule at worst (ms)
    lag_ms: float
    last_error: str | None
    #: publish latencies (delivery time - scheduled time) by scheduled time
    publish: HistogramStates


@dataclass(frozen=True, slots=True)
class ConsumerStats:
    """A consumer's counts since its previous stats message."""

    role: ConsumerRole
    received: int
    duplicates: int
    #: end-to-end latencies (receive time - scheduled time) by scheduled time
    e2e: HistogramStates


@dataclass(frozen=True, slots=True)
class ProducerDone:
    """The producer stopped; ``unsent`` messages were scheduled but the run ended first."""

    role: ProducerRole
    unsent: int


@dataclass(frozen=True, slots=True)
class ConsumerDone:
    """The consumer stopped; ``seen`` is a bitmap of sequence numbers by producer index."""

    role: ConsumerRole
    seen: dict[int, bytes]


@dataclass(frozen=True, slots=True)
class Failed:
    """The child raised; ``traceback`` is the formatted exception."""

    role: Role
    traceback: str


Message = Ready | Primed | ProducerStats | ConsumerStats | ProducerDone | ConsumerDone | Failed
