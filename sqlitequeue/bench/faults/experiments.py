"""Failure-recovery experiments: what each architecture loses, and how long it is down.

Every experiment runs a real workload in separate processes, injects one fault (SIGKILL of
a consumer, a producer, a Kafka broker or partition leader, or the ``sqlitequeue serve``
gateway; the loss of the SQLite host, restored from Litestream's replica; a full or
read-only disk), and counts from message ids:

=========================  ============================  ====================================
experiment                 backends                      RTO is the time from the fault to
=========================  ============================  ====================================
consumer-kill              sqlite-queue, kafka           the victim's messages redelivered
producer-kill              sqlite-queue, kafka           a restarted producer's first ack
host-loss                  sqlite-queue (normal, full)   restore + reopen of the queue
host-loss-litestream-down  sqlite-queue (control)        restore + reopen (Litestream died
                                                         before the host: loss expected)
broker-kill                kafka (1 broker, RF=1);       the producer's first ack after it
                           gateway (sqlitequeue serve,   (broker or server restarted at once,
                           a 2-member group reading)     same port and file; notes: the group)
leader-failover            kafka (3 brokers, RF=3)       the producer's first ack after it
disk-full                  sqlite-queue (tiny tmpfs)     the first ack once space is freed
read-only                  sqlite-queue (ro bind mount)  the first ack once writable again
=========================  ============================  ====================================

RPO is the number of acknowledged messages missing afterwards (``rpo_messages`` = ``lost``)
and, for a host loss, the window they span (``rpo_s``: fault time minus the earliest missing
message's acknowledgement). Results: ``faults.csv`` (one row per repeat), ``fault_events.csv``,
``fault_series.csv`` and ``metrics.csv`` (``publish_rate``/``consume_rate`` around each fault,
``workload`` = experiment, ``t`` relative to the fault), and ``run.json``.
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults import gateway_trials, kafka_trials, sqlite_trials
from sqlitequeue.bench.faults.lab import (
    FAULT_COLUMNS,
    FULL,
    QUICK,
    Case,
    Lab,
    Scale,
    Trial,
    Unavailable,
    unavailable_trial,
)
from sqlitequeue.bench.network.profiles import NetworkProfile
from sqlitequeue.bench.results import DEFAULT_ROOT, RunWriter, new_run_id
from sqlitequeue.errors import QueueError

__all__ = [
    "CASES",
    "EXPERIMENTS",
    "FAULT_COLUMNS",
    "FULL",
    "QUICK",
    "Case",
    "Lab",
    "Scale",
    "Trial",
    "run_case",
    "run_faults",
    "select_cases",
    "selectors_of",
]

TrialFunction = Callable[[Lab, Case, int], Trial]

#: (case, trial function), in the order they run: broker kills last, so the shared single
#: broker is killed only once everything else that uses it is done.
CASES: list[tuple[Case, TrialFunction]] = [
    (Case("consumer-kill", "sqlite-queue", "normal"), sqlite_trials.consumer_kill),
    (Case("consumer-kill", "kafka", "acks=all"), kafka_trials.consumer_kill),
    (Case("producer-kill", "sqlite-queue", "normal"), sqlite_trials.producer_kill),
    (Case("producer-kill", "kafka", "acks=all"), kafka_trials.producer_kill),
    (Case("host-loss", "sqlite-queue", "normal"), sqlite_trials.host_loss),
    (Case("host-loss", "sqlite-queue", "full"), sqlite_trials.host_loss),
    (
        Case("host-loss-litestream-down", "sqlite-queue", "normal"),
        sqlite_trials.host_loss_litestream_down,
    ),
    (Case("disk-full", "sqlite-queue", "normal"), sqlite_trials.disk_full),
    (Case("read-only", "sqlite-queue", "normal"), sqlite_trials.read_only),
    (Case("broker-kill", "gateway", "acks=all"), gateway_trials.broker_kill),
    (Case("broker-kill", "kafka", "acks=all"), kafka_trials.broker_kill),
    (Case("leader-failover", "kafka", "acks=all"), kafka_trials.leader_failover),
]
#: Experiment names, in run order.
EXPERIMENTS = list(dict.fromkeys(case.experiment for case, _ in CASES))


def select_cases(selectors: Iterable[str] | None = None) -> list[tuple[Case, TrialFunction]]:
    """Return the cases named by ``selectors`` (all when None or empty), in run order.

    A selector is an experiment (``host-loss``), optionally with a backend
    (``consumer-kill:kafka``) and a durability (``host-loss:sqlite-queue:full``).
    Raises BenchError for a selector that matches nothing.
    """
    chosen = list(selectors or [])
    if not chosen:
        return list(CASES)
    picked: list[tuple[Case, TrialFunction]] = []
    for selector in chosen:
        parts = selector.split(":")
        matches = [
            (case, fn)
            for case, fn in CASES
            if [case.experiment, case.backend, case.durability][: len(parts)] == parts
        ]
        if not matches:
            close = difflib.get_close_matches(selector, selectors_of(CASES), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise BenchError(
                f"unknown experiment {selector!r}; {hint}choose from: {', '.join(EXPERIMENTS)} "
                "(optionally EXPERIMENT:BACKEND[:DURABILITY])"
            )
        picked.extend(m for m in matches if m not in picked)
    return [pair for pair in CASES if pair in picked]


def selectors_of(cases: Iterable[tuple[Case, TrialFunction]]) -> list[str]:
    """Every selector that names ``cases``: experiments, then with backends and durabilities."""
    found: dict[str, None] = {}
    for parts in (1, 2, 3):
        for case, _ in cases:
            found[":".join([case.experiment, case.backend, case.durability][:parts])] = None
    return list(found)


def run_case(lab: Lab, case: Case, fn: TrialFunction, repeat: int) -> Trial:
    """Run one trial; an :class:`Unavailable` experiment yields a row saying why.

    Other failures propagate (a harness failure must not pass for a measurement).
    """
    try:
        return fn(lab, case, repeat)
    except Unavailable as exc:
        return unavailable_trial(case, repeat, str(exc))


def run_faults(
    quick: bool = False,
    experiments: Sequence[str] | None = None,
    repeats: int | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    scale: Scale | None = None,
    lab: Lab | None = None,
    progress: Callable[[str], None] | None = None,
    network: NetworkProfile | None = None,
) -> Path:
    """Run the fault experiments and return the results folder written.

    ``quick``: small scale, one repeat (unless ``repeats``); ``experiments``: selectors as
    for :func:`select_cases`; ``out``: the results root (default ``results/``). ``scale``
    overrides the sizes; ``lab`` supplies brokers (else started as needed and stopped at
    the end). A case that cannot run here (e.g. storage faults without root) is written as
    a row whose notes say ``unavailable: <reason>``; a trial whose harness fails (a worker
    crashed, a broker did not come back) is written as a row whose notes say
    ``failed: <error>`` and the run goes on. ``network`` is the emulated network between
    Kafka's clients and brokers (default loopback; the 3-broker cluster spans zones over
    cross-az at least). Raises BenchError for bad arguments.
    """
    say = progress or (lambda message: None)
    cases = select_cases(experiments)
    chosen_scale = scale or (QUICK if quick else FULL)
    n = repeats if repeats is not None else (1 if quick else 3)
    if n < 1:
        raise BenchError(f"repeats must be >= 1, not {n}")
    root = Path(out) if out is not None else DEFAULT_ROOT
    run_id = new_run_id("faults-quick" if quick else "faults")
    scratch = Path(tempfile.mkdtemp(prefix="sqq-faults-"))
    own_lab = lab is None
    the_lab = lab or Lab(scratch, chosen_scale, log=say, network=network)
    if not own_lab:
        the_lab.scale = chosen_scale
    writer = RunWriter(root, run_id, kind="faults")
    writer.metadata(
        experiments=[c.label for c, _ in cases],
        repeats=n,
        scale=asdict(chosen_scale),
        quick=quick,
        network=the_lab.network.to_dict(),
    )
    total = len(cases) * n
    done = 0
    try:
        for case, fn in cases:
            for repeat in range(1, n + 1):
                done += 1
                started = time.monotonic()
                say(f"[{done}/{total}] {case.label} repeat {repeat} ...")
                try:
                    trial = run_case(the_lab, case, fn, repeat)
                except (QueueError, OSError) as exc:
                    reason = f"failed: {type(exc).__name__}: {exc}"
                    trial = unavailable_trial(case, repeat, reason)
                    trial.row["notes"] = reason
                    say(traceback.format_exc(limit=3))
                _write_trial(writer, trial)
                say(f"      {_describe(trial)} ({time.monotonic() - started:.1f} s)")
        writer.metadata(**the_lab.descriptions)
    finally:
        if own_lab:
            the_lab.close()
        writer.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return writer.dir


def _write_trial(writer: RunWriter, trial: Trial) -> None:
    case = trial.case
    key = {
        "experiment": case.experiment,
        "backend": case.backend,
        "durability": case.durability,
        "repeat": trial.repeat,
    }
    writer.table("faults", [trial.fault_row()])
    writer.table(
        "fault_events",
        [
            {**key, "event": name, "t": round(t, 4), "at": round(at, 4), "detail": detail}
            for name, t, at, detail in trial.events
        ]
        or [{**key, "event": "none", "t": None, "at": None, "detail": trial.row.get("notes")}],
    )
    if trial.series:
        writer.table(
            "fault_series",
            [{**key, "metric": m, "t": t, "value": v} for m, t, v in trial.series],
        )
        writer.metrics((case.backend, case.experiment, m, t, v) for m, t, v in trial.series)
    writer.flush()


def _describe(trial: Trial) -> str:
    row = trial.row
    if row.get("acknowledged") is None:
        return str(row.get("notes", ""))
    rto = row.get("rto_s")
    rto_text = "-" if rto is None else f"{rto:.2f} s"
    return (
        f"acknowledged {row['acknowledged']}, lost {row['lost']}, "
        f"duplicated {row['duplicated']}, RTO {rto_text}"
    )
