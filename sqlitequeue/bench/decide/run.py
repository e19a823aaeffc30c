"""Decide end to end: load a profile, gather (or measure) evidence, evaluate, write the report."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.evidence import gather_evidence
from sqlitequeue.bench.decide.report import write_report
from sqlitequeue.bench.decide.team_profile import load_profile
from sqlitequeue.bench.decide.verdict import Decision, evaluate


def run_measurements(quick: bool = True, out: str | os.PathLike[str] | None = None) -> list[Path]:
    """Run the bench comparison and the failure lab; return their results folders.

    Imports :mod:`sqlitequeue.bench.compare` and :mod:`sqlitequeue.bench.faults.experiments` lazily;
    raises whatever they raise (BenchError subclasses) on failure.
    """
    from sqlitequeue.bench.compare import run_compare
    from sqlitequeue.bench.faults.experiments import run_faults

    return [run_compare(quick=quick, out=out), run_faults(quick=quick, out=out)]


def decide(
    profile: str | os.PathLike[str] | Mapping[str, Any],
    results: Sequence[str | os.PathLike[str]] | None = None,
    *,
    quick: bool = True,
    out: str | os.PathLike[str] | None = None,
    params: cost.Parameters | None = None,
) -> tuple[Decision, list[Path]]:
    """Load ``profile``, gather (or measure) evidence, evaluate, and write the report.

    Without ``results`` the measurements run first (quick mode by default). The report goes
    into the first bench results folder (else the first folder). Returns the decision and
    the report paths. Raises ProfileError for a bad profile, BenchError for bad results.
    """
    prof = load_profile(profile)
    folders = list(results) if results else run_measurements(quick=quick, out=out)
    evidence = gather_evidence(folders)
    decision = evaluate(prof, evidence, params)
    target = evidence.bench[0].path if evidence.bench else Path(folders[0])
    return decision, write_report(decision, target)
