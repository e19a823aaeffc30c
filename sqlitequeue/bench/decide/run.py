"""Decide end to end: load a profile, reuse (or measure) evidence, evaluate, write the report.

Where the evidence comes from (:func:`gather_sources`):

* ``results`` given: exactly those folders, nothing looked up or measured;
* ``measure=True``: fresh ``bench compare`` and ``bench faults`` runs;
* otherwise: the newest finished compare run and failure-lab run under the results root
  (:mod:`~sqlitequeue.bench.decide.sources`), and a measurement only of what they lack: a
  compare run when there is none, the failure lab's missing cases
  (:data:`~sqlitequeue.bench.decide.sources.NEEDED_EXPERIMENTS`) when they are absent, and
  Kafka over the profile's ``kafka_network`` (a ``kafka-managed@<network>`` compare run) when
  the latency criterion needs it and the reused compare run has no Kafka run over it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.evidence import (
    gather_evidence,
    has_kafka_runs_over,
    measure_network_command,
)
from sqlitequeue.bench.decide.report import write_report
from sqlitequeue.bench.decide.sources import (
    GIVEN,
    MEASURED,
    REUSED,
    Source,
    latest_compare,
    latest_faults,
    missing_experiments,
)
from sqlitequeue.bench.decide.team_profile import load_profile
from sqlitequeue.bench.decide.verdict import Decision, evaluate
from sqlitequeue.bench.errors import BenchError

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def run_measurements(
    quick: bool = True,
    out: str | os.PathLike[str] | None = None,
    *,
    compare: bool = True,
    faults: bool = True,
    experiments: Sequence[str] | None = None,
    say: Say | None = None,
) -> list[Path]:
    """Run the bench comparison and/or the failure lab; return their results folders.

    ``experiments`` narrows the failure lab to those selectors (all when None). ``say``
    receives progress lines (the failure lab's trial by trial; the comparison prints its
    own). Imports :mod:`sqlitequeue.bench.compare` and
    :mod:`sqlitequeue.bench.faults.experiments` lazily; raises whatever they raise
    (BenchError subclasses) on failure.
    """
    tell = say or _quiet
    mode = "quick" if quick else "full"
    folders: list[Path] = []
    if compare:
        from sqlitequeue.bench.compare import run_compare

        tell(f"measuring: bench compare ({mode}; a few minutes, progress below)")
        folders.append(run_compare(quick=quick, out=out))
    if faults:
        from sqlitequeue.bench.faults.experiments import run_faults

        chosen = ", ".join(experiments) if experiments else "every experiment"
        tell(f"measuring: bench faults ({mode}; {chosen}; a trial per line below)")
        folders.append(
            run_faults(quick=quick, experiments=experiments or None, out=out, progress=tell)
        )
    return folders


def gather_sources(
    results: Sequence[str | os.PathLike[str]] | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    quick: bool = True,
    measure: bool = False,
    say: Say | None = None,
    kafka_network: str | None = None,
) -> list[Source]:
    """Return the results folders a decision uses (see the module docstring for the rules).

    ``root`` is where runs are looked up and new ones written (default ``results/``).
    Measures only when ``measure`` or something is missing; raises what the measurement
    raises. ``kafka_network``: Kafka runs over that network are needed too (a reused
    compare run without them gets a ``kafka-managed@<network>`` run beside it).
    """
    from sqlitequeue.bench.results import DEFAULT_ROOT

    tell = say or _quiet
    if results:
        return [Source.of(folder, GIVEN) for folder in results]
    if measure:
        return [Source.of(f, MEASURED) for f in run_measurements(quick, root, say=tell)]
    where = Path(root) if root is not None else DEFAULT_ROOT
    bench, faults = latest_compare(where), latest_faults(where)
    sources = [Source.of(f, REUSED) for f in (bench, faults) if f is not None]
    missing = missing_experiments(faults) if faults is not None else []
    if bench is None:
        tell(f"no finished compare run under {where}/")
    if faults is None:
        tell(f"no finished failure-lab run under {where}/")
    elif missing:
        tell(f"{faults} lacks {', '.join(missing)}")
    if bench is None or faults is None or missing:
        new = run_measurements(
            quick,
            root,
            compare=bench is None,
            faults=faults is None or bool(missing),
            experiments=missing or None,
            say=tell,
        )
        sources += [Source.of(f, MEASURED) for f in new]
    if kafka_network is not None and bench is not None:
        sources += _measure_network(bench, kafka_network, quick, root, tell)
    return sources


def _measure_network(
    bench: Path, network: str, quick: bool, root: str | os.PathLike[str] | None, tell: Say
) -> list[Source]:
    """A compare run of Kafka over ``network`` when ``bench`` has none (else nothing)."""
    if has_kafka_runs_over(gather_evidence([bench]), network):
        return []
    label = f"kafka-managed@{network}"
    tell(
        f"{bench} has no Kafka runs over {network} (the profile's kafka_network); measuring: "
        f"{measure_network_command(network, quick)} (a few minutes, progress below)"
    )
    from sqlitequeue.bench.compare import run_compare

    return [Source.of(run_compare(quick=quick, backends=[label], out=root), MEASURED)]


def decide(
    profile: str | os.PathLike[str] | Mapping[str, Any],
    results: Sequence[str | os.PathLike[str]] | None = None,
    *,
    quick: bool = True,
    out: str | os.PathLike[str] | None = None,
    params: cost.Parameters | None = None,
    measure: bool = False,
    say: Say | None = None,
) -> tuple[Decision, list[Path]]:
    """Load ``profile``, gather evidence, evaluate, and write the report.

    Without ``results`` the newest runs under ``out`` (default ``results/``) are reused and
    only what they lack is measured (quick mode by default); ``measure`` forces fresh runs.
    ``say`` receives a line per folder used (what it is, how old) and the measurement's
    progress. The report goes into the first bench results folder (else the first folder).
    Returns the decision and the report paths. Raises ProfileError for a bad profile,
    BenchError for bad results.
    """
    tell = say or _quiet
    prof = load_profile(profile)
    # the profile's Kafka network matters to the latency criterion, judged with a p99 target
    network = prof.kafka_network if prof.p99_target_ms is not None else None
    sources = gather_sources(
        results, root=out, quick=quick, measure=measure, say=tell, kafka_network=network
    )
    if not sources:
        raise BenchError("no results to decide on; run `sqlitequeue bench compare` first")
    for source in sources:
        tell(f"using {source.describe()}")
    evidence = gather_evidence([s.path for s in sources])
    decision = evaluate(prof, evidence, params)
    target = evidence.bench[0].path if evidence.bench else sources[0].path
    return decision, write_report(decision, target)
