"""Results folders round-trip: what a writer records, load() returns."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlitequeue.bench import results
from sqlitequeue.bench.errors import BenchError


def test_results_round_trip(tmp_path: Path) -> None:
    with results.RunWriter(tmp_path, "r1", kind="bench") as run:
        run.metadata(workloads={"steady": {"producerRate": 100}})
        run.metric("sqlite-queue", "steady", "e2e_latency_ms.p99", 1.5)
        run.metrics([("sqlite-queue", "steady", "publish_rate", 1.0, 99.0)])
        run.table("latency_hist", [{"backend": "sqlite-queue", "upper_ms": 1.0, "count": 3}])
    loaded = results.load(tmp_path / "r1")
    assert loaded.meta["kind"] == "bench"
    assert loaded.meta["versions"]["sqlite"]
    assert loaded.meta["workloads"]["steady"]["producerRate"] == 100
    assert loaded.scalar("sqlite-queue", "e2e_latency_ms.p99") == 1.5
    assert loaded.series("publish_rate").value.tolist() == [99.0]
    assert loaded.tables["latency_hist"]["count"].tolist() == [3]
    assert results.latest_run(tmp_path) == tmp_path / "r1"


def test_load_rejects_non_results_folder(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"no run\.json"):
        results.load(tmp_path)


def test_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    results.RunWriter(tmp_path, "r1").close()
    with pytest.raises(BenchError, match="already holds a run"):
        results.RunWriter(tmp_path, "r1")
