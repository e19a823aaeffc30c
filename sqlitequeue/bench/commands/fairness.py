"""Is Kafka handicapped by our Python client? Compare with Kafka's own producer tool.

On one broker (KafkaBroker.auto(): KAFKA_BOOTSTRAP_SERVERS, else a local JVM broker),
runs Kafka's org.apache.kafka.tools.ProducerPerformance (the Java client, from the cached
Kafka jars) and the kafka-confluent backend's producer with the same message size, count,
partitions and producer settings (the profile's producer.* keys, passed to both), each on
a fresh topic, alternating which goes first, and prints both rates and their ratio.
Target: the backend within 2x of Kafka's own tool (1 KiB messages by default).

Both are timed the same way: from the first send until every record is acknowledged
(ProducerPerformance's own figure; the JVM's start-up is not counted). CPU seconds of
each side are shown too. Results go to <out>/<run-id>/ (run.json, metrics.csv,
fairness.csv).

Example:
  sqlitequeue bench fairness --count 200000 --size 1024 --runs 3
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "compare the kafka-confluent backend's producer with Kafka's own ProducerPerformance"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    parser.add_argument(
        "--count", type=int, default=200_000, help="records per run (default: 200000)"
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
        "--mode", help="broker: auto, external, local, testcontainers (default: auto)"
    )
    parser.add_argument(
        "--out", default="results", help="results root directory (default: results)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the comparison; print rates and ratio; return ExitCode.OK (2 for bad arguments)."""
    from sqlitequeue.bench.kafka.broker import KafkaBroker
    from sqlitequeue.bench.kafka.fairness import Comparison, summary_lines, write_results
    from sqlitequeue.bench.profiles import load_profile

    if args.count < 1 or args.size < 0 or args.runs < 1 or args.partitions < 1:
        print("error: --count, --runs and --partitions must be >= 1, --size >= 0")
        return ExitCode.USAGE
    settings = load_profile(args.profile).settings_for("kafka-confluent")
    if args.acks is not None:
        settings["producer.acks"] = args.acks
    with KafkaBroker.auto(args.mode) as broker:
        info = broker.describe()
        version = info.get("version") or "(version unknown)"
        print(f"broker: {info.get('mode')} Kafka {version} at {info.get('bootstrap')}")
        comparison = Comparison(
            servers=broker.bootstrap_servers,
            settings=settings,
            profile=args.profile,
            count=args.count,
            size=args.size,
            partitions=args.partitions,
        )
        rows = comparison.run(args.runs, progress=print)
        print("\n".join(summary_lines(comparison, rows)))
        path = write_results(args.out, comparison, rows, broker.describe())
        print(f"results: {path}")
    return ExitCode.OK


COMMAND = Command("fairness", HELP, add_arguments, run, description=__doc__)
