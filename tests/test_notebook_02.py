"""notebooks/02_failure_recovery.ipynb runs headless on a small real faults run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlitequeue.bench.faults.experiments import run_faults
from sqlitequeue.bench.report.faults import render_faults_section
from sqlitequeue.bench.results import load
from tests.helpers import REPO, execute_notebook

NOTEBOOK = REPO / "notebooks" / "02_failure_recovery.ipynb"

pytestmark = [pytest.mark.slow, pytest.mark.litestream]


def outputs(nb: object) -> str:
    texts = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for out in cell.get("outputs", []):
            texts.append(str(out.get("text", "")))
            texts.append(str(out.get("data", {}).get("text/markdown", "")))
            texts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def images(nb: object) -> int:
    return sum(
        1
        for cell in nb.cells  # type: ignore[attr-defined]
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )


def test_the_notebook_reads_a_faults_run_and_charts_it(tmp_path: Path) -> None:
    folder = run_faults(
        quick=True,
        experiments=["producer-kill:sqlite-queue", "host-loss-litestream-down"],
        out=tmp_path,
    )
    nb = execute_notebook(NOTEBOOK, {"RESULTS": str(folder)}, cwd=NOTEBOOK.parent)
    text = outputs(nb)
    faults = load(folder).tables["faults"]
    lost = int(faults[faults.experiment == "host-loss-litestream-down"].lost.sum())
    assert lost > 0
    assert f"LOST {lost} of" in text  # the reading is computed from the results
    assert "producer-kill · sqlite-queue: nothing acknowledged was lost" in text
    assert images(nb) == 2  # timeline + RTO/RPO

    section = render_faults_section(folder, tmp_path / "report")
    assert section.startswith("## Failure recovery")
    assert "| experiment | backend | durability | repeats |" in section
    assert f"LOST {lost} of" in section
    for image in ("faults_timeline.png", "faults_rto_rpo.png"):
        assert f"]({image})" in section
        assert (tmp_path / "report" / image).stat().st_size > 0


def test_the_answer_names_only_what_each_system_measured() -> None:
    """The gateway's kill measures no redelivery: its line leaves that clause out rather
    than printing a placeholder for it."""
    from sqlitequeue.bench.report.notebook import recovery_answer

    answer = recovery_answer(REPO / "results" / "reference-faults")
    gateway = next(line for line in answer.splitlines() if line.startswith("- **Gateway"))
    assert "redelivered" not in gateway and " - s" not in gateway
    assert "no acknowledged message lost" in gateway
