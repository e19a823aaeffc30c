"""Self-describing results folders: ``results/<run-id>/``.

Measurement code writes; charts, reports, notebooks and verdicts read. A folder holds:

``run.json``
    what ran and where: ``run_id``, ``kind`` (bench, faults, locust, ...), ``created``,
    ``command``, ``workloads``, ``backends`` (each backend's ``describe()``: settings and
    client versions), ``environment`` (Python, SQLite, package versions, Java/Kafka when
    known, CPU count, memory, OS, git commit), plus whatever the writer adds.
``metrics.csv``
    tidy long format, one measurement per row:
    ``run_id, backend, workload, metric, t, value``.
    ``t`` is seconds since the measurement window began for time series and empty for
    run-level scalars. Metric names (a dot separates a qualifier):

    * time series: ``publish_rate``, ``consume_rate`` (msg/s), ``backlog`` (messages),
      ``cpu_percent.<process>``, ``rss_bytes.<process>``, ``disk_bytes``;
    * scalars: ``sent``, ``acknowledged``, ``received``, ``errors``, ``duplicates``,
      ``target_rate``, ``publish_rate_mean``, ``consume_rate_mean``,
      ``publish_latency_ms.<p50|p95|p99|p999|max|mean>``,
      ``e2e_latency_ms.<p50|p95|p99|p999|max|mean>``, ``disk_bytes_final``,
      ``max_sustainable_rate`` (msg/s meeting the p99 target; see report).
    When a workload ran several times (``bench compare`` repeats), each scalar here is the
    median over the repeats, except ``lost``, ``errors`` and ``duplicates`` (the worst
    repeat's); time series, histograms and rate steps are the median repeat's.
``repeats.csv``
    every repeat's scalars (``bench compare``, ``bench run``):
    ``run_id, backend, workload, repeat, metric, value`` (``repeat`` from 1; failed repeats
    have no rows). :meth:`Results.spread` gives median, min, max and quartiles per figure.
``logs/``
    each backend's log (``logs/<backend>.log``: client-library lines, failed runs' errors
    and tracebacks) and the local brokers' logs (``logs/broker-<deployment>/``).
``<table>.csv``
    any other tidy table, e.g. ``latency_hist.csv`` (``run_id, backend, workload, kind,
    upper_ms, count``), ``faults.csv``, ``locust_stats.csv``.

run.json keys a comparison adds: ``suite``, ``repeats`` (runs per workload),
``indicative`` (true in quick mode: one short run, figures not a basis for a decision),
``representative_repeat`` (``"BACKEND / WORKLOAD"`` -> the repeat whose series are kept),
``failures`` (``"BACKEND / WORKLOAD: first line of the error"``), ``failure_details``
(``backend, workload, repeat, error, how, log``), ``logs`` (name -> path relative to the
folder: the backend label, or ``broker-<deployment>/<file>``), ``selfcheck`` and ``team``
(the team profile the report's verdict is for, when one was named).

Writers use only the standard library; :func:`load` returns pandas DataFrames.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.errors import BenchError

if TYPE_CHECKING:
    import pandas as pd

METRIC_COLUMNS = ("run_id", "backend", "workload", "metric", "t", "value")
DEFAULT_ROOT = Path("results")
PACKAGES = (
    "sqlitequeue",
    "kafka-python",
    "confluent-kafka",
    "pandas",
    "matplotlib",
    "locust",
    "persist-queue",
    "litequeue",
)


def new_run_id(label: str) -> str:
    """Return a sortable, unique-enough run id such as ``20261128-101500-quick``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"
    return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{safe}"


def environment() -> dict[str, Any]:
    """Return versions and machine facts recorded with every run."""
    versions = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "versions": versions,
        "host": {
            "os": platform.platform(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "memory_bytes": _memory_bytes(),
            "python_executable": sys.executable,
        },
        "git_commit": _git_commit(),
    }


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        cwd=Path(__file__).resolve().parent,
        check=False,
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


@dataclass
class RunWriter:
    """Writes one results folder. Rows are appended to CSV files as they come.

    ``RunWriter(root, run_id, kind)`` creates ``root/run_id`` (raises BenchError if it
    already holds a run). Call :meth:`metadata` any number of times (keys merge), then
    :meth:`close` (also via ``with``), which writes ``run.json``.
    """

    root: Path
    run_id: str
    kind: str = "bench"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.dir = self.root / self.run_id
        if (self.dir / "run.json").exists():
            raise BenchError(f"{self.dir} already holds a run; choose another --out or run id")
        self.dir.mkdir(parents=True, exist_ok=True)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.meta = {
            "run_id": self.run_id,
            "kind": self.kind,
            "created": created,
            "command": sys.argv,
            **environment(),
            **self.meta,
        }
        self._files: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}
        self._columns: dict[str, tuple[str, ...]] = {"metrics": METRIC_COLUMNS}
        self._write_json()

    def metadata(self, **fields: Any) -> None:
        """Merge ``fields`` into run.json (nested dicts merge one level deep)."""
        for key, value in fields.items():
            old = self.meta.get(key)
            if isinstance(old, dict) and isinstance(value, Mapping):
                old.update(value)
            else:
                self.meta[key] = value
        self._write_json()

    def metric(
        self, backend: str, workload: str, metric: str, value: float, t: float | None = None
    ) -> None:
        """Append one measurement to metrics.csv (``t`` None for a run-level scalar)."""
        self.rows("metrics", [(self.run_id, backend, workload, metric, t, value)])

    def metrics(self, rows: Iterable[tuple[str, str, str, float | None, float]]) -> None:
        """Append many ``(backend, workload, metric, t, value)`` rows to metrics.csv."""
        self.rows("metrics", [(self.run_id, *row) for row in rows])

    def table(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append dict rows to ``<name>.csv``; the first row fixes the columns.

        A ``run_id`` column is added first when the rows have none.
        """
        rows = list(rows)
        if not rows:
            return
        if name not in self._columns:
            columns = list(rows[0])
            if "run_id" not in columns:
                columns.insert(0, "run_id")
            self._columns[name] = tuple(columns)
        cols = self._columns[name]
        self.rows(
            name,
            [tuple(r.get(c, self.run_id if c == "run_id" else None) for c in cols) for r in rows],
        )

    def rows(self, name: str, rows: Iterable[tuple[Any, ...]]) -> None:
        """Append raw tuples to ``<name>.csv`` (columns already known)."""
        writer = self._writers.get(name)
        if writer is None:
            path = self.dir / f"{name}.csv"
            fh = open(path, "a", newline="")  # noqa: SIM115 - closed in close()
            self._files[name] = fh
            writer = self._writers[name] = csv.writer(fh)
            if path.stat().st_size == 0:
                writer.writerow(self._columns[name])
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])

    def flush(self) -> None:
        """Flush CSV files to disk (readers may look at a run in progress)."""
        for fh in self._files.values():
            fh.flush()

    def close(self) -> None:
        """Flush and close every file and write the final run.json."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        self._writers.clear()
        self.meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._write_json()

    def _write_json(self) -> None:
        tmp = self.dir / "run.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(self.dir / "run.json")

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Results:
    """A loaded results folder: ``meta`` (run.json), ``metrics`` and other ``tables``."""

    path: Path
    meta: dict[str, Any]
    metrics: pd.DataFrame
    tables: dict[str, pd.DataFrame]

    def scalar(self, backend: str, metric: str, workload: str | None = None) -> float | None:
        """Return one run-level scalar (the first match), or None when absent."""
        df = self.metrics
        rows = df[(df.backend == backend) & (df.metric == metric) & df.t.isna()]
        if workload is not None:
            rows = rows[rows.workload == workload]
        return None if rows.empty else float(rows.value.iloc[0])

    def scalars(self) -> pd.DataFrame:
        """Return run-level scalars as a wide table: one row per (backend, workload)."""
        df = self.metrics[self.metrics.t.isna()]
        return df.pivot_table(
            index=["backend", "workload"], columns="metric", values="value", aggfunc="first"
        )

    def spread(self, metric: str) -> pd.DataFrame:
        """Return ``metric`` over the repeats: one row per (backend, workload), columns
        ``backend, workload, median, min, max, q1, q3, n``.

        From ``repeats.csv``; a folder without one (a single run) gives its metrics.csv
        scalar with ``n`` 1. Empty when the metric was not recorded.
        """
        import pandas as pd

        table = self.tables.get("repeats")
        if table is None or table.empty:
            table = self.metrics[self.metrics.t.isna()].assign(repeat=1)
        rows = table[table.metric == metric]
        columns = ["backend", "workload", "median", "min", "max", "q1", "q3", "n"]
        if rows.empty:
            return pd.DataFrame(columns=columns)
        values = pd.to_numeric(rows.value, errors="coerce")
        grouped = values.groupby([rows.backend, rows.workload], sort=False)
        out = pd.DataFrame(
            {
                "median": grouped.median(),
                "min": grouped.min(),
                "max": grouped.max(),
                "q1": grouped.quantile(0.25),
                "q3": grouped.quantile(0.75),
                "n": grouped.count(),
            }
        ).reset_index()
        return out[columns]

    def series(self, metric: str) -> pd.DataFrame:
        """Return the time series of ``metric`` (columns: backend, workload, t, value)."""
        df = self.metrics
        return df[(df.metric == metric) & df.t.notna()][["backend", "workload", "t", "value"]]


def load(path: str | os.PathLike[str]) -> Results:
    """Load a results folder written by :class:`RunWriter`; raise BenchError if invalid."""
    import pandas as pd

    folder = Path(path)
    meta_path = folder / "run.json"
    if not meta_path.exists():
        raise BenchError(f"{folder} is not a results folder (no run.json); run a benchmark first")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise BenchError(f"{meta_path} is not valid JSON: {exc}") from exc
    tables: dict[str, pd.DataFrame] = {}
    for csv_path in sorted(folder.glob("*.csv")):
        tables[csv_path.stem] = pd.read_csv(csv_path)
    metrics = tables.pop("metrics", pd.DataFrame(columns=list(METRIC_COLUMNS)))
    metrics["t"] = pd.to_numeric(metrics["t"], errors="coerce")
    metrics["value"] = pd.to_numeric(metrics["value"], errors="coerce")
    return Results(folder, meta, metrics, tables)


def list_runs(root: str | os.PathLike[str] = DEFAULT_ROOT, kind: str | None = None) -> list[Path]:
    """Return result folders under ``root`` (oldest first), optionally of one ``kind``."""
    runs = []
    for meta_path in sorted(Path(root).glob("*/run.json")):
        if kind is not None:
            try:
                if json.loads(meta_path.read_text()).get("kind") != kind:
                    continue
            except json.JSONDecodeError:
                continue
        runs.append(meta_path.parent)
    return runs


def latest_run(root: str | os.PathLike[str] = DEFAULT_ROOT, kind: str | None = None) -> Path:
    """Return the newest results folder under ``root``; raise BenchError if there is none."""
    runs = list_runs(root, kind)
    if not runs:
        what = f"{kind} " if kind else ""
        raise BenchError(f"no {what}results under {root}; run `sqlitequeue bench compare` first")
    return max(
        runs, key=lambda p: (json.loads((p / "run.json").read_text()).get("created", ""), p.name)
    )
