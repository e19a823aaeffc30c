"""Project the monthly bill of MSK, MSK Serverless, Confluent Basic, Kafka on VMs and SQLite.

Prices and sizing rules come from the bundled parameters file (each value with its source and
date; list them with --list-params); override any with --params FILE (YAML of `name: value`).
Traffic comes from a team profile (--profile, as for `sqlitequeue decide`) or the flags.
Prints the projection table and its assumptions, and writes a results folder (kind "cost")
with the line items, the sweep, the break-even points and two charts (PNG): cost vs
throughput (break-even points marked) and cost breakdown. With --results, the SQLite
capacity measured in a bench run marks where the single file runs out.

Example:
  sqlitequeue bench cost --profile examples/profiles/seed.yaml
  sqlitequeue bench cost --peak-rate 5000 --message-bytes 2048 --params my-prices.yaml
  sqlitequeue bench cost --profile seed.yaml --params vm.yaml   # vm.yaml: `vm_exists: true`
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from sqlitequeue.cli.command import Command, ExitCode

if TYPE_CHECKING:
    from sqlitequeue.bench.cost import Traffic

HELP = "project monthly costs of managed/self-run Kafka and SQLite+Litestream; write charts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --profile, traffic flags, --params, --results, --out and --list-params."""
    parser.add_argument("--profile", metavar="FILE", help="team profile YAML (traffic fields)")
    parser.add_argument("--peak-rate", type=float, help="peak msg/s (default 1000)")
    parser.add_argument("--average-rate", type=float, help="average msg/s (default: peak)")
    parser.add_argument("--message-bytes", type=int, help="message size (default 1024)")
    parser.add_argument("--retention-hours", type=float, help="retention (default 24)")
    parser.add_argument("--consumer-groups", type=int, help="consumer groups (default 1)")
    parser.add_argument("--params", metavar="FILE", help="parameter overrides (YAML)")
    parser.add_argument("--results", metavar="DIR", help="bench results: measured SQLite capacity")
    parser.add_argument(
        "--broker-mib-s",
        type=float,
        metavar="MIB_S",
        help="a measured single-broker max ingress (MiB/s): sizes Kafka instead of the "
        "published 12.5 MiB/s per broker (derated by CPU headroom and RF)",
    )
    parser.add_argument("--out", metavar="DIR", default="results", help="results root")
    parser.add_argument(
        "--list-params", action="store_true", help="print every parameter with its source"
    )


def _sqlite_capacity(results: str | None) -> float | None:
    if not results:
        return None
    from sqlitequeue.bench.decide.evidence import gather_evidence, sqlite_capacity

    measured = sqlite_capacity(gather_evidence([results]))
    return measured.rate if measured else None


def _traffic(args: argparse.Namespace) -> Traffic:
    from sqlitequeue.bench.cost import Traffic
    from sqlitequeue.bench.decide.team_profile import load_profile

    base: dict[str, Any] = {
        "peak_rate": 1000.0,
        "average_rate": None,
        "message_bytes": 1024,
        "retention_hours": 24.0,
        "consumer_groups": 1,
    }
    if args.profile:
        t = load_profile(args.profile).traffic()
        base = {k: getattr(t, k) for k in base}
    for key in base:
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.peak_rate is not None and args.average_rate is None:
        base["average_rate"] = None
    return Traffic(**base)


def run(args: argparse.Namespace) -> int:
    """Print the projection and write the results folder with charts; return ExitCode.OK."""
    from sqlitequeue.bench import cost
    from sqlitequeue.bench.results import RunWriter, new_run_id

    params = cost.load_parameters(args.params) if args.params else cost.load_parameters()
    if args.list_params:
        for entry in params.entries.values():
            print(f"{entry.name} = {entry.value!r} {entry.unit}  [{entry.source}; {entry.date}]")
        return ExitCode.OK
    traffic = _traffic(args)
    capacity = _sqlite_capacity(args.results)
    measured = {"sqlite_capacity": capacity, "measured_broker_mib_s": args.broker_mib_s}
    projections = cost.project(traffic, params, **measured)
    print(cost.format_table(projections))
    print("\nassumptions:")
    for line in cost.common_assumptions(traffic, params):
        print(f"  - {line}")
    for p in projections:
        print(f"  - {p.label}: " + "; ".join(p.assumptions))
    df = cost.sweep(traffic, cost.default_rates(traffic.peak_rate), params, **measured)
    points = cost.break_even_points(df, f"sqlite-{params['object_store']}")
    with RunWriter(args.out, new_run_id("cost"), kind="cost") as writer:
        writer.metadata(traffic=vars(traffic), **measured)
        writer.table(
            "cost_items",
            [{"architecture": p.architecture, **vars(i)} for p in projections for i in p.items],
        )
        writer.table("cost_sweep", df.to_dict("records"))
        writer.table("break_even", points.to_dict("records"))
        writer.table("cost_parameters", params.table())
        charts = {
            "cost_vs_throughput.png": cost.plot_cost_vs_throughput(df, points, capacity),
            "cost_breakdown.png": cost.plot_breakdown(projections),
        }
        for name, fig in charts.items():
            fig.savefig(writer.dir / name, dpi=110)
    print(f"\nbreak-even (vs sqlite-{params['object_store']}):")
    for row in points.itertuples():
        if math.isnan(row.peak_rate):
            print(f"  {row.label}: no crossing in the sweep; {row.cheaper_below} is cheaper")
        else:
            print(
                f"  {row.label}: {row.peak_rate:,.0f} msg/s (${row.cost:,.2f}/month); "
                f"{row.cheaper_below} cheaper below, {row.cheaper_above} above"
            )
    print(f"\nwrote {writer.dir}")
    return ExitCode.OK


COMMAND = Command("cost", HELP, add_arguments, run, description=__doc__)
