"""notebooks/01_throughput_latency.ipynb measures when asked: a tiny real comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO, execute_notebook

NOTEBOOK = REPO / "notebooks" / "01_throughput_latency.ipynb"

pytestmark = pytest.mark.slow


def outputs(nb: object) -> str:
    texts = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for out in cell.get("outputs", []):
            texts.append(str(out.get("text", "")))
            texts.append(str(out.get("data", {}).get("text/markdown", "")))
            texts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_the_notebook_runs_a_small_comparison_and_reads_it(tmp_path: Path) -> None:
    nb = execute_notebook(
        NOTEBOOK,
        {
            "MEASURE": True,
            "BACKENDS": ["sqlite-queue", "sqlite-seed"],
            "WORKLOADS": ["seed-clickstream"],
            "DURATION": 2,
            "SELFCHECK": False,
            "OUT": str(tmp_path),
        },
        cwd=NOTEBOOK.parent,
    )
    text = outputs(nb)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    for name in ("throughput", "latency_cdf", "resources"):
        assert (folder / "report" / f"{name}.png").exists()
    assert "seed-clickstream: lowest end-to-end p99 was" in text
    assert f"**This run** (`{folder}`)" in text  # the answer, from the run just made
    assert f"From run `{folder.name}`" in text and "SQLite under 1 ms" in text
    assert text.index("From run `reference`") < text.index(f"From run `{folder.name}`")
    assert "image/png" in str(nb.cells)  # type: ignore[attr-defined]
