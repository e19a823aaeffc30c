"""Replay a workload with Locust against one or more backends; convert the CSVs.

Runs loadtests/locustfile.py headless in a subprocess, one user per process (the
workload's producers + consumers), for --run-time seconds per backend, writing Locust's
CSVs under results/<run-id>/locust-csv/<backend>_*.csv, then converts them into
results/<run-id>/ (kind "locust") and prints the summary. Kafka backends get a broker
the way `bench run` does (KAFKA_BOOTSTRAP_SERVERS, else a local one). --web starts
Locust's web UI instead (no conversion). Exits 1 if a run recorded failures.

Example:
  sqlitequeue bench locust --backend sqlite-queue,kafka-confluent --workload steady-1kb
  sqlitequeue bench locust --backend sqlite-stream --run-time 10 --max-rate
  sqlitequeue bench locust --backend kafka --web        # http://localhost:8089
"""

from __future__ import annotations

import argparse

from sqlitequeue.bench.commands.arguments import add_network_arguments, name_list, network_from
from sqlitequeue.cli.command import Command, ExitCode

HELP = "replay a workload with Locust (one user per process); convert its CSVs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --backend, --workload, --run-time, --max-rate, --profile, --out, --web."""
    parser.add_argument(
        "--backend", required=True, type=name_list, metavar="NAME[,NAME…]", help="backends"
    )
    parser.add_argument("--workload", default="steady-1kb", metavar="NAME|PATH")
    parser.add_argument("--run-time", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--max-rate", action="store_true", help="send as fast as possible")
    parser.add_argument("--profile", metavar="NAME|PATH", help="backend settings profile")
    parser.add_argument("--out", metavar="DIR", default="results", help="results root")
    parser.add_argument("--web", action="store_true", help="start the web UI (one backend)")
    add_network_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run Locust per backend, convert, print the summary; return OK, or ERROR on failures."""
    from pathlib import Path

    from sqlitequeue.bench.locust import run as locust_run
    from sqlitequeue.bench.locust.convert import import_run
    from sqlitequeue.bench.report import workloads as workload_report
    from sqlitequeue.bench.results import RunWriter, new_run_id

    if args.web:
        return _web(args)
    run_id = new_run_id(f"locust-{Path(args.workload).stem}")
    failed = 0
    network = network_from(args)
    with RunWriter(Path(args.out), run_id, kind="locust") as writer:
        writer.metadata(network=network.to_dict())
        for backend in args.backend:
            prefix = writer.dir / "locust-csv" / backend
            print(f"{backend}: Locust for {args.run_time:g} s ...", flush=True)
            done = locust_run.run_locust(
                backend,
                args.workload,
                run_time=args.run_time,
                csv_prefix=prefix,
                max_rate=args.max_rate,
                profile=args.profile,
                network=network,
            )
            if done.returncode != 0:
                failed += 1
                print(done.output[-3000:])
                print(f"{backend}: Locust exited with {done.returncode}")
            if Path(f"{prefix}_stats.csv").exists():
                import_run(writer, prefix)
    print(
        workload_report.format_table(
            workload_report.summary_table(workload_report.load(writer.dir))
        )
    )
    print(f"\nresults: {writer.dir}")
    return ExitCode.ERROR if failed else ExitCode.OK


def _web(args: argparse.Namespace) -> int:
    import subprocess

    from sqlitequeue.bench.locust import run as locust_run

    if len(args.backend) != 1:
        print("--web runs one backend at a time")
        return ExitCode.USAGE
    backend = args.backend[0]
    cmd = locust_run.locust_command(
        backend,
        args.workload,
        run_time=None,
        csv_prefix=None,
        headless=False,
        max_rate=args.max_rate,
        profile=args.profile,
    )
    with locust_run.kafka_for(backend, network_from(args)) as env:
        return subprocess.run(cmd, env=env, check=False).returncode


COMMAND = Command("locust", HELP, add_arguments, run, description=__doc__)
