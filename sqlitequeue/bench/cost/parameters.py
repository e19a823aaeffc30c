"""The cost model's parameters: every price and sizing constant, with unit, source and date.

They come from ``parameters.yaml`` beside this module; :func:`load_parameters` overrides any of
them from a YAML file or a dict, and records where each override came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.errors import BenchError

if TYPE_CHECKING:
    pass

GB = 1e9
GIB = float(2**30)
MIB = float(2**20)

#: architecture id -> label, in display order
ARCHITECTURES: dict[str, str] = {
    "msk": "Amazon MSK provisioned",
    "msk-serverless": "Amazon MSK Serverless",
    "confluent-basic": "Confluent Cloud Basic",
    "kafka-vms": "Self-managed Kafka on VMs",
    "sqlite-s3": "1 VM + SQLite + Litestream to S3",
    "sqlite-r2": "1 VM + SQLite + Litestream to R2",
    "sqlite-b2": "1 VM + SQLite + Litestream to B2",
}
KAFKA_ARCHITECTURES = ("msk", "msk-serverless", "confluent-basic", "kafka-vms")
SQLITE_ARCHITECTURES = ("sqlite-s3", "sqlite-r2", "sqlite-b2")
#: parameter families whose members a user may add (e.g. ``ec2_hour.c7g.large``)
OPEN_FAMILIES = ("msk_broker_hour.", "ec2_hour.")
#: The date column of an override that gives none (its source says where it came from).
UNDATED = "not dated"


# ------------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Parameter:
    """One price or sizing constant with where it came from."""

    name: str
    value: Any
    unit: str
    source: str
    date: str
    note: str = ""


@dataclass(frozen=True)
class Parameters:
    """All parameters by name.

    ``params["x"]`` returns the value; ``params.entry("x")`` the full record.
    """

    entries: Mapping[str, Parameter]

    def __getitem__(self, name: str) -> Any:
        return self.entry(name).value

    def entry(self, name: str) -> Parameter:
        """Return the full record for ``name``; raise BenchError naming it if unknown."""
        try:
            return self.entries[name]
        except KeyError:
            raise BenchError(
                f"cost parameter {name!r} is not defined; add it with --params "
                "(a YAML file of `name: value`)"
            ) from None

    def overridden(self) -> list[Parameter]:
        """Return the entries a user overrode."""
        return [p for p in self.entries.values() if p.source.startswith("user override")]

    def override(self, overrides: Mapping[str, Any], origin: str = "dict") -> Parameters:
        """Return a copy with ``overrides`` (``name: value`` or ``name: {value: ...}``) applied.

        An override without a ``date`` is marked :data:`UNDATED` (not today's date, so a
        table or notebook rendered from the same inputs is the same on any day).
        Raises BenchError naming the parameter when a name is unknown (typo guard; new
        members of ``msk_broker_hour.*`` and ``ec2_hour.*`` are allowed), a record has no
        value, or a value's type does not match the default's.
        """
        entries = dict(self.entries)
        for name, spec in overrides.items():
            rec = dict(spec) if isinstance(spec, Mapping) else {"value": spec}
            if "value" not in rec:
                raise BenchError(f"cost parameter override {name!r} in {origin} has no 'value'")
            old = entries.get(name)
            if old is None and not name.startswith(OPEN_FAMILIES):
                raise BenchError(
                    f"unknown cost parameter {name!r} in {origin}; "
                    "see `sqlitequeue bench cost --list-params` for the names"
                )
            value = rec["value"]
            if old is not None and not _same_kind(old.value, value):
                raise BenchError(
                    f"cost parameter {name!r} in {origin} must be like {old.value!r}, got {value!r}"
                )
            entries[name] = Parameter(
                name,
                value,
                str(rec.get("unit", old.unit if old else "")),
                str(rec.get("source", f"user override ({origin})")),
                str(rec.get("date", UNDATED)),
                str(rec.get("note", "")),
            )
        return Parameters(entries)

    def table(self) -> list[dict[str, Any]]:
        """Return every parameter as a dict row (name, value, unit, source, date, note)."""
        return [vars(p).copy() for p in self.entries.values()]


def _read_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BenchError(f"{where} is not valid YAML: {exc}") from exc


def default_parameters() -> Parameters:
    """Return the bundled parameters (``sqlitequeue/bench/cost/parameters.yaml``)."""
    text = resources.files("sqlitequeue.bench.cost").joinpath("parameters.yaml").read_text()
    raw = _read_yaml(text, "parameters.yaml")
    entries = {}
    for name, rec in raw.items():
        if name.startswith("_"):
            continue
        entries[name] = Parameter(
            name,
            rec["value"],
            str(rec["unit"]),
            str(rec["source"]),
            str(rec["date"]),
            str(rec.get("note", "")),
        )
    return Parameters(entries)


def load_parameters(
    overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> Parameters:
    """Return the bundled parameters with ``overrides`` applied.

    ``overrides`` is a dict or a YAML file path holding ``name: value`` or
    ``name: {value: ..., source: ..., date: ...}``. Raises BenchError as
    :meth:`Parameters.override` does, or when the file is missing or not a mapping.
    """
    params = default_parameters()
    if overrides is None:
        return params
    if isinstance(overrides, Mapping):
        return params.override(overrides)
    path = Path(overrides)
    if not path.exists():
        raise BenchError(f"parameters file {path} does not exist")
    loaded = _read_yaml(path.read_text(), str(path)) or {}
    if not isinstance(loaded, Mapping):
        raise BenchError(f"{path} must hold a mapping of parameter names to values")
    return params.override(loaded, origin=str(path))


def _same_kind(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)):
        return isinstance(new, (int, float))
    return isinstance(new, type(old))
