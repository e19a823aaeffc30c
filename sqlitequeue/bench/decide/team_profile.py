"""Team profiles for ``sqlitequeue decide``: the fields, their checks, and :func:`load_profile`.

A team profile (YAML, see ``examples/profiles/``) states peak and average rate, message size,
writers and regions, how long writes may be unavailable, how long a crashed consumer's work may
wait, how much data may be lost, retention, consumer groups, Kafka ecosystem needs and team
capacity; :data:`FIELDS` lists every field with its meaning. (Not to be confused with
:mod:`sqlitequeue.bench.profiles`, the backend settings profiles.)

``kafka_network`` names the network the team's Kafka is reached over (``cross-az`` for a
managed cluster in one region): decide's latency criterion then judges Kafka by the runs over
that network only (backend labels such as ``kafka-managed@cross-az``).

``redelivery_tolerance_s`` came later than the other fields: a profile without it gets
:data:`DEFAULT_REDELIVERY_TOLERANCE_S`, which the queue's default lease (30 s), the stream's
(10 s) and Kafka's default ``session.timeout.ms`` (45 s) all meet.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlitequeue.bench import cost
from sqlitequeue.bench.errors import ProfileError
from sqlitequeue.bench.network.profiles import CUSTOM, network_names

#: Kafka ecosystem pieces a profile may name under ``kafka_ecosystem``
ECOSYSTEM = ("kafka-streams", "ksqldb", "kafka-connect", "schema-registry", "mirrormaker", "flink")
TEAM_CAPACITY = ("small", "kafka-ops")
OBJECT_STORES = ("s3", "r2", "b2")
#: networks a profile may name under ``kafka_network`` (``custom`` has no fixed round trip)
KAFKA_NETWORKS = tuple(n for n in network_names() if n != CUSTOM)
#: seconds a crashed consumer's messages may wait, for profiles that do not say
DEFAULT_REDELIVERY_TOLERANCE_S = 60.0

#: field -> (kind, required, what it means); kinds: num, int, bool, str, list
FIELDS: dict[str, tuple[str, bool, str]] = {
    "name": ("str", False, "a short name for the report (default: the file name)"),
    "description": ("str", False, "free text"),
    "peak_rate": ("num", True, "peak messages per second, e.g. 300"),
    "average_rate": ("num", False, "average messages per second (default: peak_rate)"),
    "message_bytes": ("int", True, "typical message size in bytes, e.g. 1024"),
    "writers": ("int", True, "hosts that must write to the log, e.g. 1"),
    "writers_can_funnel": ("bool", False, "true if several writers can go through one service"),
    "regions": ("int", True, "regions that must accept writes, e.g. 1"),
    "downtime_tolerance_s": (
        "num",
        True,
        "seconds producers may be unable to write when the host (or a broker) is lost, e.g. 30",
    ),
    "redelivery_tolerance_s": (
        "num",
        False,
        "seconds a crashed consumer's in-flight messages may wait before another consumer gets "
        f"them (default {DEFAULT_REDELIVERY_TOLERANCE_S:g})",
    ),
    "data_loss_tolerance_s": (
        "num",
        True,
        "seconds of acknowledged writes that may be lost when the host is lost, e.g. 5",
    ),
    "retention_hours": ("num", True, "how long messages are kept, e.g. 168"),
    "consumer_groups": ("int", True, "independent consumer groups reading everything, e.g. 2"),
    "kafka_ecosystem": ("list", True, f"Kafka tools you rely on: [] or some of {list(ECOSYSTEM)}"),
    "team_capacity": ("str", True, f"one of {list(TEAM_CAPACITY)}"),
    "headroom": ("num", False, "measured capacity required per unit of peak (default 2.0)"),
    "p99_target_ms": ("num", False, "end-to-end p99 latency the team needs, in ms"),
    "monthly_budget_usd": ("num", False, "what the team is willing to pay per month"),
    "vm_exists": ("bool", False, "true if the queue can ride on a VM you already pay for"),
    "object_store": ("str", False, f"Litestream target, one of {list(OBJECT_STORES)}"),
    "kafka_network": (
        "str",
        False,
        "the network between your Kafka clients and brokers, whose runs the latency criterion "
        f"uses: one of {list(KAFKA_NETWORKS)} (default: every Kafka run)",
    ),
}


@dataclass(frozen=True)
class Profile:
    """A validated team profile (see :data:`FIELDS` for the meaning of each field)."""

    name: str
    peak_rate: float
    message_bytes: int
    writers: int
    regions: int
    downtime_tolerance_s: float
    data_loss_tolerance_s: float
    retention_hours: float
    consumer_groups: int
    kafka_ecosystem: tuple[str, ...]
    team_capacity: str
    average_rate: float | None = None
    redelivery_tolerance_s: float = DEFAULT_REDELIVERY_TOLERANCE_S
    writers_can_funnel: bool = False
    headroom: float = 2.0
    p99_target_ms: float | None = None
    monthly_budget_usd: float | None = None
    vm_exists: bool = False
    object_store: str = "s3"
    kafka_network: str | None = None
    description: str = ""

    def traffic(self) -> cost.Traffic:
        """The profile as cost-model input."""
        return cost.Traffic(
            peak_rate=self.peak_rate,
            average_rate=self.average_rate,
            message_bytes=self.message_bytes,
            retention_hours=self.retention_hours,
            consumer_groups=self.consumer_groups,
        )


def _bad(where: str, name: str, problem: str) -> ProfileError:
    return ProfileError(f"profile {where}: field {name!r} {problem} ({FIELDS[name][2]})")


def _check_kind(where: str, name: str, value: Any) -> Any:
    kind = FIELDS[name][0]
    is_num = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "num" and not (is_num and math.isfinite(value)):
        raise _bad(where, name, f"must be a number, got {value!r}")
    if kind == "int" and not (is_num and float(value).is_integer()):
        raise _bad(where, name, f"must be a whole number, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        raise _bad(where, name, f"must be true or false, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        raise _bad(where, name, f"must be text, got {value!r}")
    if kind == "list":
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad(where, name, f"must be a list of names, got {value!r}")
        return tuple(value)
    return int(value) if kind == "int" else value


def _check_ranges(where: str, v: dict[str, Any]) -> None:
    positive = ("peak_rate", "message_bytes", "writers", "regions", "headroom")
    non_negative = (
        "average_rate",
        "downtime_tolerance_s",
        "redelivery_tolerance_s",
        "data_loss_tolerance_s",
        "retention_hours",
        "consumer_groups",
        "p99_target_ms",
        "monthly_budget_usd",
    )
    for name in positive:
        if name in v and v[name] <= 0:
            raise _bad(where, name, f"must be > 0, got {v[name]!r}")
    for name in non_negative:
        if v.get(name) is not None and v[name] < 0:
            raise _bad(where, name, f"must be >= 0, got {v[name]!r}")
    if v.get("average_rate") is not None and v["average_rate"] > v["peak_rate"]:
        raise _bad(where, "average_rate", f"must not exceed peak_rate ({v['peak_rate']})")
    if v["team_capacity"] not in TEAM_CAPACITY:
        raise _bad(where, "team_capacity", f"is {v['team_capacity']!r}")
    if v.get("object_store", "s3") not in OBJECT_STORES:
        raise _bad(where, "object_store", f"is {v['object_store']!r}")
    network = v.get("kafka_network")
    if network is not None and network not in KAFKA_NETWORKS:
        close = difflib.get_close_matches(network, KAFKA_NETWORKS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _bad(where, "kafka_network", f"is {network!r}{hint}")
    unknown = [e for e in v["kafka_ecosystem"] if e not in ECOSYSTEM]
    if unknown:
        raise _bad(where, "kafka_ecosystem", f"names unknown tool(s) {unknown}")


def load_profile(source: Mapping[str, Any] | str | os.PathLike[str]) -> Profile:
    """Return the validated profile from a YAML file path or a dict.

    Raises ProfileError naming the field when one is missing, unknown, of the wrong type or
    out of range, and when the file is missing or is not a YAML mapping.
    """
    where, name = "(dict)", "profile"
    if not isinstance(source, Mapping):
        path = Path(source)
        where, name = str(path), path.stem
        if not path.is_file():
            near = [p.name for p in path.parent.glob("*.y*ml")] if path.parent.is_dir() else []
            close = difflib.get_close_matches(path.name, near, n=1)
            hint = f"did you mean {str(path.with_name(close[0]))!r}? " if close else ""
            raise ProfileError(f"profile {path} does not exist; {hint}see examples/profiles/")
        import yaml

        try:
            source = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ProfileError(f"profile {path} is not valid YAML: {exc}") from exc
        if not isinstance(source, Mapping):
            raise ProfileError(f"profile {path} must be a mapping of field: value")
    unknown = sorted(map(str, set(source) - set(FIELDS)))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(FIELDS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProfileError(
            f"profile {where}: unknown field {unknown[0]!r}; {hint}the fields are "
            f"{', '.join(FIELDS)}"
        )
    values: dict[str, Any] = {"name": name}
    for key, (_, required, _) in FIELDS.items():
        if key not in source or (source[key] is None and key != "kafka_ecosystem"):
            if required:
                raise _bad(where, key, "is missing")
            continue
        values[key] = _check_kind(where, key, source[key])
    _check_ranges(where, values)
    return Profile(**values)
