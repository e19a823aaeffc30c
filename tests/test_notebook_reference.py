"""Every notebook runs top to bottom on the committed reference results, measuring nothing.

"Run All" with the default parameters must read ``results/reference*`` and start no
benchmark; the answer comes first; outputs are rounded text and images, never a Python
object's repr; and the outputs committed with the notebook are the ones it produces now (so
the notebooks read the same on a code host).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.helpers import REPO, execute_notebook

NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
#: what a leaked repr, an unrounded float or a missing value looks like in an output
RAW = re.compile(
    r"<[\w.]+ (object|at 0x)|<Figure size|\bNaN\b|\bnan\b|\d\.0*[1-9]\d{4,}|\[\d+\.\d+, "
)


def _texts(nb: Any) -> list[str]:
    """Each output's text (stream text, else Markdown, else plain text), in order."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            found.append(out.get("text") or data.get("text/markdown") or data.get("text/plain", ""))
    return found


def _kinds(nb: Any) -> list[str]:
    return [
        out.get("output_type") if not out.get("data") else next(iter(out["data"]))
        for cell in nb.cells
        for out in cell.get("outputs", [])
    ]


def test_there_are_four_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_run_all_reads_the_committed_results(path: Path) -> None:
    started = time.monotonic()
    nb: Any = execute_notebook(path, {}, cwd=path.parent)  # raises on any cell's error
    took = time.monotonic() - started
    assert took < 30, f"{path.name} took {took:.0f} s: Run All must not measure"

    source = "\n".join(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "MEASURE = False" in source or path.name.startswith("03"), "measuring is off by default"

    kinds, texts = _kinds(nb), _texts(nb)
    assert kinds and kinds[0] == "text/markdown", f"{path.name}: the first output is the answer"
    assert "stream" not in kinds and "error" not in kinds, f"{path.name}: printed or failed"
    assert "image/png" in kinds
    raw = [m.group(0) for text in texts for m in [RAW.search(text)] if m]
    assert not raw, f"{path.name} shows raw values: {raw}"

    committed = nbformat.read(str(path), as_version=4)
    assert _texts(committed) == texts, f"{path.name}: committed outputs are stale; re-execute it"
