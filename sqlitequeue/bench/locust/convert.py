"""Convert a Locust run's CSVs into a workbench results folder (``kind: locust``).

Reads what ``loadtests/locustfile.py`` and Locust's ``--csv PREFIX`` wrote:

``PREFIX_stats.csv``
    one row per (Type, Name): Locust's totals; Type is the backend, Name is ``publish``,
    ``consume`` or ``end-to-end``. Stored whole as the ``locust_stats`` table.
``PREFIX_stats_history.csv``
    periodic rows (per name with ``--csv-full-history``); the differences of
    ``Total Request Count`` give the ``publish_rate`` / ``consume_rate`` series.
``PREFIX_failures.csv``
    stored as the ``locust_failures`` table when it has rows.
``PREFIX_response_times.csv`` (written by the locustfile)
    every response-time bucket with sub-millisecond precision: percentiles and the
    ``latency_hist`` table come from it (Locust's own CSV rounds percentiles to whole ms).
``PREFIX_sqq.json`` (written by the locustfile)
    backend, workload, replay and warm-up seconds, the common start time.

Metric names follow :mod:`sqlitequeue.bench.results`: ``publish_latency_ms.<p>``,
``e2e_latency_ms.<p>``, ``consume_latency_ms.<p>`` (one poll + commit), ``sent``,
``acknowledged``, ``received``, ``errors``, ``publish_rate_mean``, ``consume_rate_mean``,
``target_rate``; rates are over the measured window (replay time minus warm-up). Locust
does not track sequence numbers, so ``lost`` and ``duplicates`` are not reported.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.metrics import PERCENTILES
from sqlitequeue.bench.results import RunWriter, new_run_id

PUBLISH, CONSUME, END_TO_END = "publish", "consume", "end-to-end"
#: Locust request name -> metric prefix and latency_hist kind
KINDS = {
    PUBLISH: ("publish_latency_ms", "publish"),
    END_TO_END: ("e2e_latency_ms", "e2e"),
    CONSUME: ("consume_latency_ms", "consume"),
}
#: our percentile names -> Locust's stats.csv columns (fallback when no response_times file)
LOCUST_COLUMNS = {"p50": "50%", "p95": "95%", "p99": "99%", "p999": "99.9%"}


@dataclass
class LocustCsv:
    """One Locust run's files, read (see the module docstring)."""

    prefix: str
    stats: list[dict[str, str]]
    history: list[dict[str, str]]
    failures: list[dict[str, str]]
    buckets: dict[tuple[str, str], list[tuple[float, int]]] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str, backend: str | None = None) -> dict[str, str] | None:
        """Return the stats row of request ``name`` (of ``backend`` when given), or None."""
        for r in self.stats:
            if r.get("Name") == name and (backend is None or r.get("Type") == backend):
                return r
        return None


def _read_csv(path: Path, required: bool) -> list[dict[str, str]]:
    if not path.exists():
        if required:
            raise BenchError(
                f"{path} does not exist: give the --csv PREFIX of a Locust run "
                "(e.g. results/<run>/locust-csv/sqlite-queue)"
            )
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_locust_csv(prefix: str | os.PathLike[str]) -> LocustCsv:
    """Read the files of Locust run ``prefix``; raise BenchError if _stats.csv is missing."""
    p = str(prefix)
    stats = _read_csv(Path(f"{p}_stats.csv"), required=True)
    if not stats or "Name" not in stats[0]:
        raise BenchError(f"{p}_stats.csv holds no Locust statistics (empty or another format)")
    run = LocustCsv(
        prefix=p,
        stats=stats,
        history=_read_csv(Path(f"{p}_stats_history.csv"), required=False),
        failures=_read_csv(Path(f"{p}_failures.csv"), required=False),
    )
    for r in _read_csv(Path(f"{p}_response_times.csv"), required=False):
        key = (r["Type"], r["Name"])
        run.buckets.setdefault(key, []).append((float(r["response_time_ms"]), int(r["count"])))
    facts = Path(f"{p}_sqq.json")
    if facts.exists():
        try:
            run.facts = json.loads(facts.read_text())
        except json.JSONDecodeError as exc:
            raise BenchError(f"{facts} is not valid JSON: {exc}") from exc
    return run


def percentile(buckets: list[tuple[float, int]], pct: float) -> float:
    """Return the bucket value at or below which ``pct`` % of the counts fall (0.0 if none)."""
    total = sum(c for _, c in buckets)
    if not total:
        return 0.0
    rank = max(1, math.ceil(total * pct / 100.0))
    seen = 0
    for value, count in sorted(buckets):
        seen += count
        if seen >= rank:
            return value
    return sorted(buckets)[-1][0]


def latency_summary(run: LocustCsv, backend: str, name: str) -> dict[str, float]:
    """Return p50/p95/p99/p999/max/mean in ms for request ``name``.

    Percentiles come from the sub-ms buckets when present, else from Locust's columns.
    """
    row = run.row(name, backend) or {}
    buckets = run.buckets.get((backend, name))
    out: dict[str, float] = {}
    for key, pct in PERCENTILES.items():
        if buckets:
            out[key] = percentile(buckets, pct)
        else:
            out[key] = _num(row.get(LOCUST_COLUMNS[key]))
    out["max"] = _num(row.get("Max Response Time"))
    out["mean"] = _num(row.get("Average Response Time"))
    return out


def _num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "", "N/A") else math.nan
    except ValueError:
        return math.nan


def _target_rate(workload_name: str, facts: Mapping[str, Any]) -> float | None:
    from sqlitequeue.bench.runner import target_rate as target  # the workbench's definition
    from sqlitequeue.bench.workload import load_workload

    if facts.get("max_rate"):
        return 0.0
    try:
        return float(target(load_workload(facts.get("workload_path") or workload_name)))
    except Exception:
        return None


def _window(run: LocustCsv) -> float | None:
    f = run.facts
    if "replay_seconds" in f:
        return max(1e-6, float(f["replay_seconds"]) - float(f.get("warmup_seconds", 0.0)))
    return None


def scalars(run: LocustCsv, backend: str, workload: str) -> dict[str, float]:
    """Return the run-level metrics (see the module docstring) for ``backend``."""
    out: dict[str, float] = {}
    window = _window(run)
    groups = max(1, int(run.facts.get("groups", 1)))
    for name, (metric, _kind) in KINDS.items():
        row = run.row(name, backend)
        if row is None:
            continue
        for key, value in latency_summary(run, backend, name).items():
            out[f"{metric}.{key}"] = value
    pub, e2e, con = (run.row(n, backend) for n in (PUBLISH, END_TO_END, CONSUME))
    if pub is not None:
        count = _num(pub["Request Count"])
        out["sent"] = out["acknowledged"] = count
        out["errors"] = _num(pub["Failure Count"])
        out["publish_rate_mean"] = count / window if window else _num(pub["Requests/s"])
    if e2e is not None:
        count = _num(e2e["Request Count"])
        out["received"] = count
        rate = count / window if window else _num(e2e["Requests/s"])
        out["consume_rate_mean"] = rate / groups
    if con is not None:
        out["consume_batches"] = _num(con["Request Count"])
        out["errors"] = out.get("errors", 0.0) + _num(con["Failure Count"])
    target = _target_rate(workload, run.facts)
    if target is not None:
        out["target_rate"] = target
    for key in ("replay_seconds", "warmup_seconds"):
        if key in run.facts:
            out[key.replace("replay_", "duration_")] = float(run.facts[key])
    return out


def series(run: LocustCsv, backend: str) -> list[tuple[str, float, float]]:
    """Return ``(metric, t, value)`` rows: per-interval publish and consume rates.

    ``t`` counts from the end of the warm-up when the start time is known (else from the
    first history row). Needs ``--csv-full-history`` (per-name history rows).
    """
    f = run.facts
    start = f.get("start_at")
    origin = None if start is None else float(start) + float(f.get("warmup_seconds", 0.0))
    groups = max(1, int(f.get("groups", 1)))
    out: list[tuple[str, float, float]] = []
    for name, metric, divide in (
        (PUBLISH, "publish_rate", 1),
        (END_TO_END, "consume_rate", groups),
    ):
        rows = [r for r in run.history if r.get("Name") == name and r.get("Type") == backend]
        last: tuple[float, float] | None = None
        for r in rows:
            ts, total = _num(r.get("Timestamp")), _num(r.get("Total Request Count"))
            if math.isnan(ts) or math.isnan(total):
                continue
            if origin is None:
                origin = ts
            if last is not None and ts > last[0]:
                out.append(
                    (metric, round(ts - origin, 3), (total - last[1]) / (ts - last[0]) / divide)
                )
            last = (ts, total)
    return out


def histogram_rows(run: LocustCsv, backend: str, workload: str) -> list[dict[str, Any]]:
    """Return ``latency_hist`` rows (kind publish/e2e/consume, upper_ms, count)."""
    rows = []
    for name, (_metric, kind) in KINDS.items():
        for value, count in sorted(run.buckets.get((backend, name), [])):
            rows.append(
                {
                    "backend": backend,
                    "workload": workload,
                    "kind": kind,
                    "upper_ms": value,
                    "count": count,
                }
            )
    return rows


def _backends(run: LocustCsv) -> list[str]:
    names = [r["Type"] for r in run.stats if r.get("Name") in KINDS and r.get("Type")]
    return list(dict.fromkeys(names))


def import_run(
    writer: RunWriter,
    prefix: str | os.PathLike[str],
    backend: str | None = None,
    workload: str | None = None,
) -> tuple[str, str]:
    """Add Locust run ``prefix`` to ``writer``'s folder; return its (backend, workload).

    ``backend`` and ``workload`` default to what the locustfile recorded (``PREFIX_sqq.json``
    and the stats' request type). Raises BenchError when the files are missing or hold no
    ``publish``/``end-to-end`` requests, or when neither names the workload.
    """
    run = read_locust_csv(prefix)
    found = _backends(run)
    backend = backend or run.facts.get("backend") or (found[0] if found else None)
    if backend is None or backend not in found:
        raise BenchError(
            f"{run.prefix}_stats.csv has no publish/consume/end-to-end requests"
            + (f" of backend {backend!r}" if backend else "")
            + (f" (found: {', '.join(found)})" if found else "")
        )
    workload = workload or run.facts.get("workload")
    if not workload:
        raise BenchError(f"{run.prefix}: no {run.prefix}_sqq.json; name the workload (--workload)")
    writer.metrics(
        [(backend, workload, m, None, v) for m, v in scalars(run, backend, workload).items()]
    )
    writer.metrics([(backend, workload, m, t, v) for m, t, v in series(run, backend)])
    writer.table("latency_hist", histogram_rows(run, backend, workload))
    writer.table(
        "locust_stats", [{"backend": backend, "workload": workload, **r} for r in run.stats]
    )
    if run.failures:
        writer.table(
            "locust_failures",
            [{"backend": backend, "workload": workload, **r} for r in run.failures],
        )
    describe = dict(run.facts.get("describe") or {"backend": backend})
    describe["locust"] = {
        k: run.facts.get(k) for k in ("users", "replay_seconds", "warmup_seconds", "max_rate")
    }
    describe["locust"]["csv_prefix"] = str(run.prefix)
    writer.metadata(backends={backend: describe})
    if run.facts.get("workload_describe"):
        writer.metadata(workloads={workload: run.facts["workload_describe"]})
    writer.flush()
    return backend, workload


def import_runs(
    prefixes: Iterable[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str] = "results",
    run_id: str | None = None,
    backend: str | None = None,
    workload: str | None = None,
) -> Path:
    """Convert one or more Locust runs into one new results folder under ``out``; return it."""
    prefixes = list(prefixes)
    if not prefixes:
        raise BenchError("no Locust CSV prefix given")
    run_id = run_id or new_run_id("locust")
    with RunWriter(Path(out), run_id, kind="locust") as writer:
        for prefix in prefixes:
            import_run(writer, prefix, backend, workload)
    return writer.dir
