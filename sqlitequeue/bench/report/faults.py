"""The failure-recovery section of the report, from results files only.

Reads a ``kind="faults"`` results folder (``faults.csv``, ``fault_series.csv``,
``fault_events.csv``, ``run.json``) and renders: a summary table (loss, duplication,
RTO, RPO per experiment), a throughput timeline around each fault, the RTO/RPO
distribution, and a plain-language reading whose every number comes from the files.
Never imports a backend, a broker or Litestream.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.results import Results, load

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

NUMERIC = (
    "produced",
    "acknowledged",
    "recovered",
    "lost",
    "duplicated",
    "rto_s",
    "rpo_messages",
    "rpo_s",
)


def faults_table(results: Results) -> pd.DataFrame:
    """Return faults.csv with numeric columns as numbers and a ``case`` label column."""
    import pandas as pd

    if "faults" not in results.tables:
        raise_missing(results.path)
    df = results.tables["faults"].copy()
    for column in NUMERIC:
        df[column] = pd.to_numeric(df[column], errors="coerce")
    df["notes"] = df["notes"].fillna("").astype(str)
    df["case"] = df.experiment + " · " + df.backend + _durability_suffix(df)
    return df


def _durability_suffix(df: pd.DataFrame) -> pd.Series:
    """`` (full)`` where an experiment runs with several durability settings."""
    counts = df.groupby(["experiment", "backend"]).durability.transform("nunique")
    several = (counts > 1).to_numpy()
    return df.durability.astype(str).map(lambda d: f" ({d})").where(several, "")


def raise_missing(path: Path) -> Any:
    """Raise BenchError: ``path`` holds no faults results."""
    from sqlitequeue.bench.errors import BenchError

    raise BenchError(f"{path} has no faults.csv; run `sqlitequeue bench faults` first")


def summarize(faults: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, backend, durability) of a faults.csv DataFrame.

    Columns: repeats, acknowledged / lost / duplicated (sums over repeats; empty when the
    experiment was unavailable), rto_median_s, rto_max_s, rpo_messages_max, rpo_max_s,
    and the first repeat's notes.
    """
    import pandas as pd

    df = faults.copy()
    for column in NUMERIC:
        df[column] = pd.to_numeric(df[column], errors="coerce")
    grouped = df.groupby(["experiment", "backend", "durability"], sort=False)
    summary = grouped.agg(
        repeats=("repeat", "count"),
        acknowledged=("acknowledged", "sum"),
        lost=("lost", "sum"),
        duplicated=("duplicated", "sum"),
        rto_median_s=("rto_s", "median"),
        rto_max_s=("rto_s", "max"),
        rpo_messages_max=("rpo_messages", "max"),
        rpo_max_s=("rpo_s", "max"),
        notes=("notes", "first"),
    ).reset_index()
    measured = grouped["acknowledged"].count().reset_index(drop=True) > 0
    for column in ("acknowledged", "lost", "duplicated"):
        summary[column] = summary[column].astype("Int64").where(measured)
    return summary.round({"rto_median_s": 3, "rto_max_s": 3, "rpo_max_s": 3})


def series_table(results: Results) -> pd.DataFrame:
    """Return fault_series.csv (throughput around each fault) with a ``case`` column."""
    import pandas as pd

    df = results.tables.get("fault_series")
    if df is None:
        return pd.DataFrame(columns=["experiment", "backend", "case", "metric", "t", "value"])
    df = df.copy()
    df["case"] = df.experiment + " · " + df.backend + _durability_suffix(df)
    return df


def plot_timelines(results: Results) -> Figure:
    """One panel per experiment: mean publish (solid) and consume (dashed) rate vs time.

    ``t = 0`` is the fault; each line averages the repeats of one backend/durability.
    """
    import matplotlib.pyplot as plt

    df = series_table(results)
    experiments = list(dict.fromkeys(df.experiment)) or ["(no series)"]
    cols = 2
    rows = (len(experiments) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.2 * rows), squeeze=False)
    for ax, experiment in zip(axes.flat, experiments, strict=False):
        part = df[df.experiment == experiment]
        for (case, metric), line in part.groupby(["case", "metric"]):
            mean = line.groupby("t").value.mean()
            style = "-" if metric == "publish_rate" else "--"
            label = f"{case.split(' · ', 1)[-1]} {metric.split('_')[0]}"
            ax.plot(mean.index, mean.values, style, label=label)
        ax.axvline(0, color="red", linewidth=1)
        ax.set_title(experiment)
        ax.set_xlabel("seconds from the fault")
        ax.set_ylabel("msg/s")
        if not part.empty:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(experiments) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_rto_rpo(results: Results) -> Figure:
    """RTO per repeat (left, log scale above 0.1 s) and RPO window per repeat (right)."""
    import matplotlib.pyplot as plt

    df = faults_table(results)
    df = df[df.acknowledged.notna()]
    cases = list(dict.fromkeys(df.case))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.5 * len(cases) + 1.5), sharey=True)
    for y, case in enumerate(cases):
        part = df[df.case == case]
        left.scatter(part.rto_s, [y] * len(part), alpha=0.7)
        right.scatter(part.rpo_s.fillna(0), [y] * len(part), alpha=0.7)
    left.set_yticks(range(len(cases)), cases, fontsize=8)
    left.set_xlabel("RTO: seconds until recovered")
    right.set_xlabel("RPO: seconds of acknowledged writes lost")
    left.set_xscale("symlog", linthresh=0.1)
    longest = df.rto_s.max()
    left.set_xlim(0, (longest if longest == longest and longest > 0 else 1.0) * 2)
    right.set_xlim(left=0)
    fig.tight_layout()
    return fig


def reading(results: Results) -> list[str]:
    """Plain-language findings, each computed from the results files."""
    df = faults_table(results)
    lines: list[str] = []
    measured = df[df.acknowledged.notna()]
    for case, part in measured.groupby("case", sort=False):
        lost, acked = int(part.lost.sum()), int(part.acknowledged.sum())
        rto = part.rto_s.dropna()
        rto_text = f"recovered in {rto.median():.2f} s (median of {len(rto)})" if len(rto) else ""
        if lost:
            window = part.rpo_s.max()
            lines.append(
                f"{case}: LOST {lost} of {acked} acknowledged messages over {len(part)} "
                f"repeat(s), a window of up to {window:.2f} s; {rto_text}."
            )
        else:
            dup = int(part["duplicated"].sum())
            dup_text = f", {dup} delivered twice" if dup else ""
            lines.append(
                f"{case}: nothing acknowledged was lost ({acked} checked{dup_text}); {rto_text}."
            )
    for case, part in df[df.acknowledged.isna()].groupby("case", sort=False):
        lines.append(f"{case}: not measured here ({part.notes.iloc[0]}).")
    return lines


def render_faults_section(
    results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> str:
    """Write the section's charts into ``out_dir`` and return its Markdown.

    Raises BenchError if ``results_dir`` is not a faults results folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = load(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(faults_table(results)).drop(columns=["notes"])
    charts = {"faults_timeline.png": plot_timelines, "faults_rto_rpo.png": plot_rto_rpo}
    for name, plot in charts.items():
        fig = plot(results)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
    lines = [
        "## Failure recovery",
        "",
        f"Run `{results.meta.get('run_id')}` ({results.meta.get('created', '')}); "
        f"Litestream {results.meta.get('litestream', {}).get('litestream_version', 'n/a')}.",
        "",
        markdown_table(summary),
        "",
        *[f"- {line}" for line in reading(results)],
        "",
        "![Throughput around each fault](faults_timeline.png)",
        "",
        "![RTO and RPO per repeat](faults_rto_rpo.png)",
        "",
    ]
    return "\n".join(lines)


def markdown_table(df: pd.DataFrame) -> str:
    """Return ``df`` as a GitHub Markdown table (empty cells for missing values)."""
    import pandas as pd

    def cell(value: Any) -> str:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        return f"{value:g}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])
