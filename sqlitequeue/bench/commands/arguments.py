"""Argument types shared by the workbench's commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlitequeue.bench.network.profiles import NetworkProfile


def name_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: a comma-separated list of names."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_network_arguments(parser: argparse.ArgumentParser, *, what: str = "Kafka") -> None:
    """Add ``--network NAME`` and, for ``custom``, ``--rtt-ms`` and ``--jitter-ms``."""
    parser.add_argument(
        "--network",
        metavar="NAME",
        help=f"emulated network between {what}'s clients and brokers: loopback (default), "
        "same-az, cross-az, cross-region, or custom (with --rtt-ms); see docs/network.md",
    )
    parser.add_argument(
        "--rtt-ms", type=int, metavar="MS", help="round trip of --network custom (whole ms)"
    )
    parser.add_argument(
        "--jitter-ms", type=int, metavar="MS", help="jitter of --network custom (whole ms)"
    )


def network_from(args: argparse.Namespace) -> NetworkProfile:
    """The network profile the parsed arguments name (BenchError, with a hint, if unknown)."""
    from sqlitequeue.bench.network.profiles import load_network

    return load_network(args.network, rtt_ms=args.rtt_ms, jitter_ms=args.jitter_ms)
