"""Notebooks 03 (cost projection) and 04 (decision) execute headless and read from the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import execute_notebook
from tests.test_decide import SEED, bench_run, faults_run

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _outputs(nb: Any) -> tuple[str, int]:
    """All text/markdown output joined, and the number of PNG images."""
    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images += "image/png" in data
            texts.append(out.get("text", ""))
            texts.append(data.get("text/markdown", ""))
            texts.append(data.get("text/plain", ""))
    return "\n".join(texts), images


def test_cost_projection_notebook(tmp_path: Path) -> None:
    bench = bench_run(tmp_path, sqlite_rate=20_000)
    nb = execute_notebook(
        NOTEBOOKS / "03_cost_projection.ipynb",
        {"PROFILE": str(SEED), "RESULTS": str(bench), "PARAMS": {"s3_put_per_1000": 0.005}},
        cwd=NOTEBOOKS,
    )
    text, images = _outputs(nb)
    assert images == 2  # breakdown, cost vs throughput
    assert "the cheapest option is" in text
    assert "measured SQLite capacity (20,000 msg/s)" in text
    assert "Under $5/month (the seed article's figure) holds only on an existing VM" in text


def test_decision_notebook(tmp_path: Path) -> None:
    folders = [str(bench_run(tmp_path)), str(faults_run(tmp_path))]
    seed = execute_notebook(
        NOTEBOOKS / "04_decision.ipynb",
        {"PROFILE": str(SEED), "RESULTS": folders, "WRITE_REPORT": True},
        cwd=NOTEBOOKS,
    )
    text, images = _outputs(seed)
    assert "**SQLite fits**" in text and images == 2
    assert (tmp_path / "bench-fixture" / "decision-seed.md").exists()
