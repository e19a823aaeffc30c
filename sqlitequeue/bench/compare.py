"""The main job: run a suite of workloads against SQLite and Kafka, then write the report.

:func:`run_compare` runs every workload of the suite against every backend (workloads
outer, so backends take turns on the same workload), into one results folder, after a
harness self-check on the ``memory`` backend. The Kafka backends run against the
deployments of :mod:`sqlitequeue.bench.kafka.deployments` (one broker over the run's
network profile, and a managed-shaped 3-broker cluster across emulated zones), started with
:meth:`KafkaBroker.auto` (an external cluster from KAFKA_BOOTSTRAP_SERVERS, else local
brokers from the cached jars); one that cannot start is skipped with a note saying how to
add it. It ends with ``report/index.html`` written and the summary printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.kafka.deployments import KafkaDeployments, split_label
from sqlitequeue.bench.network.profiles import NetworkProfile, load_network
from sqlitequeue.bench.workload import Workload, bundled_names, load_workload, read_trace

SQLITE_BACKENDS = ("sqlite-queue", "sqlite-stream", "sqlite-seed")
KAFKA_BACKENDS = ("kafka-confluent", "kafka", "kafka-managed")
DEFAULT_BACKENDS = (*SQLITE_BACKENDS, *KAFKA_BACKENDS)

#: suite name -> (workload, seconds per run). About 10 min / 2 min on 2 cores, 5 backends.
#: Every run keeps at least MIN_WARMUP seconds of warm-up (Kafka's group join, fresh topic).
MIN_WARMUP = 1.0
SUITES: dict[str, list[tuple[str, float]]] = {
    "default": [
        ("seed-clickstream", 16),
        ("steady-1kb", 10),
        ("bursts-512b", 10),
        ("fanout-3-groups", 8),
        ("backlog-drain", 10),
        ("large-64kb", 8),
        ("max-rate-1kb", 32),
    ],
    "quick": [
        ("seed-clickstream", 6),
        ("steady-1kb", 5),
        ("max-rate-1kb", 9),
    ],
    # The seed article's claim: 40-50 ms on (managed) Kafka, under 1 ms on one SQLite file.
    "seed-claim": [("seed-clickstream", 30)],
}
#: suites that come with their own backends (``--backends`` still overrides them)
SUITE_BACKENDS: dict[str, tuple[str, ...]] = {
    "seed-claim": (
        "sqlite-queue",
        "sqlite-stream",
        "kafka-managed@cross-az",
        "kafka-managed@cross-region",
    ),
}
SELFCHECK_FACTOR = 5.0
SELFCHECK_SECONDS = 5.0
#: an unrecorded run per Kafka backend first: a new broker's first seconds are slow
KAFKA_WARMUP_SECONDS = 3.0

Printer = Callable[[str], None]


def _print(text: str) -> None:
    print(text, flush=True)


# --- harness self-check ----------------------------------------------------------------


def suite_peak_rate(names: Sequence[str] | None = None) -> float:
    """Return the highest scheduled rate (msg/s) among the bundled workloads ``names``.

    Fixed shapes report their peak; a trace its busiest second times its speed; a max-rate
    search (``producerRate: 0``) has no fixed rate and is skipped.
    """
    peak = 0.0
    for name in names or bundled_names():
        w = load_workload(name)
        if w.trace is not None:
            counts: dict[int, int] = {}
            for send in read_trace(w.trace):
                second = int(send.at / w.trace.speed)
                counts[second] = counts.get(second, 0) + 1
            peak = max(peak, max(counts.values(), default=0))
        else:
            peak = max(peak, float(w.peak_rate))
    return peak


@dataclass(frozen=True)
class SelfCheck:
    """The harness self-check: could ``memory`` sustain ``target`` msg/s?"""

    target: float
    achieved: float
    p99_ms: float
    suite_peak: float
    ok: bool

    def describe(self) -> str:
        """Return the one-line verdict that is printed."""
        verdict = "OK" if self.ok else "NOT MET: the harness may be the bottleneck"
        return (
            f"harness self-check: memory backend sustained {self.achieved:,.0f} msg/s "
            f"(target {SELFCHECK_FACTOR:g} x suite peak {self.suite_peak:,.0f} = "
            f"{self.target:,.0f} msg/s), e2e p99 {self.p99_ms:.1f} ms: {verdict}"
        )


def selfcheck(duration: float | None = None, progress: bool = False) -> SelfCheck:
    """Run ``memory`` at 5x the suite's peak rate for ``duration`` s; return the verdict.

    Passes when the consume rate is within 5 % of the target, nothing was lost and the
    end-to-end p99 stayed under 50 ms. Raises BackendError if the backend fails.
    """
    from sqlitequeue.bench.backends.base import BackendSpec
    from sqlitequeue.bench.runner import run_workload
    from sqlitequeue.bench.workload import parse_workload

    peak = suite_peak_rate()
    target = SELFCHECK_FACTOR * peak
    workload = parse_workload(
        {
            "name": "selfcheck",
            "producerRate": target,
            "messageSize": 1024,
            "testDurationSeconds": duration or SELFCHECK_SECONDS,
            "warmupDurationSeconds": 1.0,
        }
    )
    result = run_workload(workload, BackendSpec("memory"), progress=progress)
    achieved = result.scalars["consume_rate_mean"]
    p99 = result.scalars["e2e_latency_ms.p99"]
    ok = achieved >= 0.95 * target and result.scalars["lost"] == 0 and p99 <= 50.0
    return SelfCheck(target, achieved, p99, peak, ok)


# --- the main job ----------------------------------------------------------------------


def _suite(
    name: str, workloads: Sequence[str] | None, duration: float | None, p99: float | None
) -> list[Workload]:
    if name not in SUITES:
        raise BenchError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    suite = dict(SUITES[name])
    chosen: list[tuple[str, float | None]] = (
        [(w, suite.get(w)) for w in workloads] if workloads else list(suite.items())
    )
    out = []
    for name, seconds in chosen:
        w = load_workload(name)
        if duration or seconds:
            total = duration or seconds or w.duration_seconds
            w = w.with_duration(total, max(min(w.warmup_seconds, total / 5), MIN_WARMUP))
        if p99 is not None:
            w = replace(w, p99_target_ms=p99)
        out.append(w)
    return out


def _backends(backends: Sequence[str] | None, suite: str) -> list[str]:
    """The backend labels to run (``NAME`` or ``NAME@NETWORK``); BenchError for unknown ones."""
    from sqlitequeue.bench.runner import check_registry

    labels = list(backends or SUITE_BACKENDS.get(suite, DEFAULT_BACKENDS))
    check_registry([split_label(label)[0] for label in labels])
    for label in labels:
        network = split_label(label)[1]
        if network is not None:
            load_network(network)  # raises with the choices (and a "did you mean")
    return labels


def run_compare(
    quick: bool = False,
    backends: Sequence[str] | None = None,
    workloads: Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    duration: float | None = None,
    *,
    p99_target_ms: float | None = None,
    profiles: Sequence[str] = (),
    progress: bool = True,
    run_selfcheck: bool = True,
    label: str | None = None,
    run_id: str | None = None,
    broker: Any | None = None,
    network: NetworkProfile | None = None,
    suite_name: str | None = None,
    printer: Printer = _print,
) -> Path:
    """Run the suite against the backends, write the report; return the results folder.

    ``quick`` picks the short suite (about 2 minutes); ``backends`` defaults to
    :data:`DEFAULT_BACKENDS`; ``workloads`` (bundled names or paths) replaces the suite;
    ``out`` is the results root (default ``results/``); ``duration`` (seconds) overrides
    every workload's duration (else: the suite's durations for its workloads, the file's
    for others). ``profiles`` holds ``PROFILE`` (for every backend it lists) or
    ``BACKEND=PROFILE`` entries; other backends use their default profile. A backend run
    that fails is recorded under ``failures`` in run.json and the comparison goes on.
    ``run_id`` names the results folder (default: time stamp + label). ``broker`` is an
    already started single KafkaBroker to use (left running); by default the Kafka
    deployments the backends need are started (and stopped) here. ``network`` is the
    emulated network between Kafka's clients and brokers (default loopback; see
    :mod:`sqlitequeue.bench.network`); a backend label ``NAME@NETWORK`` names its own.
    ``suite_name`` picks a suite of :data:`SUITES` (default: ``quick`` or ``default``), with
    its own backends when :data:`SUITE_BACKENDS` lists them.
    Raises BenchError for an unknown backend or workload, or when every run failed.
    """
    from sqlitequeue.bench.report import workloads as workload_report
    from sqlitequeue.bench.report.seed_claim import seed_claim_lines
    from sqlitequeue.bench.results import DEFAULT_ROOT, RunWriter, load, new_run_id

    suite_name = suite_name or ("quick" if quick else "default")
    names = _backends(backends, suite_name)
    suite = _suite(suite_name, workloads, duration, p99_target_ms)
    chosen_profiles = _profiles(names, profiles)
    kafka = KafkaDeployments(
        network or load_network(None), printer, given={"single": broker} if broker else {}
    )
    notes = kafka.start_for(names)
    names = [b for b in names if kafka.available(b)]
    if not names:
        raise BenchError("no backend left to run (Kafka unavailable); add a SQLite backend")
    try:
        writer = RunWriter(
            Path(out or DEFAULT_ROOT),
            run_id or new_run_id(label or ("quick" if quick else "compare")),
        )
        with writer:
            _record_setup(writer, suite, names, kafka, notes, suite_name)
            if run_selfcheck:
                check = selfcheck(progress=progress)
                printer(check.describe())
                writer.metadata(selfcheck=check.__dict__ | {"text": check.describe()})
            runs = _Runs(writer, kafka, chosen_profiles, progress, printer)
            runs.warm_up_kafka(names)
            failures = runs.run_all(suite, names)
            writer.metadata(load_average_at_end=list(os.getloadavg()))
        if failures and len(failures) == len(suite) * len(names):
            raise BenchError(f"every run failed; first: {failures[0]}")
        index = workload_report.write_report(writer.dir)
        printer("")
        printer(workload_report.terminal_summary(writer.dir))
        for line in seed_claim_lines(load(writer.dir)) if suite_name == "seed-claim" else []:
            printer(f"seed claim: {line}")
        printer(f"\nreport: {index}")
        return writer.dir
    finally:
        kafka.stop()


def _record_setup(
    writer: Any,
    suite: list[Workload],
    names: list[str],
    kafka: KafkaDeployments,
    notes: list[str],
    suite_name: str,
) -> None:
    deployments = kafka.describe()
    writer.metadata(
        workloads={w.name: w.describe() for w in suite},
        backend_order=names,
        p99_target_ms=max(w.p99_target_ms for w in suite),
        kafka=deployments.get("single"),
        kafka_deployments=deployments,
        network=kafka.network.to_dict(),
        suite=suite_name,
        placement={name: kafka.placement(name) for name in names},
        load_average_at_start=list(os.getloadavg()),
        setup_notes=notes,
        failures=[],
    )


def _profiles(names: Sequence[str], given: Sequence[str]) -> dict[str, str]:
    """Return backend -> profile for ``given`` entries; raise BackendError if one misfits."""
    from sqlitequeue.bench.profiles import load_profile

    chosen: dict[str, str] = {}
    for entry in given:
        backend, sep, profile = entry.partition("=")
        if sep:
            load_profile(profile).settings_for(backend)  # raises when it does not apply
            chosen[backend] = profile
            continue
        loaded = load_profile(entry)
        fits = [b for b in names if split_label(b)[0] in loaded.backends]
        if not fits:
            raise BenchError(
                f"profile {entry!r} is for {', '.join(loaded.backends)}, none of which runs "
                f"here ({', '.join(names)})"
            )
        chosen.update(dict.fromkeys(fits, entry))
    return chosen


@dataclass
class _Runs:
    """Runs every (workload, backend) pair into one writer; failures are recorded."""

    writer: Any
    kafka: KafkaDeployments
    profiles: dict[str, str]
    progress: bool
    printer: Printer

    def run_all(self, suite: list[Workload], names: list[str]) -> list[str]:
        failures: list[str] = []
        for workload in suite:
            for name in names:
                error = self.run_one(workload, name)
                if error is not None:
                    failures.append(f"{name} / {workload.name}: {error}")
                    self.writer.metadata(failures=list(failures))
                    first = error.splitlines()[0] if error else ""
                    self.printer(f"  {name:>15} {workload.name:<18} FAILED: {first}")
        return failures

    def warm_up_kafka(self, names: list[str]) -> None:
        """Run each Kafka backend briefly, unrecorded: a new broker's first seconds are slow."""
        from sqlitequeue.bench.workload import parse_workload

        warm = parse_workload(
            {
                "name": "kafka-warm-up",
                "producerRate": 100,
                "testDurationSeconds": KAFKA_WARMUP_SECONDS,
            }
        )
        for name in names:
            if self.kafka.broker_for(name) is not None:
                self.printer(f"  {name:>15} warming up the broker (not recorded)")
                self.run_one(warm, name, record=False)

    def run_one(self, workload: Workload, name: str, record: bool = True) -> str | None:
        from sqlitequeue.bench.profiles import backend_spec
        from sqlitequeue.bench.runner import NotApplicable, run_workload, write_result

        broker = self.kafka.broker_for(name)
        base = split_label(name)[0]
        started = time.monotonic()
        try:
            spec = backend_spec(
                base,
                self.profiles.get(name) or self.profiles.get(base),
                bootstrap_servers=broker.bootstrap_servers if broker is not None else None,
            )
            data_dir = getattr(broker, "data_dir", None)
            result = run_workload(
                workload,
                spec,
                progress=self.progress,
                kafka_pid=broker.pid if broker is not None else None,
                disk_paths=[data_dir] if data_dir else [],
            )
        except NotApplicable as exc:
            self.writer.metadata(notes={f"{name} / {workload.name}": [f"skipped: {exc}"]})
            self.printer(f"  {name:>15} {workload.name:<18} skipped: {exc}")
            return None
        except BenchError as exc:
            return str(exc)
        if not record:
            return None
        result.backend = name  # the label: NAME@NETWORK keeps two networks apart
        write_result(self.writer, result)
        self.printer(_one_line(result, time.monotonic() - started))
        return None


def _one_line(result: Any, seconds: float) -> str:
    s = result.scalars
    text = (
        f"  {result.backend:>15} {result.workload:<18} "
        f"{s['consume_rate_mean']:>8,.0f} msg/s  e2e p50 {s['e2e_latency_ms.p50']:>7.2f} ms  "
        f"p99 {s['e2e_latency_ms.p99']:>8.2f} ms  lost {int(s['lost'])}"
    )
    if "max_sustainable_rate" in s:
        text += f"  max sustainable {s['max_sustainable_rate']:,.0f} msg/s"
    return text + f"  ({seconds:.0f} s)"
