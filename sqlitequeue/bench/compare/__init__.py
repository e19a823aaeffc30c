"""The main job: run a suite of workloads against SQLite and Kafka, then write the report.

:func:`run_compare` runs every workload of the suite against every backend (workloads
outer, then repeats, so backends take turns on the same workload), into one results folder,
after a harness self-check on the ``memory`` backend. The Kafka backends run against the
deployments of :mod:`sqlitequeue.bench.kafka.deployments` (one broker over the run's
network profile, and a managed-shaped 3-broker cluster across emulated zones), started with
:meth:`KafkaBroker.auto` (an external cluster from KAFKA_BOOTSTRAP_SERVERS, else local
brokers from the cached jars); one that cannot start is skipped with a note saying how to
add it, and counts as a failure.

Failures are loud: each failed backend x workload run (and each backend skipped because
Kafka was unavailable) is recorded in run.json (``failures``: ``"BACKEND / WORKLOAD: why"``;
``failure_details``: backend, workload, repeat, error, log) and printed at the end with the
path of its log; :func:`failed_runs` tells the command to exit non-zero. Logs are kept
under ``results/<run-id>/logs/`` (:mod:`~sqlitequeue.bench.compare.logs`; run.json
``logs``). Full mode repeats each workload (:data:`DEFAULT_REPEATS`); what is recorded per
repeat is described in :mod:`~sqlitequeue.bench.compare.repeats`. Quick mode runs once and
marks its figures ``indicative`` in run.json. It ends with ``report/index.html`` written
(with the verdict for ``team``) and the summary printed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from sqlitequeue.bench.compare.harness import (
    CEILING_SECONDS,
    SELFCHECK_FACTOR,
    SELFCHECK_SECONDS,
    SelfCheck,
    selfcheck,
    suite_peak_rate,
)
from sqlitequeue.bench.compare.logs import RunLogs
from sqlitequeue.bench.compare.repeats import combine, repeat_rows, spread_lines
from sqlitequeue.bench.compare.suites import (
    DEFAULT_BACKENDS,
    DEFAULT_REPEATS,
    SUITE_BACKENDS,
    SUITES,
    build_suite,
    suite_workloads,
)
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.kafka.deployments import KafkaDeployments, split_label
from sqlitequeue.bench.network.profiles import NetworkProfile, load_network
from sqlitequeue.bench.workload import Workload

#: an unrecorded run per Kafka backend first: a new broker's first seconds are slow
KAFKA_WARMUP_SECONDS = 3.0

Printer = Callable[[str], None]


class RunProgress(NamedTuple):
    """One backend x workload run finished (``on_run``'s argument, for a progress bar).

    ``done`` of ``total`` runs are over (a backend that cannot serve a workload counts
    its remaining repeats as done); ``status`` is ``"ok"``, ``"failed"`` or ``"skipped"``;
    ``line`` is the one-line summary the printer got (empty for a failure or a skip).
    """

    done: int
    total: int
    backend: str
    workload: str
    repeat: int
    status: str
    line: str = ""


__all__ = [
    "CEILING_SECONDS",
    "DEFAULT_BACKENDS",
    "DEFAULT_REPEATS",
    "SELFCHECK_FACTOR",
    "SELFCHECK_SECONDS",
    "SUITES",
    "RunProgress",
    "SelfCheck",
    "failed_runs",
    "run_compare",
    "selfcheck",
    "suite_peak_rate",
    "suite_workloads",
]


def _print(text: str) -> None:
    print(text, flush=True)


# --- the main job ----------------------------------------------------------------------


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
    repeats: int | None = None,
    team: str | os.PathLike[str] | None = None,
    printer: Printer = _print,
    on_run: Callable[[RunProgress], None] | None = None,
) -> Path:
    """Run the suite against the backends, write the report; return the results folder.

    ``quick`` picks the short suite (a few minutes, run once, figures indicative);
    ``backends`` defaults to :data:`DEFAULT_BACKENDS`; ``workloads`` (bundled names or
    paths) replaces the suite; ``out`` is the results root (default ``results/``);
    ``duration`` (seconds) overrides every workload's duration (else: the suite's durations
    for its workloads, the file's for others). ``profiles`` holds ``PROFILE`` (for every
    backend it lists) or ``BACKEND=PROFILE`` entries; other backends use their default
    profile. ``repeats`` is how often each workload runs (default: 1 in quick mode, else
    :data:`DEFAULT_REPEATS`). A backend run that fails is recorded under ``failures`` in
    run.json (with its log) and the comparison goes on; so does one whose Kafka could not
    start; :func:`failed_runs` reads them back. ``run_id`` names the results folder
    (default: time stamp + label). ``broker`` is an already started single KafkaBroker to
    use (left running); by default the Kafka deployments the backends need are started (and
    stopped) here. ``network`` is the emulated network between Kafka's clients and brokers
    (default loopback; see :mod:`sqlitequeue.bench.network`); a backend label
    ``NAME@NETWORK`` names its own. ``suite_name`` picks a suite of :data:`SUITES` (default:
    ``quick`` or ``default``), with its own backends when :data:`SUITE_BACKENDS` lists them.
    ``team`` is the team profile (YAML) the report's verdict is for (default: the report's,
    the seed article's team). ``on_run`` is called with a :class:`RunProgress` after each
    backend x workload run (e.g. to move a progress bar; ``progress=False`` silences the
    per-run bars).
    Raises BenchError for an unknown backend or workload, ProfileError for a bad ``team``
    (both before anything runs), BenchError when no backend can run or every run failed.
    """
    from sqlitequeue.bench.results import DEFAULT_ROOT, RunWriter, new_run_id

    suite_name = suite_name or ("quick" if quick else "default")
    names = _backends(backends, suite_name)
    suite = build_suite(suite_name, workloads, duration, p99_target_ms)
    chosen_profiles = _profiles(names, profiles)
    if team is not None:  # a bad profile fails now, not after minutes of runs
        from sqlitequeue.bench.decide.team_profile import load_profile

        load_profile(team)
    repeats = repeats or (1 if suite_name == "quick" else DEFAULT_REPEATS)
    if repeats < 1:
        raise BenchError(f"repeats must be at least 1, not {repeats}")
    kafka = KafkaDeployments(
        network or load_network(None), printer, given={"single": broker} if broker else {}
    )
    notes = kafka.start_for(names)
    skipped = [b for b in names if not kafka.available(b)]
    names = [b for b in names if kafka.available(b)]
    if not names:
        raise BenchError("no backend left to run (Kafka unavailable); add a SQLite backend")
    writer = RunWriter(
        Path(out or DEFAULT_ROOT), run_id or new_run_id(label or ("quick" if quick else "compare"))
    )
    logs = RunLogs(writer.dir)
    runs = _Runs(writer, kafka, chosen_profiles, progress, printer, logs, repeats)
    runs.on_run, runs.total = on_run, len(suite) * len(names) * repeats
    try:
        with writer:
            _record_setup(writer, suite, names, kafka, notes, suite_name)
            writer.metadata(repeats=repeats, indicative=suite_name == "quick")
            if team is not None:
                writer.metadata(team=str(team))
            runs.skip_unavailable(skipped)
            if run_selfcheck:
                check = selfcheck(progress=progress, suite=suite)
                printer(check.describe())
                writer.metadata(selfcheck=check.to_dict())
            runs.warm_up_kafka(names)
            runs.run_all(suite, names)
            writer.metadata(
                load_average_at_end=list(os.getloadavg()), harness_limited=runs.harness_limited()
            )
            logs.keep_brokers(kafka)
            writer.metadata(logs=logs.recorded)
    finally:
        kafka.stop()
    if runs.failures and runs.ran == 0:
        _print_problems(writer.dir, runs.failure_details, logs, printer)
        raise BenchError(f"every run failed; first: {runs.failures[0]}")
    _finish(writer.dir, suite_name, team, runs, printer)
    return writer.dir


def failed_runs(folder: str | os.PathLike[str]) -> list[str]:
    """Return run.json ``failures`` of a results folder (empty when every run succeeded)."""
    meta = json.loads((Path(folder) / "run.json").read_text())
    return [str(f) for f in meta.get("failures") or []]


def _finish(folder: Path, suite_name: str, team: Any, runs: _Runs, printer: Printer) -> None:
    """Write the report, print the summary, the spread, the logs and the problems."""
    from sqlitequeue.bench.report import workloads as workload_report
    from sqlitequeue.bench.report.page import write_report as write_page
    from sqlitequeue.bench.report.seed_claim import seed_claim_lines
    from sqlitequeue.bench.results import load

    index = write_page(folder, team=team)
    summary = workload_report.terminal_summary(folder)
    printer("")
    printer(summary)
    for line in seed_claim_lines(load(folder)) if suite_name == "seed-claim" else []:
        printer(f"seed claim: {line}")
    for line in spread_lines(runs.per_run, runs.repeats):
        printer(line)
    for key, info in runs.harness_limited().items():
        printer(
            f"capacity: {key}: the max-rate search passed its top, {info['top']:,.0f} msg/s "
            f"(the harness's ceiling), in {info['repeats']} of {runs.repeats} repeat(s): the "
            "harness, not the backend, was the limit; the backend's maximum is higher"
        )
    if suite_name == "quick" and "indicative" not in summary:
        printer(
            "quick mode: each workload ran once, for a few seconds; the figures are "
            "indicative (`sqlitequeue bench compare` runs the full suite, "
            f"{DEFAULT_REPEATS} repeats, with spread)"
        )
    printer(f"\nreport: {index}")
    printer(f"logs: {runs.logs.dir}/")
    for name, path in runs.logs.absolute().items():
        printer(f"  {name}: {path}")
    _print_problems(folder, runs.failure_details, runs.logs, printer)


def _print_problems(
    folder: Path, details: list[dict[str, Any]], logs: RunLogs, printer: Printer
) -> None:
    if not details:
        return
    printer(f"\nPROBLEMS: {len(details)} failed or skipped run(s); results in {folder}")
    for d in details:
        first = (d["error"].strip().splitlines() or [""])[0]
        repeat = f" (repeat {d['repeat']})" if d.get("repeat") else ""
        printer(f"  FAILED {d['backend']} / {d['workload']}{repeat}: {first}")
        if d.get("how"):
            printer(f"    {d['how']}")
        printer(f"    log: {folder / d['log']}")
    printer("the comparison is incomplete: exit status 1")


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
        placement={name: _placement(name, kafka) for name in names},
        load_average_at_start=list(os.getloadavg()),
        setup_notes=notes,
        failures=[],
    )


def _is_gateway(label: str) -> bool:
    """True for the gateway backends (Kafka clients against ``sqlitequeue serve``)."""
    return split_label(label)[0].startswith("gateway-")


def _gateway_network(label: str, run_network: NetworkProfile) -> NetworkProfile:
    """The network a gateway backend's server sits behind: its label's, else the run's."""
    named = split_label(label)[1]
    return load_network(named) if named is not None else run_network


def _placement(label: str, kafka: KafkaDeployments) -> str:
    """Where backend ``label`` sits (a gateway backend: its server over its network)."""
    if _is_gateway(label):
        from sqlitequeue.bench.backends.gateway import placement

        return placement(_gateway_network(label, kafka.network))
    return kafka.placement(label)


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
    """Runs every (workload, repeat, backend) into one writer; failures are recorded."""

    writer: Any
    kafka: KafkaDeployments
    profiles: dict[str, str]
    progress: bool
    printer: Printer
    logs: RunLogs
    repeats: int = 1
    failures: list[str] = field(default_factory=list)
    failure_details: list[dict[str, Any]] = field(default_factory=list)
    #: (backend, workload) -> repeat -> that repeat's scalars
    per_run: dict[tuple[str, str], dict[int, dict[str, float]]] = field(default_factory=dict)
    ran: int = 0
    on_run: Callable[[RunProgress], None] | None = None
    total: int = 0
    done: int = 0
    last_line: str = ""

    def run_all(self, suite: list[Workload], names: list[str]) -> None:
        """Run each workload ``repeats`` times, backends taking turns; record the results."""
        from sqlitequeue.bench.runner import write_result

        for workload in suite:
            done: dict[str, list[tuple[int, Any]]] = {name: [] for name in names}
            skipped: set[str] = set()
            for repeat in range(1, self.repeats + 1):
                for name in names:
                    if name in skipped:
                        continue
                    outcome = self.run_one(workload, name, repeat)
                    if outcome is _SKIPPED:
                        skipped.add(name)
                        self._tick(name, workload.name, repeat, "skipped", repeats_left=True)
                    elif outcome is not None:
                        done[name].append((repeat, outcome))
                        self._tick(name, workload.name, repeat, "ok")
                    else:
                        self._tick(name, workload.name, repeat, "failed")
            for name, results in done.items():
                if results:
                    representative, result = combine(results)
                    write_result(self.writer, result)
                    key = f"{name} / {workload.name}"
                    self.writer.metadata(representative_repeat={key: representative})

    def _tick(
        self, name: str, workload: str, repeat: int, status: str, repeats_left: bool = False
    ) -> None:
        """Count one finished run (or, for a skip, the repeats left) and tell ``on_run``."""
        self.done += self.repeats - repeat + 1 if repeats_left else 1
        line, self.last_line = (self.last_line if status == "ok" else ""), ""
        if self.on_run is not None:
            self.on_run(
                RunProgress(self.done, self.total, name, workload, repeat, status, line.strip())
            )

    def harness_limited(self) -> dict[str, dict[str, float]]:
        """``"BACKEND / WORKLOAD"`` -> ``top`` and ``repeats`` for each max-rate search that
        passed its top rate (the harness's ceiling) in at least one repeat."""
        found = {}
        for (name, workload), by_repeat in self.per_run.items():
            hits = [s for s in by_repeat.values() if s.get("max_rate_harness_limited")]
            if hits:
                top = max(s.get("max_rate_top", 0.0) for s in hits)
                found[f"{name} / {workload}"] = {"top": top, "repeats": float(len(hits))}
        return found

    def skip_unavailable(self, labels: list[str]) -> None:
        """Record each backend whose Kafka could not start as a failure, with a log."""
        for label in labels:
            key = (self.kafka.deployment_of(label) or ("kafka", None))[0]
            why = self.kafka.unavailable.get(key, "it could not start")
            how = (
                "to add Kafka: `make setup` (or `python -m sqlitequeue kafka install`) for a "
                "local broker (needs Java 17+), or KAFKA_BOOTSTRAP_SERVERS=host:port"
            )
            error = f"skipped: Kafka ({key}) was not available: {why}"
            self._fail(label, "every workload", None, f"{error}\n{how}", how=how)

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
                self.run_one(warm, name, None, record=False)

    def run_one(
        self, workload: Workload, name: str, repeat: int | None, record: bool = True
    ) -> Any:
        """Run once; return the RunResult, None when it failed, or _SKIPPED."""
        from sqlitequeue.bench.runner import NotApplicable, run_workload

        broker = self.kafka.broker_for(name)
        started = time.monotonic()
        what = workload.name if record else f"{workload.name} (not recorded)"
        if repeat is not None and self.repeats > 1:
            what += f" #{repeat}/{self.repeats}"
        log = self.logs.begin(name, what)
        data_dir = getattr(broker, "data_dir", None)
        try:
            result = run_workload(
                workload,
                self._spec(name, broker, log),
                progress=self.progress,
                kafka_pid=broker.pid if broker is not None else None,
                disk_paths=[data_dir] if data_dir else [],
            )
        except NotApplicable as exc:
            self.writer.metadata(notes={f"{name} / {workload.name}": [f"skipped: {exc}"]})
            self.printer(f"  {name:>15} {workload.name:<18} skipped: {exc}")
            self.logs.append(name, f"skipped: {exc}")
            return _SKIPPED
        except BenchError as exc:
            if record:
                self._fail(name, workload.name, repeat, str(exc))
            else:
                self.logs.append(name, f"FAILED (warm-up, not recorded): {exc}")
            return None
        if not record:
            return None
        result.backend = name  # the label: NAME@NETWORK keeps two networks apart
        self.writer.table("repeats", repeat_rows(repeat or 1, result))
        self.per_run.setdefault((name, workload.name), {})[repeat or 1] = dict(result.scalars)
        self.ran += 1
        self.last_line = _one_line(result, time.monotonic() - started, what)
        self.printer(self.last_line)
        return result

    def _spec(self, name: str, broker: Any, log: Path) -> Any:
        """The backend spec of ``name``; a Kafka backend's client library logs to ``log``."""
        from sqlitequeue.bench.profiles import backend_spec

        base = split_label(name)[0]
        spec = backend_spec(
            base,
            self.profiles.get(name) or self.profiles.get(base),
            bootstrap_servers=broker.bootstrap_servers if broker is not None else None,
        )
        if broker is None and _is_gateway(name):
            from sqlitequeue.bench.backends.gateway import on_network

            return on_network(spec, _gateway_network(name, self.kafka.network))
        if broker is None:
            return spec
        return replace(spec, settings={**spec.settings, "log.file": str(log)})

    def _fail(
        self, name: str, workload: str, repeat: int | None, error: str, how: str = ""
    ) -> None:
        log = self.logs.append(name, f"FAILED: {error}")
        first = (error.strip().splitlines() or [""])[0]
        self.failures.append(f"{name} / {workload}: {first}")
        self.failure_details.append(
            {
                "backend": name,
                "workload": workload,
                "repeat": repeat if self.repeats > 1 else None,
                "error": error,
                "how": how,
                "log": str(log.relative_to(self.writer.dir)),
            }
        )
        self.writer.metadata(
            failures=list(self.failures),
            failure_details=list(self.failure_details),
            logs=self.logs.recorded,
        )
        label = workload if repeat is None or self.repeats == 1 else f"{workload} #{repeat}"
        self.printer(f"  {name:>15} {label:<18} FAILED: {first}")
        self.printer(f"  {'':>15} log: {log}")


#: run_one's answer for a workload the backend cannot serve (not a failure)
_SKIPPED = object()


def _one_line(result: Any, seconds: float, what: str) -> str:
    s = result.scalars
    text = (
        f"  {result.backend:>15} {what:<{18 if '#' not in what else 24}} "
        f"{s['consume_rate_mean']:>8,.0f} msg/s  e2e p50 {s['e2e_latency_ms.p50']:>7.2f} ms  "
        f"p99 {s['e2e_latency_ms.p99']:>8.2f} ms  lost {int(s['lost'])}"
    )
    if "max_sustainable_rate" in s:
        from sqlitequeue.bench.report.capacity import SearchOutcome, search_outcome

        text += f"  max sustainable {s['max_sustainable_rate']:,.0f} msg/s"
        ended = search_outcome(s, " ".join(result.notes))
        if ended is SearchOutcome.CEILING:
            text += " (the harness's ceiling: the harness, not the backend, was the limit)"
        elif ended not in (None, SearchOutcome.CONVERGED):
            text += f" ({ended}: a lower bound)"
    return text + f"  ({seconds:.0f} s)"
