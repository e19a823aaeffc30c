"""A worker loop over a Queue: claim, hand over, ack on success, nack on error, stop cleanly.

:meth:`sqlitequeue.Queue.consume` yields one :class:`Delivery` per claimed message::

    stop = threading.Event()                    # or stop_signals=(SIGTERM, SIGINT)
    for job in q.consume(stop=stop):
        with job as msg:                        # acks when the block ends,
            handle(msg.payload)                 # nacks (reason: the exception) if it raises

What the loop guarantees:

* **At-least-once.** A message is acked only after its block ends without an exception.
  A worker that dies mid-message (SIGKILL, power loss) leaves it leased: it is delivered
  again when its lease ends, with its attempt counted (and dead-lettered after
  ``max_attempts``), exactly as for :meth:`Queue.get`.
* **A stop never cuts a message short.** Once ``stop`` is set, or a signal of
  ``stop_signals`` arrives, the loop lets the current block run to its end, settles the
  message, claims nothing more and ends. An idle loop looks at the flag every
  ``STOP_LATENCY`` seconds while it waits (a message claimed in that window is handled).
  The signal handlers are installed while the loop runs and removed when it ends; the first
  signal also restores the previous handler, so a second one acts as before (a second
  Ctrl-C raises ``KeyboardInterrupt`` in the block, which nacks the message).
* **Errors do not end the loop.** An ``Exception`` from the block nacks the message (after
  ``retry_delay`` seconds) with ``"<Type>: <text>"`` as its ``last_error``, is logged with
  its traceback on the ``sqlitequeue.queue`` logger, and is suppressed: the loop goes on.
  ``KeyboardInterrupt`` and ``SystemExit`` give the message back at once and propagate.
* **One settlement per message.** A block may settle its delivery itself (``job.ack()``,
  ``job.nack(...)``, ``job.bury(...)``); it is then not settled again. A body that does not
  use ``with`` is taken as successful when it asks for the next message (the message is
  acked then); if it leaves the loop instead (``break``, an exception), the message is
  nacked at once, so another worker gets it without waiting for the lease.
* A lease lost meanwhile (the block outlived it and another worker claimed the message)
  makes the ack or nack raise :class:`~sqlitequeue.errors.LeaseLost`; the loop logs it as
  a warning and goes on (the message was, or will be, handled by its new holder). Call
  ``job.extend()`` during long work.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any, Generic, Protocol, TypeVar

from sqlitequeue.errors import InvalidArgument, LeaseLost, QueueError

logger = logging.getLogger("sqlitequeue.queue")

#: An idle loop looks at its stop flag at least this often (seconds).
STOP_LATENCY = 0.1
#: Longest ``last_error`` a failed block leaves (characters).
MAX_REASON = 2000


class StopFlag(Protocol):
    """What ``stop=`` may be: a ``threading.Event`` or ``multiprocessing.Event``."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


class _MessageLike(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def attempts(self) -> int: ...


M = TypeVar("M", bound=_MessageLike)


class _Queue(Protocol[M]):
    """The part of :class:`sqlitequeue.Queue` the loop uses (kept apart: no import cycle)."""

    @property
    def name(self) -> str: ...

    def get(self, timeout: float | None = None, lease: float | None = None) -> M | None: ...

    def ack(self, message: M) -> None: ...

    def nack(self, message: M, delay: float = 0.0, *, reason: str | None = None) -> None: ...

    def bury(self, message: M, reason: str) -> None: ...

    def extend(self, message: M, lease: float | None = None) -> M: ...


class Delivery(Generic[M]):
    """One message claimed by :meth:`Queue.consume`, settled exactly once.

    ``with job as msg:`` gives the :class:`~sqlitequeue.Message`; the block's end acks it,
    an exception from the block nacks it (see the module docstring for the full contract).
    ``ack``, ``nack``, ``bury`` and ``extend`` act on the message as the Queue's methods
    of the same names do; settling twice raises InvalidArgument.
    """

    __slots__ = ("_queue", "_retry_delay", "_settled", "message")

    def __init__(self, queue: _Queue[M], message: M, retry_delay: float) -> None:
        self._queue = queue
        self._retry_delay = retry_delay
        self._settled: str | None = None
        self.message = message

    @property
    def settled(self) -> bool:
        """True once the message was acked, nacked or buried through this delivery."""
        return self._settled is not None

    def ack(self) -> None:
        """Ack the message (deleted, never delivered again). Raises LeaseLost if it moved on."""
        self._settle("acked")
        self._queue.ack(self.message)

    def nack(self, delay: float | None = None, *, reason: str | None = None) -> None:
        """Give the message back, claimable after ``delay`` seconds (default: the loop's
        ``retry_delay``), or dead-lettered if it used its ``max_attempts``."""
        self._settle("nacked")
        delay = self._retry_delay if delay is None else delay
        self._queue.nack(self.message, delay, reason=reason)

    def bury(self, reason: str) -> None:
        """Move the message to the dead letters now, with ``reason`` as its last_error."""
        self._settle("buried")
        self._queue.bury(self.message, reason)

    def extend(self, lease: float | None = None) -> M:
        """Renew the lease (a heartbeat during long work); return the updated message."""
        self.message = self._queue.extend(self.message, lease)
        return self.message

    def _settle(self, how: str) -> None:
        if self._settled is not None:
            raise InvalidArgument(
                f"message {self.message.id} of queue {self._queue.name!r} was already "
                f"{self._settled}; a delivery is settled once"
            )
        self._settled = how

    def __enter__(self) -> M:
        return self.message

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._settled is not None:
            return False
        if exc is None:
            self._quietly(self.ack)
            return False
        reason = failure_reason(exc)
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: back at once
            self._quietly(lambda: self.nack(0.0, reason=reason))
            return False
        logger.error(
            "message %d of queue %r failed on delivery %d and was nacked: %s",
            self.message.id,
            self._queue.name,
            self.message.attempts,
            reason,
            exc_info=exc,
        )
        self._quietly(lambda: self.nack(reason=reason))
        return True

    def _quietly(self, settle: Callable[[], None]) -> None:
        """Settle; a lost lease is logged, not raised (the message has another holder)."""
        try:
            settle()
        except LeaseLost as exc:
            logger.warning("%s", exc)

    def _abandon(self) -> None:
        """The loop was left while this message was unsettled: give it back at once."""
        if self._settled is not None:
            return
        try:
            self.nack(0.0, reason="the consume() loop was left before the message was settled")
        except QueueError as exc:  # e.g. Closed: the lease will expire instead
            logger.warning("message %d stays leased until its lease ends: %s", self.message.id, exc)

    def __repr__(self) -> str:
        state = self._settled or "unsettled"
        return f"<Delivery of message {self.message.id} of queue {self._queue.name!r} ({state})>"


def failure_reason(exc: BaseException) -> str:
    """``"<Type>: <text>"`` for a nack's reason: at most MAX_REASON characters, UTF-8 safe."""
    text = str(exc)
    reason = f"{type(exc).__qualname__}: {text}" if text else type(exc).__qualname__
    reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def consume(
    queue: _Queue[M],
    *,
    stop: StopFlag | None = None,
    stop_signals: Iterable[int] = (),
    lease: float | None = None,
    idle_timeout: float | None = None,
    retry_delay: float = 0.0,
) -> Iterator[Delivery[M]]:
    """Check the arguments now (InvalidArgument; nothing is claimed), then return the loop.

    See :meth:`sqlitequeue.Queue.consume` and the module docstring for the contract.
    """
    if stop is not None and not (
        callable(getattr(stop, "is_set", None)) and callable(getattr(stop, "set", None))
    ):
        raise InvalidArgument(
            f"stop must be a threading.Event (anything with is_set() and set()), not "
            f"{type(stop).__name__}"
        )
    signals = _check_signals(stop_signals)
    if lease is not None:
        _check_seconds("lease", lease, positive=True)
    if idle_timeout is not None:
        _check_seconds("idle_timeout", idle_timeout)
    _check_seconds("retry_delay", retry_delay)
    flag: StopFlag = threading.Event() if stop is None else stop
    return _loop(queue, flag, signals, lease, idle_timeout, retry_delay)


def _loop(
    queue: _Queue[M],
    stop: StopFlag,
    signals: list[int],
    lease: float | None,
    idle_timeout: float | None,
    retry_delay: float,
) -> Iterator[Delivery[M]]:
    with _StopOnSignals(signals, stop):
        idle_since = time.monotonic()
        while not stop.is_set():
            wait = STOP_LATENCY
            if idle_timeout is not None:
                left = idle_since + idle_timeout - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            message = queue.get(timeout=wait, lease=lease)
            if message is None:
                continue
            delivery = Delivery(queue, message, retry_delay)
            try:
                yield delivery
            except GeneratorExit:
                delivery._abandon()
                raise
            if not delivery.settled:  # the body returned without settling: success
                delivery._quietly(delivery.ack)
            idle_since = time.monotonic()


class _StopOnSignals:
    """While entered, each of ``signals`` sets ``stop`` (once; then its old handler is back)."""

    def __init__(self, signals: list[int], stop: StopFlag) -> None:
        self._signals = signals
        self._stop = stop
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if self._signals and threading.current_thread() is not threading.main_thread():
            raise InvalidArgument(_MAIN_THREAD_ONLY)
        for sig in self._signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        logger.info("%s received: finishing the current message, then stopping", _name(signum))
        self._stop.set()
        self._restore(signum)

    def _restore(self, sig: int) -> None:
        previous = self._previous.pop(sig, None)
        if signal.getsignal(sig) == self._handle:  # not replaced by someone else meanwhile
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)

    def __exit__(self, *exc: object) -> None:
        for sig in list(self._previous):
            self._restore(sig)


_MAIN_THREAD_ONLY = (
    "stop_signals works only in the main thread (Python runs signal handlers there); in "
    "another thread pass stop=threading.Event() and set it from the main thread's handler"
)
_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # a real-time signal
        return f"signal {signum}"


def _check_signals(stop_signals: Iterable[int]) -> list[int]:
    if isinstance(stop_signals, int):
        stop_signals = [stop_signals]
    try:
        given = list(stop_signals)
    except TypeError:
        raise InvalidArgument(
            f"stop_signals must be a list of signals, e.g. (signal.SIGTERM, signal.SIGINT), "
            f"not {stop_signals!r}"
        ) from None
    signals = []
    for value in given:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value not in signal.valid_signals()
        ):
            raise InvalidArgument(f"stop_signals holds {value!r}, which is not a signal number")
        if value in _UNCATCHABLE:
            raise InvalidArgument(f"{_name(value)} cannot be caught, so it cannot stop a loop")
        signals.append(int(value))
    if signals and threading.current_thread() is not threading.main_thread():
        raise InvalidArgument(_MAIN_THREAD_ONLY)
    return signals


def _check_seconds(what: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0 or (positive and value == 0):
        raise InvalidArgument(
            f"{what} must be {'> 0' if positive else '>= 0'} seconds, not {value!r}"
        )
    return float(value)
