"""List the bundled workloads (name, shape, rate, size, duration), or the workload fields.

Any listed name works with `bench run --workload NAME`; so does a path to your own YAML
file (OpenMessaging Benchmark field names, plus our extensions; see --fields).

Example:
  sqlitequeue bench list
  sqlitequeue bench list --fields
"""

from __future__ import annotations

import argparse

from sqlitequeue.cli.command import Command, ExitCode

HELP = "list bundled workloads (or --fields: every workload field)"

FIELDS_HELP = """\
OpenMessaging Benchmark fields (an OMB workload file runs unchanged):
  name                      text, required
  topics                    number of topics (default 1)
  partitionsPerTopic        partitions per topic (default 1)
  messageSize               bytes, 20..1048576 (the first 20 carry time + sequence)
  payloadFile               payload bytes to send (relative to the file; random if missing)
  subscriptionsPerTopic     consumer groups per topic: > 1 is fan-out (default 1)
  consumerPerSubscription   consumers in each group (default 1)
  producersPerTopic         producers per topic, sharing producerRate (default 1)
  producerRate              msg/s for the whole workload; 0 = find the max sustainable rate
  producerStartRate         first rate of the max-rate search, after its warm-up (default 50)
  consumerBacklogSizeGB     build this backlog with consumers paused, then drain it
  testDurationMinutes       run length (default 1); testDurationSeconds for finer
  warmupDurationMinutes     excluded from results; warmupDurationSeconds for finer
  keyDistributor            NO_KEY | KEY_ROUND_ROBIN | RANDOM_NANO
  (recorded, not used: useRandomizedPayloads randomBytesRatio randomizedPayloadPoolSize
   acceptableBacklog producerIncrementRate producerIncrementSeconds backlogDrainRatio
   messageRateReceivedForSubscription producerPauseBeforeDrain producerPauseDuringDrain)
Extensions:
  description               one line
  seed                      int: the same seed gives the same schedule (default 1)
  rateShape                 type: steady | poisson | bursts | daily
                            bursts: burstRate, burstSeconds, periodSeconds [, poisson]
                            daily:  troughRate, peakRate, periodSeconds (a day compressed)
  trace                     file: JSONL/CSV of timestamp,size,key[,payload]
                            speed (default 1), timestampUnit s|ms|us, loop true|false
  consumerBacklogMessages   backlog size as a message count
  p99TargetMs               latency target for the max-rate search and report (default 50)
  producerMaxRate           the highest rate the max-rate search offers (default 100000,
                            the harness's ceiling, verified by the self-check); a search
                            that passes it ends there and says the harness was the limit
  rampStepSeconds           length of each max-rate step (default 3)
  searchResolution          the max-rate search doubles the rate until a step misses the
                            p99 target (or < 95 % arrives), then bisects until the lowest
                            failing rate is within this fraction of the highest passing
                            one (default 0.1); testDuration is its time budget, and a
                            search that runs out of it first is labelled a lower bound
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --fields."""
    parser.add_argument("--fields", action="store_true", help="print every workload field")


def _rate(w: object) -> str:
    from sqlitequeue.bench.workload import Workload

    assert isinstance(w, Workload)
    if w.trace is not None:
        return f"trace x{w.trace.speed:g}"
    if w.finds_max_rate:
        return f"max search {w.producer_start_rate:g}..{w.producer_max_rate:g}"
    if w.shape.type in ("bursts", "daily"):
        return f"{w.shape.type} peak {w.peak_rate:g}"
    return f"{w.shape.type} {w.producer_rate:g}"


def run(args: argparse.Namespace) -> int:
    """Print the list (or the field reference); return ExitCode.OK."""
    if args.fields:
        print(FIELDS_HELP, end="")
        return ExitCode.OK
    from sqlitequeue.bench.workload import bundled_names, load_workload

    print(f"{'name':<18} {'msg/s':<26} {'size':>7} {'groups':>6} {'secs':>5}  description")
    for name in bundled_names():
        w = load_workload(name)
        print(
            f"{name:<18} {_rate(w):<26} {w.message_size:>7} {w.subscriptions_per_topic:>6} "
            f"{w.duration_seconds:>5.0f}  {w.description}"
        )
    return ExitCode.OK


COMMAND = Command("list", HELP, add_arguments, run, description=__doc__)
