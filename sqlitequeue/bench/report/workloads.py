"""Charts, an HTML report and a terminal summary, from a results folder only.

Reads what :class:`~sqlitequeue.bench.results.RunWriter` wrote (``run.json``,
``metrics.csv``, ``latency_hist.csv``, ``rate_steps.csv``) and never imports a backend.

* :func:`summary_table`  one row per (workload, backend): rates, latency percentiles,
  losses, CPU, memory, disk.
* :func:`max_rate_table`  per backend: the maximum sustainable rate at the p99 target
  (from a ``producerRate: 0`` search) and the highest suite rate met within the target.
* :func:`reading`  plain-language sentences computed from the numbers.
* :func:`write_charts`  the PNG charts; the whole page, verdict first, is written by
  :mod:`~sqlitequeue.bench.report.page`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.report.capacity import search_outcomes
from sqlitequeue.bench.report.formatting import format_number
from sqlitequeue.bench.results import Results, load

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_P99_TARGET_MS = 50.0
MB = 1024 * 1024
CHARTS = {
    "throughput": "Publish and consume rate over time",
    "latency_vs_rate": "End-to-end p99 latency against achieved rate",
    "latency_cdf": "End-to-end latency distribution (CDF)",
    "backlog": "Backlog (messages not yet consumed) over time",
    "resources": "CPU and memory of every process involved",
}
SUMMARY_COLUMNS = {
    "target_rate": "target msg/s",
    "publish_rate_mean": "publish msg/s",
    "consume_rate_mean": "consume msg/s",
    "publish_latency_ms.p99": "publish p99 ms",
    "e2e_latency_ms.p50": "e2e p50 ms",
    "e2e_latency_ms.p99": "e2e p99 ms",
    "e2e_latency_ms.max": "e2e max ms",
    "lost": "lost",
    "duplicates": "dups",
    "errors": "errors",
    "unsent": "unsent",
    "drain_seconds": "drain s",
}


# --- tables ----------------------------------------------------------------------------


def _resources(res: Results) -> pd.DataFrame:
    """Per (backend, workload): mean CPU % and peak RSS of clients+broker, final disk."""
    import pandas as pd

    df = res.metrics[res.metrics.t.notna()]
    rows = []
    for (backend, workload), g in df.groupby(["backend", "workload"]):
        cpu = g[g.metric.str.startswith("cpu_percent.") & ~g.metric.str.endswith(".harness")]
        rss = g[g.metric.str.startswith("rss_bytes.") & ~g.metric.str.endswith(".harness")]
        cpu_by_t = cpu.groupby("t").value.sum()
        rss_by_t = rss.groupby("t").value.sum()
        rows.append(
            {
                "backend": backend,
                "workload": workload,
                "cpu %": cpu_by_t.mean() if len(cpu_by_t) else math.nan,
                "rss MB": rss_by_t.max() / MB if len(rss_by_t) else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["backend", "workload", "cpu %", "rss MB"])


def summary_table(res: Results) -> pd.DataFrame:
    """Return one row per (workload, backend) with the headline numbers, in run order."""
    import pandas as pd

    scalars = res.scalars().reset_index()
    if scalars.empty:
        return pd.DataFrame()
    cols = ["workload", "backend"] + [c for c in SUMMARY_COLUMNS if c in scalars]
    table = scalars[cols].rename(columns=SUMMARY_COLUMNS)
    if "target msg/s" in table:  # 0 = a max-rate search: no fixed target
        table["target msg/s"] = table["target msg/s"].where(table["target msg/s"] > 0)
    table = table.merge(_resources(res), on=["workload", "backend"], how="left")
    if "disk_bytes_final" in scalars:
        disk = scalars[["workload", "backend", "disk_bytes_final"]]
        table = table.merge(disk, on=["workload", "backend"], how="left")
        table["disk MB"] = table.pop("disk_bytes_final") / MB
    order = _run_order(res)
    table["_w"] = table.workload.map({w: i for i, w in enumerate(order["workloads"])})
    table["_b"] = table.backend.map({b: i for i, b in enumerate(order["backends"])})
    return table.sort_values(["_w", "_b"]).drop(columns=["_w", "_b"]).reset_index(drop=True)


def _run_order(res: Results) -> dict[str, list[str]]:
    m = res.metrics
    return {
        "workloads": list(dict.fromkeys(m.workload)),
        "backends": list(dict.fromkeys(m.backend)),
    }


def p99_target(res: Results) -> float:
    """Return the run's p99 target in ms (run.json ``p99_target_ms``, else the default)."""
    value = res.meta.get("p99_target_ms")
    if value is None and not res.metrics.empty:
        rows = res.metrics[res.metrics.metric == "p99_target_ms"].value
        value = rows.max() if len(rows) else None
    return float(value) if value is not None else DEFAULT_P99_TARGET_MS


def max_rate_table(res: Results, target_ms: float | None = None) -> pd.DataFrame:
    """Return per backend the maximum sustainable rate with e2e p99 within ``target_ms``.

    Columns: ``backend``, ``p99 target ms``, ``searched max msg/s`` (from workloads with
    ``producerRate: 0``, the median over repeats; NaN when none ran), ``spread msg/s``
    (min-max over the repeats, when the run repeated), ``search ended`` (how the search
    ended, see :mod:`~sqlitequeue.bench.report.capacity`: only a *converged* search's
    figure is the backend's maximum; when the run recorded it), ``highest suite rate
    met`` (the highest mean target rate among fixed-rate workloads whose p99 met the
    target with nothing lost and the consume rate within 5 % of the target; NaN when none
    did).
    """
    import pandas as pd

    target = p99_target(res) if target_ms is None else target_ms
    scalars = res.scalars().reset_index()
    searches = {c.backend: c for c in sorted(search_outcomes(res), key=lambda c: c.median)}
    rows = []
    for backend in _run_order(res)["backends"]:
        mine = scalars[scalars.backend == backend]
        searched = mine.get("max_sustainable_rate", pd.Series(dtype=float)).dropna()
        fixed = mine[mine.get("target_rate", pd.Series(0.0, index=mine.index)) > 0]
        met = fixed[
            (fixed["e2e_latency_ms.p99"] <= target)
            & (fixed.get("lost", 0) == 0)
            & (fixed["consume_rate_mean"] >= 0.95 * fixed["target_rate"])
        ]
        search = searches.get(backend)
        rows.append(
            {
                "backend": backend,
                "p99 target ms": target,
                "searched max msg/s": searched.max() if len(searched) else math.nan,
                "spread msg/s": search.spread if search else "-",
                "search ended": search.ended if search else "",
                "highest suite rate met": met.target_rate.max() if len(met) else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty and (table["spread msg/s"] == "-").all():
        table = table.drop(columns=["spread msg/s"])
    if not table.empty and (table["search ended"] == "").all():
        table = table.drop(columns=["search ended"])
    return table


def format_table(df: pd.DataFrame) -> str:
    """Return ``df`` as an aligned plain-text table (numbers rounded for reading)."""
    if df.empty:
        return "(no results)"
    shown = df.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(_fmt)
    return str(shown.to_string(index=False))


_fmt = format_number


def terminal_summary(
    path: str | os.PathLike[str], *, with_verdict: bool = False, team: Any = None
) -> str:
    """Return the summary and max-sustainable-rate tables of a results folder as text.

    Problems (failed runs with their logs, a self-check not met, quick mode) come first;
    ``with_verdict`` adds the verdict line for ``team`` (see
    :func:`sqlitequeue.bench.report.page.write_report`).
    """
    from sqlitequeue.bench.report.problems import problems, problems_text

    res = load(path)
    parts = problems_text(problems(res))
    if with_verdict:
        from sqlitequeue.bench.report.verdict import team_verdict, verdict_line

        parts.append(verdict_line(team_verdict(res, team)))
    parts += [
        f"results: {res.path}",
        format_table(summary_table(res)),
        "",
        f"max sustainable rate at e2e p99 <= {p99_target(res):g} ms:",
        format_table(max_rate_table(res)),
    ]
    lines = reading(res)
    if lines:
        parts += ["", *(f"- {line}" for line in lines)]
    return "\n".join(parts)


# --- plain-language reading ------------------------------------------------------------


def reading(res: Results) -> list[str]:
    """Return sentences describing the results, every number taken from ``res``."""
    table = summary_table(res)
    if table.empty:
        return ["This run recorded no results."]
    lines: list[str] = []
    for workload, rows in table.groupby("workload", sort=False):
        rows = rows.dropna(subset=["e2e p99 ms"])
        rows = rows[rows["consume msg/s"] > 0]
        if rows.empty:
            continue
        best = rows.loc[rows["e2e p99 ms"].idxmin()]
        worst = rows.loc[rows["e2e p99 ms"].idxmax()]
        text = (
            f"{workload}: lowest end-to-end p99 was {best.backend} ({_fmt(best['e2e p99 ms'])} ms)"
        )
        if worst.backend != best.backend:
            text += f", highest {worst.backend} ({_fmt(worst['e2e p99 ms'])} ms)"
        lines.append(text + "." + _family_sentence(rows))
    lines += _rate_reading(res)
    for row in table.itertuples(index=False):
        lost = getattr(row, "lost", 0) or 0
        if lost > 0:
            lines.append(f"{row.backend} lost {int(lost)} message(s) on {row.workload}.")
    lines += _resource_reading(table)
    return lines


def _family_sentence(rows: pd.DataFrame) -> str:
    """' Best SQLite ... vs best Kafka ...' when both families ran this workload."""
    best = {}
    for family in ("sqlite", "kafka"):
        mine = rows[rows.backend.str.startswith(family)]
        if not mine.empty:
            best[family] = mine.loc[mine["e2e p99 ms"].idxmin()]
    if len(best) < 2:
        return ""
    s, k = best["sqlite"], best["kafka"]
    return (
        f" Best SQLite: {s.backend} p50 {_fmt(s['e2e p50 ms'])} / p99 {_fmt(s['e2e p99 ms'])} ms;"
        f" best Kafka: {k.backend} p50 {_fmt(k['e2e p50 ms'])} / p99 {_fmt(k['e2e p99 ms'])} ms."
    )


def _rate_reading(res: Results) -> list[str]:
    rates = max_rate_table(res)
    searched = rates.dropna(subset=["searched max msg/s"])
    if searched.empty:
        return []
    target = p99_target(res)
    searches = {c.backend: c for c in sorted(search_outcomes(res), key=lambda c: c.median)}
    parts = "; ".join(
        f"{r['backend']} {searches[r['backend']].describe()}"
        if r["backend"] in searches
        else f"{r['backend']} {_fmt(r['searched max msg/s'])} msg/s"
        for _, r in searched.iterrows()
    )
    lines = [f"Highest rate sustained with p99 <= {target:g} ms: {parts}."]
    steps = res.tables.get("rate_steps")
    if steps is not None and not steps.empty:
        for backend in searched[searched["searched max msg/s"] <= 0].backend:
            first = steps[steps.backend == backend].sort_values("step")
            if not first.empty:
                rate, p99 = first.target_rate.iloc[0], first.p99_ms.iloc[0]
                lines.append(
                    f"{backend} missed the p99 target already at the search's first step "
                    f"({_fmt(rate)} msg/s, p99 {_fmt(p99)} ms)."
                )
    check = res.meta.get("selfcheck") or {}
    verified = check.get("achieved")
    if verified:
        above = searched[searched["searched max msg/s"] >= 0.9 * verified].backend.tolist()
        if above:
            lines.append(
                f"{', '.join(above)} reached about the rate the harness itself was verified "
                f"for ({_fmt(verified)} msg/s on the memory backend): there the harness, "
                "not the backend, may be the limit."
            )
    families = [
        mine.loc[mine["searched max msg/s"].idxmax()]
        for family in ("sqlite", "kafka")
        if not (mine := searched[searched.backend.str.startswith(family)]).empty
    ]
    if len(families) < 2:
        return lines
    high, low = sorted(families, key=lambda r: -r["searched max msg/s"])
    low_search, high_search = searches.get(low.backend), searches.get(high.backend)
    if low_search is not None and not low_search.converged:
        return lines  # a lower bound below: no ratio to state
    if low["searched max msg/s"] > 0:
        ratio = high["searched max msg/s"] / low["searched max msg/s"]
        bound = "at least " if high_search is not None and not high_search.converged else ""
        lines.append(
            f"The fastest of each family: {high.backend} sustained {bound}{ratio:.1f}x the "
            f"rate of {low.backend}."
        )
    return lines


def _resource_reading(table: pd.DataFrame) -> list[str]:
    if "rss MB" not in table or table["rss MB"].isna().all():
        return []
    by_backend = table.groupby("backend", sort=False)[["cpu %", "rss MB"]].mean()
    parts = ", ".join(
        f"{b} {_fmt(r['cpu %'])} % CPU / {_fmt(r['rss MB'])} MB" for b, r in by_backend.iterrows()
    )
    return [f"Average CPU (100 % = one core) and peak memory, clients and broker: {parts}."]


# --- charts ----------------------------------------------------------------------------


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, max(1, n))
    return math.ceil(n / cols), cols


def _series_chart(res: Results, metrics: list[tuple[str, str]], ylabel: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    order = _run_order(res)
    rows, cols = _grid(len(order["workloads"]))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    colors = _colors(order["backends"])
    for ax, workload in zip(axes.flat, order["workloads"], strict=False):
        for metric, style in metrics:
            s = res.series(metric)
            s = s[s.workload == workload]
            for backend, g in s.groupby("backend", sort=False):
                label = backend if style == "-" else None
                ax.plot(g.t, g.value, style, color=colors[backend], label=label, lw=1.2)
        ax.set_title(workload, fontsize=10)
        ax.set_xlabel("seconds")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(order["workloads"]) :]:
        ax.set_visible(False)
    _legend(fig, axes)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _colors(backends: list[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {b: cycle[i % len(cycle)] for i, b in enumerate(backends)}


def _legend(fig: Any, axes: Any) -> None:
    handles, labels = [], []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=False):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    if handles:  # one row above the panels, so it never covers a line
        fig.legend(
            handles,
            labels,
            loc="upper center",
            ncol=min(len(labels), 6),
            fontsize=11,
            frameon=False,
        )


def _latency_vs_rate(res: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    order = _run_order(res)
    colors = _colors(order["backends"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    scalars = res.scalars().reset_index()
    steps = res.tables.get("rate_steps")
    for backend in order["backends"]:
        color = colors[backend]
        mine = scalars[scalars.backend == backend]
        if "e2e_latency_ms.p99" in mine:  # fixed-rate workloads: one square each
            fixed = mine[(mine.get("target_rate", 0) > 0) & (mine["e2e_latency_ms.p99"] > 0)]
            ax.plot(
                fixed.consume_rate_mean,
                fixed["e2e_latency_ms.p99"],
                "s",
                color=color,
                ms=5,
                label=f"{backend} (workloads)",
            )
        if steps is not None and not steps.empty:  # a max-rate search: a line of steps
            s = steps[(steps.backend == backend) & (steps.achieved_rate > 0) & (steps.p99_ms > 0)]
            ax.plot(
                s.achieved_rate,
                s.p99_ms,
                "o-",
                color=color,
                ms=4,
                lw=1,
                label=f"{backend} (max-rate steps)",
            )
    ax.axhline(p99_target(res), color="grey", ls="--", lw=1, label="p99 target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("achieved rate (msg/s)")
    ax.set_ylabel("end-to-end p99 (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latency_cdf(res: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    hist = res.tables.get("latency_hist")
    order = _run_order(res)
    rows, cols = _grid(len(order["workloads"]))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    colors = _colors(order["backends"])
    for ax, workload in zip(axes.flat, order["workloads"], strict=False):
        if hist is not None and not hist.empty:
            h = hist[(hist.workload == workload) & (hist.kind == "e2e")]
            for backend, g in h.groupby("backend", sort=False):
                g = g.sort_values("upper_ms")
                cdf = g["count"].cumsum() / g["count"].sum()
                ax.step(
                    g.upper_ms.clip(lower=0.001),
                    cdf,
                    where="post",
                    color=colors[backend],
                    label=backend,
                    lw=1.2,
                )
        ax.set_xscale("log")
        ax.set_title(workload, fontsize=10)
        ax.set_xlabel("end-to-end latency (ms)")
        ax.set_ylabel("fraction of messages")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(order["workloads"]) :]:
        ax.set_visible(False)
    _legend(fig, axes)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _resources_chart(res: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    df = res.metrics[res.metrics.t.notna()]
    order = _run_order(res)["backends"]
    fig, (ax_cpu, ax_mem) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, prefix, scale, label in (
        (ax_cpu, "cpu_percent.", 1.0, "mean CPU % (100 = one core)"),
        (ax_mem, "rss_bytes.", 1 / MB, "peak resident memory (MB)"),
    ):
        sub = df[df.metric.str.startswith(prefix)].copy()
        sub["group"] = sub.metric.str[len(prefix) :]
        agg = "mean" if prefix.startswith("cpu") else "max"
        per_run = sub.groupby(["backend", "workload", "group"]).value.agg(agg)
        table = per_run.groupby(["backend", "group"]).mean().unstack(fill_value=0) * scale
        table = table.reindex([b for b in order if b in table.index])
        if not table.empty:
            table.plot.bar(stacked=True, ax=ax, rot=20)
        ax.set_ylabel(label)
        ax.set_xlabel("")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_charts(res: Results, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the PNG charts of :data:`CHARTS` into ``out_dir``; return name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.png" for name in CHARTS}
    _series_chart(
        res,
        [("publish_rate", "-"), ("consume_rate", "--")],
        "msg/s (dashed: consume)",
        paths["throughput"],
    )
    _latency_vs_rate(res, paths["latency_vs_rate"])
    _latency_cdf(res, paths["latency_cdf"])
    _series_chart(res, [("backlog", "-")], "messages", paths["backlog"])
    _resources_chart(res, paths["resources"])
    return paths


# --- HTML ------------------------------------------------------------------------------
