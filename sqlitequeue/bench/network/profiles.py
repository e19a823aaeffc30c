"""Network profiles: how far Kafka's clients sit from its brokers, each delay with its source.

A profile is a YAML file beside this module (``name``, ``description``, ``rtt_ms``,
``jitter_ms``, ``source``), or ``custom`` with the round trip given on the command line.
Toxiproxy delays in whole milliseconds, so ``rtt_ms`` and ``jitter_ms`` are whole numbers;
``loopback`` means no proxy at all, every other profile puts a proxy on each hop.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from sqlitequeue.bench.errors import BenchError

LOOPBACK = "loopback"
CUSTOM = "custom"
PACKAGE = "sqlitequeue.bench.network"
FIELDS = ("name", "description", "rtt_ms", "jitter_ms", "source")


@dataclass(frozen=True)
class NetworkProfile:
    """One emulated network: the added round trip and jitter, in whole milliseconds."""

    name: str
    description: str
    rtt_ms: int
    jitter_ms: int
    source: str

    @property
    def emulated(self) -> bool:
        """False for ``loopback`` (no proxies); True when every hop goes through a proxy."""
        return self.name != LOOPBACK

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the profile, stored with every result."""
        return asdict(self)


def network_names() -> list[str]:
    """The bundled profiles' names, then ``custom``."""
    folder = resources.files(PACKAGE)
    names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [*names, CUSTOM]


def load_network(
    name: str | None, *, rtt_ms: int | None = None, jitter_ms: int | None = None
) -> NetworkProfile:
    """Return the profile called ``name`` (default loopback).

    ``custom`` needs ``rtt_ms`` (and takes ``jitter_ms``, default 0); the bundled profiles
    refuse them. Raises BenchError naming the choices (with a "did you mean") for an unknown
    name, and for a negative or fractional delay.
    """
    name = (name or LOOPBACK).strip()
    if name == CUSTOM:
        if rtt_ms is None:
            raise BenchError("--network custom needs --rtt-ms N (and optionally --jitter-ms J)")
        return _checked(
            NetworkProfile(
                CUSTOM,
                f"a custom network: {rtt_ms} ms round trip, up to {jitter_ms or 0} ms jitter",
                rtt_ms,
                jitter_ms or 0,
                "given on the command line",
            )
        )
    if rtt_ms is not None or jitter_ms is not None:
        raise BenchError(f"--rtt-ms and --jitter-ms go with --network custom, not {name!r}")
    if name not in network_names():
        close = difflib.get_close_matches(name, network_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BenchError(
            f"unknown network profile {name!r}{hint}; choose one of {', '.join(network_names())}"
        )
    return _checked(_read(name))


def _read(name: str) -> NetworkProfile:
    import yaml

    text = resources.files(PACKAGE).joinpath(f"{name}.yaml").read_text()
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict) or sorted(raw) != sorted(FIELDS):
        raise BenchError(f"network profile {name}.yaml must hold exactly {', '.join(FIELDS)}")
    return NetworkProfile(**{field: raw[field] for field in FIELDS})


def _checked(profile: NetworkProfile) -> NetworkProfile:
    for field in ("rtt_ms", "jitter_ms"):
        value = getattr(profile, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BenchError(
                f"network {profile.name}: {field} must be a whole number of milliseconds >= 0 "
                f"(Toxiproxy delays in 1 ms steps), not {value!r}"
            )
    return profile
