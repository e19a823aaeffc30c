"""Kafka's own tools against a real broker and against `sqlitequeue serve`, in one run.

On a broker (KafkaBroker.auto(): KAFKA_BOOTSTRAP_SERVERS, else a local JVM broker) and on
a gateway (`sqlitequeue serve` on a fresh file), after one uncounted warm-up run of each
producer (a fresh JVM broker is much slower at first), alternating which goes first; each
tool gets the same settings on both, but not every tool the same ones:

- Kafka's ProducerPerformance (Java client, cached Kafka jars), with the profile's
  producer.* keys (acks=all by default): records/s, MB/s and the tool's latency
  avg/p50/p99; on the broker also the kafka-confluent backend's producer with the same
  profile (is Kafka handicapped by our Python client? target: within 2x);
- Kafka's EndToEndLatency (one record of --size at a time), given only acks and the size:
  avg/p50/p99/p99.9;
- confluent-kafka end to end at a steady --rate msg/s (acks, linger.ms=0, not idempotent,
  records of about 17 bytes: their send time): p50/p99; it fails if a record is missing;
- the gateway server's peak RSS over the run, and its CPU while idle (alone, then with
  one idle consumer).

It prints a table (broker, gateway, gateway/broker, issue 14's targets). --against picks
the targets (default both); --network puts both behind the same emulated hop. Results go
to <out>/<run-id>/ (run.json, fairness.csv, latency.csv, metrics.csv).

Example:
  sqlitequeue bench fairness --count 200000 --size 1024 --runs 3
  sqlitequeue bench fairness --against gateway --network cross-az
"""

from __future__ import annotations

import argparse

from sqlitequeue.bench.commands.arguments import add_network_arguments, name_list, network_from
from sqlitequeue.cli.command import Command, ExitCode

HELP = "Kafka's ProducerPerformance and EndToEndLatency against the broker and the gateway"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    parser.add_argument(
        "--against",
        type=name_list,
        default=["broker", "gateway"],
        help="what to measure, comma-separated: broker, gateway (default: broker,gateway)",
    )
    parser.add_argument(
        "--count", type=int, default=200_000, help="ProducerPerformance records (default: 200000)"
    )
    parser.add_argument(
        "--size", type=int, default=1024, help="record size in bytes (default: 1024)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of each, median reported (default: 3)"
    )
    parser.add_argument(
        "--partitions", type=int, default=1, help="partitions per topic (default: 1)"
    )
    parser.add_argument(
        "--profile",
        default="kafka-throughput",
        help="Kafka profile, name or YAML path (default: kafka-throughput)",
    )
    parser.add_argument("--acks", help="override the profile's acks (all, 1, 0)")
    parser.add_argument(
        "--e2e-count",
        type=int,
        default=5_000,
        help="EndToEndLatency records, sent one at a time (default: 5000)",
    )
    parser.add_argument(
        "--rate", type=int, default=1000, help="paced end-to-end rate, msg/s (default: 1000)"
    )
    parser.add_argument(
        "--rate-seconds",
        type=float,
        default=20.0,
        help="seconds of the paced end-to-end probe (default: 20)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=10.0,
        help="seconds of each idle-CPU sample of the gateway (default: 10)",
    )
    parser.add_argument(
        "--mode", help="broker: auto, external, local, testcontainers (default: auto)"
    )
    add_network_arguments(parser, what="Kafka and the gateway")
    parser.add_argument(
        "--out", default="results", help="results root directory (default: results)"
    )


def _usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, or None."""
    from sqlitequeue.bench.kafka.fairness import TARGETS

    unknown = [name for name in args.against if name not in TARGETS]
    if unknown or not args.against:
        return f"--against takes {' and/or '.join(TARGETS)}, not {','.join(unknown) or '(none)'}"
    positive = (args.count, args.runs, args.partitions, args.e2e_count, args.rate)
    if min(positive) < 1 or args.size < 0:
        return "--count, --runs, --partitions, --e2e-count and --rate must be >= 1, --size >= 0"
    if args.rate_seconds <= 0 or args.idle_seconds <= 0:
        return "--rate-seconds and --idle-seconds must be > 0"
    return None


def run(args: argparse.Namespace) -> int:
    """Run the comparison; print the table; return ExitCode.OK (2 for bad arguments)."""
    from contextlib import nullcontext

    from sqlitequeue.bench.kafka.broker import KafkaBroker
    from sqlitequeue.bench.kafka.fairness import Comparison, summary_lines, write_results
    from sqlitequeue.bench.profiles import load_profile

    problem = _usage_error(args)
    if problem is not None:
        print(f"error: {problem}")
        return ExitCode.USAGE
    network = network_from(args)
    settings = load_profile(args.profile).settings_for("kafka-confluent")
    settings.setdefault("producer.acks", "all")
    if args.acks is not None:
        settings["producer.acks"] = args.acks
    against = tuple(name for name in ("broker", "gateway") if name in args.against)
    wanted = "broker" in against
    broker_cm = KafkaBroker.auto(args.mode, network=network) if wanted else nullcontext()
    with broker_cm as broker:
        info = broker.describe() if broker is not None else None
        if info is not None:
            version = info.get("version") or "(version unknown)"
            print(f"broker: {info.get('mode')} Kafka {version} at {info.get('bootstrap')}")
        comparison = Comparison(
            servers=broker.bootstrap_servers if broker is not None else None,
            settings=settings,
            profile=args.profile,
            count=args.count,
            size=args.size,
            partitions=args.partitions,
            against=against,
            network=network if network.emulated else None,
            e2e_count=args.e2e_count,
            rate=args.rate,
            rate_seconds=args.rate_seconds,
            idle_seconds=args.idle_seconds,
        )
        found = comparison.run(args.runs, progress=lambda line: print(line, flush=True))
        print("\n".join(summary_lines(comparison, found)))
        path = write_results(args.out, comparison, found, info)
        print(f"results: {path}")
    return ExitCode.OK


COMMAND = Command("fairness", HELP, add_arguments, run, description=__doc__)
