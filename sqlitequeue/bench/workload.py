"""Workloads: load and validate workload files; build each producer's seeded send schedule.

A workload is a YAML file with OpenMessaging Benchmark (OMB) field names, so an OMB
workload file runs unchanged, plus a few extensions of our own (all optional):

OMB fields
    ``name``, ``topics``, ``partitionsPerTopic``, ``messageSize``, ``payloadFile``,
    ``subscriptionsPerTopic``, ``consumerPerSubscription``, ``producersPerTopic``,
    ``producerRate`` (msg/s for the whole workload; 0 = find the maximum sustainable rate),
    ``consumerBacklogSizeGB``, ``testDurationMinutes``, ``warmupDurationMinutes``,
    ``keyDistributor`` (NO_KEY, KEY_ROUND_ROBIN, RANDOM_NANO), ``producerStartRate``,
    ``useRandomizedPayloads``, ``randomBytesRatio``, ``randomizedPayloadPoolSize``,
    ``acceptableBacklog``, ``producerIncrementRate``, ``producerIncrementSeconds``,
    ``messageRateReceivedForSubscription``, ``producerPauseBeforeDrain``,
    ``producerPauseDuringDrain``, ``backlogDrainRatio``.
Extensions
    ``description`` (one line), ``seed`` (int; same seed, same schedule),
    ``rateShape`` (mapping; ``type`` steady | poisson | bursts | daily; see :class:`RateShape`),
    ``trace`` (mapping: ``file`` JSONL/CSV of timestamp,size,key; ``speed`` replay factor;
    ``timestampUnit`` s | ms | us; ``loop`` bool),
    ``testDurationSeconds`` / ``warmupDurationSeconds`` (finer than minutes),
    ``consumerBacklogMessages`` (backlog size as a message count),
    ``p99TargetMs`` (latency target for the max-rate search and the report),
    ``producerMaxRate`` (the search's top; default :data:`HARNESS_CEILING`),
    ``rampStepSeconds`` (each step's length) and ``searchResolution`` (the search stops once
    the lowest failing rate is within this fraction of the highest passing one; default 0.1).

A max-rate search (``producerRate: 0``) decides each step's rate as it runs
(:mod:`sqlitequeue.bench.runner.ramp`); its ``testDuration`` is the search's time budget.

Every message carries a 20-byte header (scheduled send time, sequence number, producer
index) in its first bytes, so ``messageSize`` must be at least :data:`HEADER_SIZE`.
Unknown or invalid fields raise :class:`~sqlitequeue.bench.errors.WorkloadError` naming the
field and the file.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import random
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import WorkloadError

#: struct of the header stamped into every payload: scheduled time, sequence, producer.
HEADER = struct.Struct("<dQI")
HEADER_SIZE = HEADER.size
MAX_MESSAGE_SIZE = 1024 * 1024
KEY_DISTRIBUTORS = ("NO_KEY", "KEY_ROUND_ROBIN", "RANDOM_NANO")
SHAPES = ("steady", "poisson", "bursts", "daily")
BUNDLED = "sqlitequeue.bench.workloads"
#: msg/s: the top of a max-rate search unless ``producerMaxRate`` says otherwise. The
#: harness is built to sustain it with the ``memory`` backend (1 KiB messages, 2 cores), and
#: :func:`sqlitequeue.bench.runner.verify_ceiling` checks that it does on this machine.
HARNESS_CEILING = 100_000.0
#: a max-rate step shortened by :meth:`Workload.with_duration` lasts at least this (s)
MIN_STEP_SECONDS = 2.0


@dataclass(frozen=True)
class RateShape:
    """How the rate varies over time around ``producerRate`` (the mean or base rate).

    * ``steady``: exactly ``producerRate`` msg/s, evenly spaced.
    * ``poisson``: exponential gaps with mean rate ``producerRate``.
    * ``bursts``: ``producerRate`` with ``burstRate`` msg/s for ``burstSeconds`` every
      ``periodSeconds`` (Poisson arrivals when ``poisson: true``).
    * ``daily``: a day compressed into ``periodSeconds``: a cosine from ``troughRate`` (at
      t=0, "night") up to ``peakRate`` (mid-period) and back; ``producerRate`` is ignored.
    """

    type: str = "steady"
    burst_rate: float = 0.0
    burst_seconds: float = 1.0
    period_seconds: float = 10.0
    peak_rate: float = 0.0
    trough_rate: float = 0.0
    poisson: bool = False


@dataclass(frozen=True)
class Trace:
    """A recorded trace to replay: ``file`` rows of (timestamp, size, key[, payload])."""

    file: str
    speed: float = 1.0
    timestamp_unit: str = "s"
    loop: bool = False


@dataclass(frozen=True)
class Workload:
    """One validated workload (OMB fields in snake_case plus our extensions)."""

    name: str
    path: str | None = None
    description: str = ""
    topics: int = 1
    partitions_per_topic: int = 1
    message_size: int = 1024
    payload_file: str | None = None
    subscriptions_per_topic: int = 1
    consumer_per_subscription: int = 1
    producers_per_topic: int = 1
    producer_rate: float = 100.0
    producer_start_rate: float = 50.0
    producer_max_rate: float = HARNESS_CEILING
    ramp_step_seconds: float = 3.0
    search_resolution: float = 0.1
    consumer_backlog_messages: int = 0
    duration_seconds: float = 60.0
    warmup_seconds: float = 0.0
    key_distributor: str = "NO_KEY"
    seed: int = 1
    p99_target_ms: float = 50.0
    shape: RateShape = field(default_factory=RateShape)
    trace: Trace | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finds_max_rate(self) -> bool:
        """True when ``producerRate: 0`` asks for the maximum sustainable rate."""
        return self.producer_rate == 0 and self.trace is None

    @property
    def peak_rate(self) -> float:
        """The highest scheduled rate in msg/s (0 for a max-rate search; trace: unknown=0)."""
        if self.finds_max_rate or self.trace is not None:
            return 0.0
        s = self.shape
        if s.type == "bursts":
            return max(self.producer_rate, s.burst_rate)
        if s.type == "daily":
            return s.peak_rate
        return self.producer_rate

    def with_duration(self, seconds: float, warmup: float | None = None) -> Workload:
        """Return a copy lasting ``seconds`` (warm-up scaled down to fit, or ``warmup``).

        A daily curve keeps one whole "day"; a backlog shrinks in proportion, so the
        shortened run keeps the workload's shape. A max-rate search keeps its step length
        when at least six steps fit, else steps shrink to fit six (never below
        MIN_STEP_SECONDS); ``seconds`` is then the search's time budget.
        """
        if seconds <= 0:
            raise WorkloadError(f"duration must be positive, got {seconds}")
        if warmup is None:
            warmup = min(self.warmup_seconds, seconds / 5)
        shape = self.shape
        if shape.type == "daily" and shape.period_seconds > seconds:
            shape = replace(shape, period_seconds=seconds)  # still one whole "day"
        step = min(self.ramp_step_seconds, max(MIN_STEP_SECONDS, (seconds - warmup) / 6))
        backlog = self.consumer_backlog_messages
        if backlog:  # the backlog keeps its share of the run
            backlog = max(1, round(backlog * seconds / self.duration_seconds))
        return replace(
            self,
            consumer_backlog_messages=backlog,
            duration_seconds=seconds,
            warmup_seconds=warmup,
            shape=shape,
            ramp_step_seconds=step,
        )

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready description (recorded in run.json)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("shape", "trace", "extra")}
        out["shape"] = dict(self.shape.__dict__)
        out["trace"] = None if self.trace is None else dict(self.trace.__dict__)
        return out


# --- loading ---------------------------------------------------------------------------

_INT = (int,)
_NUM = (int, float)

#: YAML field -> (attribute, accepted types, check) for the flat fields.
_FIELDS: dict[str, tuple[str, tuple[type, ...], str]] = {
    "name": ("name", (str,), "text"),
    "description": ("description", (str,), "text"),
    "topics": ("topics", _INT, ">=1"),
    "partitionsPerTopic": ("partitions_per_topic", _INT, ">=1"),
    "messageSize": ("message_size", _INT, "size"),
    "payloadFile": ("payload_file", (str,), "text"),
    "subscriptionsPerTopic": ("subscriptions_per_topic", _INT, ">=1"),
    "consumerPerSubscription": ("consumer_per_subscription", _INT, ">=1"),
    "producersPerTopic": ("producers_per_topic", _INT, ">=1"),
    "producerRate": ("producer_rate", _NUM, ">=0"),
    "producerStartRate": ("producer_start_rate", _NUM, ">0"),
    "producerMaxRate": ("producer_max_rate", _NUM, ">0"),
    "rampStepSeconds": ("ramp_step_seconds", _NUM, ">0"),
    "searchResolution": ("search_resolution", _NUM, "fraction"),
    "consumerBacklogMessages": ("consumer_backlog_messages", _INT, ">=0"),
    "keyDistributor": ("key_distributor", (str,), "key"),
    "seed": ("seed", _INT, "any"),
    "p99TargetMs": ("p99_target_ms", _NUM, ">0"),
}
#: OMB fields accepted and recorded, but not used by this runner.
_OMB_RECORDED = {
    "useRandomizedPayloads": (bool,),
    "randomBytesRatio": _NUM,
    "randomizedPayloadPoolSize": _INT,
    "acceptableBacklog": _INT,
    "producerIncrementRate": _INT,
    "producerIncrementSeconds": _INT,
    "messageRateReceivedForSubscription": _INT,
    "producerPauseBeforeDrain": _INT,
    "producerPauseDuringDrain": _INT,
    "backlogDrainRatio": _NUM,
}
_TIME_FIELDS = (
    "testDurationMinutes",
    "testDurationSeconds",
    "warmupDurationMinutes",
    "warmupDurationSeconds",
    "consumerBacklogSizeGB",
)
_SHAPE_FIELDS = {
    "type": ("type", (str,)),
    "burstRate": ("burst_rate", _NUM),
    "burstSeconds": ("burst_seconds", _NUM),
    "periodSeconds": ("period_seconds", _NUM),
    "peakRate": ("peak_rate", _NUM),
    "troughRate": ("trough_rate", _NUM),
    "poisson": ("poisson", (bool,)),
}
_TRACE_FIELDS = {
    "file": ("file", (str,)),
    "speed": ("speed", _NUM),
    "timestampUnit": ("timestamp_unit", (str,)),
    "loop": ("loop", (bool,)),
}
KNOWN_FIELDS = frozenset([*_FIELDS, *_OMB_RECORDED, *_TIME_FIELDS, "rateShape", "trace"])


def _bad(where: str, field_name: str, problem: str) -> WorkloadError:
    return WorkloadError(f"{where}: field {field_name!r} {problem}")


def _typed(where: str, name: str, value: Any, types: tuple[type, ...]) -> Any:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        want = " or ".join(t.__name__ for t in types)
        raise _bad(where, name, f"must be {want}, got {value!r}")
    return value


def _check(where: str, name: str, value: Any, rule: str) -> None:
    low = (rule == ">=1" and value < 1) or (rule == ">=0" and value < 0)
    if low or (rule == ">0" and value <= 0):
        raise _bad(where, name, f"must be {rule}, got {value!r}")
    if rule == "size" and not HEADER_SIZE <= value <= MAX_MESSAGE_SIZE:
        raise _bad(
            where,
            name,
            f"must be between {HEADER_SIZE} and {MAX_MESSAGE_SIZE} bytes "
            f"(the runner stamps a {HEADER_SIZE}-byte header), got {value!r}",
        )
    if rule == "fraction" and not 0 < value < 1:
        raise _bad(where, name, f"must be a fraction between 0 and 1 (0.1 = 10 %), got {value!r}")
    if rule == "key" and value not in KEY_DISTRIBUTORS:
        raise _bad(where, name, f"must be one of {', '.join(KEY_DISTRIBUTORS)}, got {value!r}")


def _sub_mapping(
    where: str, name: str, raw: Any, spec: Mapping[str, tuple[str, tuple[type, ...]]]
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise _bad(where, name, f"must be a mapping, got {raw!r}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in spec:
            raise _bad(where, f"{name}.{key}", f"is unknown; known: {', '.join(spec)}")
        attr, types = spec[key]
        out[attr] = _typed(where, f"{name}.{key}", value, types)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise _bad(where, f"{name}.{key}", f"must be >= 0, got {value!r}")
    return out


def _shape(where: str, raw: Any) -> RateShape:
    fields = _sub_mapping(where, "rateShape", raw, _SHAPE_FIELDS)
    shape = RateShape(**fields)
    if shape.type not in SHAPES:
        raise _bad(where, "rateShape.type", f"must be one of {', '.join(SHAPES)}")
    if shape.type in ("bursts", "daily") and shape.period_seconds <= 0:
        raise _bad(where, "rateShape.periodSeconds", "must be > 0")
    if shape.type == "bursts" and shape.burst_rate <= 0:
        raise _bad(where, "rateShape.burstRate", "must be > 0 for bursts")
    if shape.type == "daily" and shape.peak_rate <= 0:
        raise _bad(where, "rateShape.peakRate", "must be > 0 for a daily curve")
    return shape


def _trace(where: str, raw: Any, base: Path | None) -> Trace:
    fields = _sub_mapping(where, "trace", raw, _TRACE_FIELDS)
    if "file" not in fields:
        raise _bad(where, "trace.file", "is required (a JSONL or CSV file)")
    trace = Trace(**fields)
    if trace.speed <= 0:
        raise _bad(where, "trace.speed", f"must be > 0, got {trace.speed}")
    if trace.timestamp_unit not in ("s", "ms", "us"):
        raise _bad(where, "trace.timestampUnit", "must be s, ms or us")
    path = Path(trace.file)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists():
        raise _bad(where, "trace.file", f"names {path}, which does not exist")
    return replace(trace, file=str(path))


def parse_workload(raw: Any, where: str = "<workload>", base: Path | None = None) -> Workload:
    """Validate a workload mapping (as read from YAML) and return a :class:`Workload`.

    ``where`` names the source in error messages; ``base`` resolves relative file paths.
    Raises WorkloadError naming the field (and ``where``) for unknown or invalid fields.
    """
    if not isinstance(raw, Mapping):
        raise WorkloadError(f"{where}: a workload must be a YAML mapping of fields")
    unknown = [k for k in raw if k not in KNOWN_FIELDS]
    if unknown:
        raise _bad(where, str(unknown[0]), "is unknown; see `sqlitequeue bench list --fields`")
    if "name" not in raw:
        raise _bad(where, "name", "is required")
    values: dict[str, Any] = {}
    for key, (attr, types, rule) in _FIELDS.items():
        if key in raw:
            value = _typed(where, key, raw[key], types)
            _check(where, key, value, rule)
            values[attr] = float(value) if types is _NUM else value
    extra = {k: _typed(where, k, raw[k], t) for k, t in _OMB_RECORDED.items() if k in raw}
    for key in _TIME_FIELDS:
        if key in raw:
            _typed(where, key, raw[key], _NUM)
            _check(where, key, raw[key], ">=0")
    values.update(_times(where, raw))
    if "consumerBacklogSizeGB" in raw and "consumer_backlog_messages" not in values:
        size = values.get("message_size", 1024)
        values["consumer_backlog_messages"] = int(raw["consumerBacklogSizeGB"] * 1024**3 / size)
    if "rateShape" in raw:
        values["shape"] = _shape(where, raw["rateShape"])
    if "trace" in raw:
        values["trace"] = _trace(where, raw["trace"], base)
    if "payloadFile" in raw and base is not None:
        values["payload_file"] = str(base / raw["payloadFile"])
    return Workload(path=None if base is None else where, extra=extra, **values)


def _times(where: str, raw: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    if "testDurationSeconds" in raw:
        out["duration_seconds"] = float(raw["testDurationSeconds"])
    elif "testDurationMinutes" in raw:
        out["duration_seconds"] = float(raw["testDurationMinutes"]) * 60
    if "warmupDurationSeconds" in raw:
        out["warmup_seconds"] = float(raw["warmupDurationSeconds"])
    elif "warmupDurationMinutes" in raw:
        out["warmup_seconds"] = float(raw["warmupDurationMinutes"]) * 60
    if out.get("duration_seconds", 1) <= 0:
        raise _bad(where, "testDurationMinutes", "must be > 0")
    return out


def bundled_names() -> list[str]:
    """Return the names (file stems) of the bundled workloads, sorted."""
    folder = resources.files(BUNDLED)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve(name_or_path: str) -> Path:
    """Return the file for a bundled workload name or a path; raise WorkloadError if none."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    bundled = Path(str(resources.files(BUNDLED).joinpath(f"{name_or_path}.yaml")))
    if bundled.exists():
        return bundled
    if path.exists():
        return path
    import difflib

    close = difflib.get_close_matches(name_or_path, bundled_names(), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise WorkloadError(
        f"no workload named {name_or_path!r}: {hint}not a file, and not one of the bundled "
        f"workloads ({', '.join(bundled_names())}); see `sqlitequeue bench list`"
    )


def load_workload(name_or_path: str | Path) -> Workload:
    """Load a bundled workload by name, or a workload YAML file by path.

    Raises WorkloadError for a missing file, bad YAML, or an unknown/invalid field (the
    message names the field and the file).
    """
    import yaml

    path = resolve(str(name_or_path))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read the workload file: {exc}") from exc
    workload = parse_workload(raw, where=str(path), base=path.parent)
    return replace(workload, path=str(path))


# --- schedules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """One scheduled send: ``at`` seconds after the start, ``size`` bytes, ``key``."""

    at: float
    size: int
    key: bytes | None
    payload: bytes | None = None


def producer_rate(workload: Workload, producers: int) -> float:
    """Return each producer's share of ``producerRate``."""
    return workload.producer_rate / max(1, producers)


def _rate_at(workload: Workload, t: float, base: float, scale: float) -> float:
    s = workload.shape
    if s.type == "bursts":
        in_burst = (t % s.period_seconds) < s.burst_seconds
        return (s.burst_rate * scale) if in_burst else base
    if s.type == "daily":
        phase = 0.5 - 0.5 * math.cos(2 * math.pi * t / s.period_seconds)
        trough = s.trough_rate or s.peak_rate / 10
        return (trough + (s.peak_rate - trough) * phase) * scale
    return base


def _arrival_times(workload: Workload, index: int, producers: int) -> Iterator[float]:
    rng = random.Random(workload.seed * 1_000_003 + index)
    end = workload.duration_seconds
    scale = 1 / max(1, producers)
    base = producer_rate(workload, producers)

    def rate_of(t: float) -> float:
        return _rate_at(workload, t, base, scale)

    poisson = workload.shape.type == "poisson" or workload.shape.poisson
    t = index / max(1, producers) / max(rate_of(0.0), 1e-9) if not poisson else 0.0
    while True:
        rate = rate_of(t)
        if rate <= 0:
            t += 0.01
        else:
            t += rng.expovariate(rate) if poisson else 1 / rate
        if t >= end:
            return
        yield t


def send_keys(workload: Workload, index: int) -> Iterator[bytes | None]:
    """Yield producer ``index``'s record keys, one per send, as ``keyDistributor`` says."""
    rng = random.Random(workload.seed * 7919 + index)
    n = 0
    while True:
        if workload.key_distributor == "KEY_ROUND_ROBIN":
            yield b"key-%d" % (n % 1000)
        elif workload.key_distributor == "RANDOM_NANO":
            yield b"key-%d" % rng.getrandbits(40)
        else:
            yield None
        n += 1


def step_schedule(
    workload: Workload,
    rate: float,
    start: float,
    end: float,
    index: int = 0,
    producers: int = 1,
    keys: Iterator[bytes | None] | None = None,
) -> Iterator[Send]:
    """Yield producer ``index``'s share of ``rate`` msg/s from ``start`` to ``end`` seconds.

    One step of a max-rate search: evenly spaced and staggered across the ``producers``
    (exponential gaps for a poisson shape, seeded by the workload, index and ``start``).
    ``keys`` continues a producer's :func:`send_keys` across steps.
    """
    if rate <= 0 or end <= start:
        return
    keys = send_keys(workload, index) if keys is None else keys
    share = rate / max(1, producers)
    if workload.shape.type == "poisson" or workload.shape.poisson:
        rng = random.Random(f"{workload.seed}/{index}/{start:.6f}")
        t = start + rng.expovariate(share)
        while t < end:
            yield Send(t, workload.message_size, next(keys))
            t += rng.expovariate(share)
        return
    first = start + index / rate  # the producers take turns
    n = 0
    while (t := first + n / share) < end:
        yield Send(t, workload.message_size, next(keys))
        n += 1


def schedule(workload: Workload, index: int = 0, producers: int = 1) -> Iterator[Send]:
    """Yield producer ``index``'s sends (of ``producers`` sharing the workload), in order.

    Deterministic: the same workload, seed, index and producer count yield the same
    schedule. Times are seconds from the run's start and stop before its duration.
    For a trace, producers take every ``producers``-th record. A max-rate search's rates
    are decided as it runs (:func:`step_schedule` per step); on its own, its schedule is
    ``producerStartRate`` throughout.
    """
    if workload.trace is not None:
        yield from _trace_schedule(workload, index, producers)
        return
    if workload.finds_max_rate:
        rate = workload.producer_start_rate
        yield from step_schedule(workload, rate, 0.0, workload.duration_seconds, index, producers)
        return
    keys = send_keys(workload, index)
    for at in _arrival_times(workload, index, producers):
        yield Send(at, workload.message_size, next(keys))


def read_trace(trace: Trace) -> list[Send]:
    """Read a JSONL or CSV trace into sends with times from 0 (seconds, before ``speed``).

    Each record has ``timestamp``, ``size`` and optionally ``key`` and ``payload``
    (base64). Raises WorkloadError for a malformed row, naming the file and line.
    """
    path = Path(trace.file)
    unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[trace.timestamp_unit]
    rows: list[Send] = []
    with open(path, newline="") as fh:
        if path.suffix == ".csv":
            records: Iterator[tuple[int, Mapping[str, Any]]] = (
                (n + 2, r) for n, r in enumerate(csv.DictReader(fh))
            )
        else:
            records = (
                (n + 1, _json_line(path, n + 1, line)) for n, line in enumerate(fh) if line.strip()
            )
        for line_no, rec in records:
            rows.append(_trace_row(path, line_no, rec, unit))
    if not rows:
        raise WorkloadError(f"{path}: the trace holds no records")
    rows.sort(key=lambda s: s.at)
    t0 = rows[0].at
    return [replace(s, at=s.at - t0) for s in rows]


def _json_line(path: Path, line_no: int, line: str) -> Mapping[str, Any]:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{path}:{line_no}: not valid JSON: {exc}") from exc
    if not isinstance(rec, Mapping):
        raise WorkloadError(f"{path}:{line_no}: each line must be a JSON object")
    return rec


def _trace_row(path: Path, line_no: int, rec: Mapping[str, Any], unit: float) -> Send:
    try:
        at = float(rec["timestamp"]) * unit
        size = max(HEADER_SIZE, int(rec["size"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkloadError(
            f"{path}:{line_no}: each record needs a numeric timestamp and size ({exc})"
        ) from exc
    key = rec.get("key")
    payload = rec.get("payload")
    return Send(
        at,
        size,
        None if key in (None, "") else str(key).encode(),
        base64.b64decode(payload) if payload else None,
    )


def _trace_schedule(workload: Workload, index: int, producers: int) -> Iterator[Send]:
    assert workload.trace is not None
    sends = read_trace(workload.trace)
    speed = workload.trace.speed
    span = sends[-1].at + (sends[-1].at / max(1, len(sends) - 1))
    offset = 0.0
    while True:
        for n, send in enumerate(sends):
            if n % producers != index:
                continue
            at = (send.at + offset) / speed
            if at >= workload.duration_seconds:
                return
            yield replace(send, at=at)
        if not workload.trace.loop or span <= 0:
            return
        offset += span


def payload_pool(workload: Workload, size: int = 1 << 20) -> bytes:
    """Return bytes to slice payloads from: the payload file if it exists, else seeded random.

    OMB's ``payloadFile`` paths often point into OMB's own tree; a missing file falls
    back to random bytes of the same size, so the workload still runs unchanged.
    """
    if workload.payload_file and Path(workload.payload_file).is_file():
        data = Path(workload.payload_file).read_bytes()
        if data:
            return data * (1 + max(size, workload.message_size) // len(data))
    rng = random.Random(workload.seed)
    return rng.randbytes(max(size, 2 * workload.message_size))
