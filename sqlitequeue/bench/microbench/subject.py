"""What the micro-benchmark measures: subjects, each a :class:`Backend` of the workbench's seam.

Every implementation under test (sqlitequeue's Queue and Stream, the raw sqlite3 loops, the
peer queues) is a :class:`Subject`: a :class:`~sqlitequeue.bench.backends.base.Backend`
whose capabilities the plan checks are class attributes. A subject is built in any process
from a picklable :class:`BackendSpec` (``settings["durability"]``, ``data_dir`` a fresh
directory) by :func:`open_subject`, as ``bench compare`` builds its backends.

The patterns map onto the seam (``timing`` drives every subject the same way):

* put / append one at a time: ``send`` + ``flush`` (the flush writes one record);
* put_many / append_many(1000): 1000 ``send`` + one ``flush`` (one transaction, like
  Kafka's linger and flush);
* get + ack one at a time: ``poll(1, 0)`` + ``commit()``; get_many(100) + ack_many and the
  stream's poll(100) + commit: ``poll(100, 0)`` + ``commit()``;
* a latency consumer blocks in ``poll(100, timeout)``; stream groups are consumer groups.

Subjects are micro-benchmark material, not ``bench compare`` backends, so they are
registered in :data:`SUBJECTS`, not in ``base.BACKENDS``. Keys are not stored (every
pattern sends None), so ``preserves_keys`` is False. Errors are not translated: whatever
an implementation raises reaches the runner, which records it in the row's notes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sqlite3
import time
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from sqlitequeue.bench.backends.base import (
    Backend,
    BackendSpec,
    Delivery,
    DeliveryCallback,
    Producer,
)
from sqlitequeue.bench.errors import BenchError

T = TypeVar("T")


class Closable(Protocol):
    def close(self) -> None: ...


Opened = TypeVar("Opened", bound=Closable)


class Subject(Backend):
    """One implementation under test, opened on one directory by one process."""

    preserves_keys = False
    #: Short key used in the report and the results: "ours", "raw" or the peer's name.
    key: ClassVar[str]
    #: Label in the report; a peer's installed version is appended (see :meth:`label`).
    title: ClassVar[str]
    #: The distribution whose version the label shows (None: no version).
    package: ClassVar[str | None] = None
    #: Durabilities it can run at ("normal", "full").
    durabilities: ClassVar[tuple[str, ...]] = ("normal", "full")
    #: False when it has no batch API (put_many and get_many rows are then skipped).
    batched: ClassVar[bool] = True
    #: False when several processes may not share its file; ``why_not_multiprocess`` says why.
    multiprocess: ClassVar[bool] = True
    why_not_multiprocess: ClassVar[str] = ""
    #: The file (or directory) it keeps its data in, inside ``spec.data_dir``.
    file_name: ClassVar[str] = "bench.db"

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self.durability = str(spec.settings.get("durability", "normal"))
        self.path = Path(spec.data_dir) / self.file_name

    @classmethod
    def label(cls) -> str:
        """The row label: the title, with the installed version of ``package`` if any."""
        if cls.package is None:
            return cls.title
        try:
            return f"{cls.title} {importlib.metadata.version(cls.package)}"
        except importlib.metadata.PackageNotFoundError:
            return f"{cls.title} (not installed)"

    def __enter__(self) -> Self:
        return self

    def describe(self) -> dict[str, Any]:
        """Name, label and durability; peers add the ``synchronous`` they really run with."""
        return {"backend": self.name, "label": self.label(), "durability": self.durability}


class TopicSubject(Subject, Generic[Opened]):
    """A subject that opens one library object per topic (a Queue, a Stream, a litequeue)
    on first use, shares it between the topic's producers and consumers, and closes it
    with the subject."""

    def __init__(self, spec: BackendSpec) -> None:
        super().__init__(spec)
        self._opened: dict[str, Opened] = {}

    def opened(self, topic: str) -> Opened:
        """The object of ``topic``, opened on first use."""
        found = self._opened.get(topic)
        if found is None:
            found = self._opened[topic] = self.open_topic(topic)
        return found

    @abstractmethod
    def open_topic(self, topic: str) -> Opened:
        """Open (creating if needed) the object that holds ``topic``."""

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        """Open the topic's object, creating it (with one partition: ``partitions`` is
        ignored)."""
        self.opened(topic)

    def close(self) -> None:
        for opened in self._opened.values():
            opened.close()


class BufferedProducer(Producer):
    """Buffers ``send``; ``flush`` writes the buffer with ``write_one`` (one record) or
    ``write_many`` (several, in one transaction where the implementation allows).

    ``write_one`` and ``write_many`` are the implementation's own calls (``Queue.put`` and
    ``Queue.put_many``, the raw loop's writers...), called directly, so every subject pays
    the same overhead. Each delivery callback is called once, after the write, with one
    shared :class:`Delivery`. The key is ignored (subjects do not store keys).
    """

    def __init__(
        self, write_one: Callable[[bytes], object], write_many: Callable[[list[bytes]], object]
    ) -> None:
        self.write_one = write_one
        self.write_many = write_many
        self._payloads: list[bytes] = []
        self._callbacks: list[DeliveryCallback] = []

    def send(
        self, key: bytes | None, payload: bytes, on_delivery: DeliveryCallback | None = None
    ) -> None:
        """Buffer ``payload``; nothing is written before :meth:`flush`."""
        self._payloads.append(payload)
        if on_delivery is not None:
            self._callbacks.append(on_delivery)

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything buffered (writes are synchronous: ``timeout`` is not needed)."""
        payloads = self._payloads
        if not payloads:
            return
        self._payloads = []
        if self._callbacks:
            self._write_confirming(payloads)
        elif len(payloads) == 1:
            self.write_one(payloads[0])
        else:
            self.write_many(payloads)

    def _write_confirming(self, payloads: list[bytes]) -> None:
        callbacks, self._callbacks = self._callbacks, []
        try:
            if len(payloads) == 1:
                self.write_one(payloads[0])
            else:
                self.write_many(payloads)
        except Exception as exc:
            delivery = Delivery(False, time.time(), f"{type(exc).__name__}: {exc}")
            for callback in callbacks:
                callback(delivery)
            raise
        delivery = Delivery(True, time.time())
        for callback in callbacks:
            callback(delivery)

    def close(self) -> None:
        """Write what is still buffered."""
        self.flush()


def retry_locked(action: Callable[[], T]) -> T:
    """Run ``action``, retrying SQLite's ``database is locked`` (what any user must do)."""
    delay = 0.0005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def synchronous(conn: sqlite3.Connection) -> str:
    """The connection's ``PRAGMA synchronous`` by name (read back, not assumed)."""
    value = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(value, str(value))


#: Registry: subject name -> "module:Class", imported lazily (peers are optional installs).
SUBJECTS: dict[str, str] = {
    "sqlitequeue-queue": "sqlitequeue.bench.microbench.ours:OursQueue",
    "raw-queue": "sqlitequeue.bench.microbench.raw:RawQueue",
    "minimal-queue": "sqlitequeue.bench.microbench.minimal:MinimalQueue",
    "persist-queue": "sqlitequeue.bench.microbench.peers:PersistQueue",
    "litequeue": "sqlitequeue.bench.microbench.peers:LiteQueue",
    "honker": "sqlitequeue.bench.microbench.peers:Honker",
    "huey": "sqlitequeue.bench.microbench.peers:HueyStorage",
    "sqlitequeue-stream": "sqlitequeue.bench.microbench.ours:OursStream",
    "raw-stream": "sqlitequeue.bench.microbench.raw:RawStream",
}
#: The queue patterns' subjects and the stream patterns' subjects, by report key.
QUEUE_SUBJECTS = {
    "ours": "sqlitequeue-queue",
    "raw": "raw-queue",
    "minimal": "minimal-queue",
    "persist-queue": "persist-queue",
    "litequeue": "litequeue",
    "honker": "honker",
    "huey": "huey",
}
STREAM_SUBJECTS = {"ours": "sqlitequeue-stream", "raw": "raw-stream"}


def subject_class(name: str) -> type[Subject]:
    """The class registered as ``name``; raise BenchError if there is none."""
    target = SUBJECTS.get(name)
    if target is None:
        raise BenchError(f"unknown subject {name!r}; choose one of: {', '.join(SUBJECTS)}")
    module_name, _, class_name = target.partition(":")
    cls: type[Subject] = getattr(importlib.import_module(module_name), class_name)
    return cls


def subject_spec(name: str, directory: Path, durability: str) -> BackendSpec:
    """The picklable spec of subject ``name`` in ``directory`` at ``durability``."""
    return BackendSpec(name, {"durability": durability}, str(directory))


def open_subject(spec: BackendSpec) -> Subject:
    """Build the subject named by ``spec.name``; raise BenchError if it is unknown."""
    return subject_class(spec.name)(spec)
