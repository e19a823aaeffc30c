"""The decision as text and pictures: summary, markdown, HTML fragments, JSON, criteria chart.

Every render function returns a self-contained fragment that another report can embed:

* :func:`render_verdict_markdown` / :func:`render_verdict_html`: the verdict, its reading,
  each criterion with SQLite's and Kafka's figures side by side, and what would change it;
* :func:`render_markdown` / :func:`render_html`: that, plus the monthly bill, the
  assumptions and the runs used (the HTML carries its own scoped ``<style>``, no scripts);
* :func:`summary_text`: the plain-language reading; :func:`plot_criteria`: each numeric
  criterion's margin, SQLite's bar with Kafka's mark.

:func:`write_report` writes ``decision-<profile>.md``, ``.html`` and ``.json`` (see
:meth:`~sqlitequeue.bench.decide.verdict.Decision.to_dict`) into a results folder.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.criteria import FAIL, PASS, UNKNOWN, Criterion, fmt, times
from sqlitequeue.bench.report.formatting import inline_html

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sqlitequeue.bench.decide.verdict import Decision


def summary_text(decision: Decision) -> str:
    """Return a plain-language reading of the decision, computed from its criteria and costs."""
    hard = [c for c in decision.criteria if c.hard]
    failed = [c for c in hard if c.status == FAIL]
    unknown = [c.title for c in hard if c.status == UNKNOWN]
    name = decision.profile.name
    if failed:
        lines = [
            f"For profile '{name}': {decision.verdict}. {len(failed)} of {len(hard)} hard "
            f"criteria fail: {'; '.join(c.title for c in failed)}."
        ]
        both = [c.title for c in failed if c.kafka_status == FAIL]
        if both:
            lines.append(
                f"Kafka, measured in the same runs, fails {'this' if len(both) == 1 else 'these'}"
                f" too: {'; '.join(both)}."
            )
    elif unknown:
        lines = [
            f"For profile '{name}': {decision.verdict}. Nothing fails, but {len(unknown)} hard "
            f"criteria lack measurements: {'; '.join(unknown)}."
        ]
    else:
        lines = [f"For profile '{name}': {decision.verdict}. All {len(hard)} hard criteria pass."]
    numeric = [c for c in hard if c.status == PASS and c.margin is not None]
    if numeric:
        tight = min(numeric, key=lambda c: c.margin or math.inf)
        margin = (
            "no measured loss or delay" if tight.margin == math.inf else times(tight.margin or 0)
        )
        lines.append(
            f"The tightest passing criterion is '{tight.title}': measured "
            f"{fmt(tight.measured)} {tight.unit} against {fmt(tight.threshold)} "
            f"{tight.unit} ({margin}); it flips with {tight.would_change}."
        )
    cost_c = next((c for c in decision.criteria if c.key == "cost"), None)
    if cost_c is not None:
        lines.append(f"Cost: {cost_c.evidence} ({cost_c.headroom}).")
    soft = [c.title for c in decision.criteria if not c.hard and c.status == FAIL]
    if soft and not failed:
        lines.append(f"Caveats (soft criteria that do not hold): {'; '.join(soft)}.")
    return " ".join(lines)


def plot_criteria(decision: Decision) -> Figure:
    """Bar chart of each numeric criterion's margin (log scale; 1 = the threshold).

    Bars are SQLite's: right of 1 pass with that much room, left of 1 fail. A black diamond
    marks Kafka's margin from the same runs against the same threshold. Criteria without
    numbers (writers, regions, ecosystem, team) are listed in the title instead.
    """
    from matplotlib.figure import Figure

    numeric = [c for c in decision.criteria if c.margin is not None]
    fig = Figure(figsize=(8, 0.5 * max(len(numeric), 1) + 1.8))
    ax = fig.subplots()
    colours = {PASS: "tab:green", FAIL: "tab:red", UNKNOWN: "tab:grey"}
    for y, c in enumerate(numeric):
        margin = min(c.margin or 1.0, 1000.0)
        ax.barh(y, margin, left=0, color=colours[c.status])
        label = f" {fmt(c.measured)} vs {fmt(c.threshold)} {c.unit}"
        if c.kafka_margin is not None and c.key != "cost":
            ax.plot(min(c.kafka_margin, 1000.0), y, "kD", markersize=5)
            label += f" (Kafka {fmt(c.kafka_measured)})"
        ax.text(margin, y, label, va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(numeric)), [c.title.split(":")[0] for c in numeric])
    ax.invert_yaxis()
    ax.set_xlabel("margin (x): > 1 passes, < 1 fails; bars SQLite, diamonds Kafka")
    others = ", ".join(f"{c.key} {c.status}" for c in decision.criteria if c.margin is None)
    ax.set_title(f"{decision.profile.name}: {decision.verdict}\n{others}", fontsize=9)
    fig.tight_layout()
    return fig


_MARK = {PASS: "pass", FAIL: "FAIL", UNKNOWN: "unknown", "": ""}


def kafka_cell(c: Criterion) -> str:
    """Kafka's side of a criterion as one line: "FAIL: worst 13.2 s ..." ("" when none)."""
    if not c.kafka_evidence:
        return ""
    return f"{_MARK[c.kafka_status]}: {c.kafka_evidence}" if c.kafka_status else c.kafka_evidence


def _runs_text(decision: Decision) -> list[str]:
    if not decision.runs:
        return list(decision.sources)
    return [
        f"{r['path']} ({r['kind']}{', quick' if r.get('quick') else ''}, created "
        f"{r.get('created') or 'at an unknown time'})"
        for r in decision.runs
    ]


def render_verdict_markdown(decision: Decision) -> str:
    """Return the verdict section as markdown: verdict, reading, criteria, what would change it."""
    p = decision.profile
    lines = [
        f"## Decision for profile `{p.name}`: **{decision.verdict}**",
        "",
        p.description.strip(),
        "",
        summary_text(decision),
        "",
        "| criterion | kind | status | SQLite | Kafka, same runs | headroom |",
        "|---|---|---|---|---|---|",
    ]
    for c in decision.criteria:
        cells = [
            c.title,
            "hard" if c.hard else "soft",
            _MARK[c.status],
            c.evidence,
            kafka_cell(c),
            c.headroom,
        ]
        lines.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    lines += ["", "**What would change it**", ""]
    lines += [f"- {line}" for line in decision.changes] or ["- nothing found"]
    return "\n".join(lines) + "\n"


def render_markdown(decision: Decision) -> str:
    """Return the whole decision as a markdown section (verdict, bill, assumptions, runs)."""
    lines = [
        render_verdict_markdown(decision),
        "**Monthly cost projection**",
        "",
        "```",
        cost.format_table(decision.projections),
        "```",
        "",
        "**Assumptions**",
        "",
        *[f"- {a}" for a in decision.assumptions],
        "",
        "**Runs used**: " + ("; ".join(f"`{r}`" for r in _runs_text(decision)) or "none"),
    ]
    return "\n".join(lines) + "\n"


#: scoped to the fragment's own section, so an embedding page keeps its look
_STYLE = (
    "<style>"
    ".decision{font-family:system-ui,sans-serif;max-width:72em}"
    ".decision table{border-collapse:collapse;margin:0.5em 0}"
    ".decision th,.decision td{border:1px solid #ccc;padding:0.3em 0.5em;text-align:left;"
    "vertical-align:top;font-size:0.9em}"
    ".decision th{background:#f3f3f3}"
    ".decision .s-pass{color:#17692b;font-weight:600}"
    ".decision .s-fail{color:#b3261e;font-weight:600}"
    ".decision .s-unknown{color:#6b6b6b;font-weight:600}"
    ".decision .verdict{font-size:1.2em}"
    "</style>"
)


def _status_html(status: str) -> str:
    return f"<span class='s-{status}'>{html.escape(_MARK[status])}</span>" if status else ""


def render_verdict_html(decision: Decision) -> str:
    """Return the verdict section as an escaped HTML fragment (a ``<section>``, no scripts).

    It holds the verdict, the reading, each criterion with SQLite's and Kafka's figures side
    by side, and what would change it; its ``<style>`` applies inside it only.
    """
    e = html.escape
    p = decision.profile
    rows = "".join(
        f"<tr class='{c.status}'><td>{e(c.title)}</td><td>{'hard' if c.hard else 'soft'}</td>"
        f"<td>{_status_html(c.status)}: {inline_html(c.evidence)}</td>"
        f"<td>{_status_html(c.kafka_status)}{': ' if c.kafka_status else ''}"
        f"{inline_html(c.kafka_evidence)}</td><td>{e(c.headroom)}</td></tr>"
        for c in decision.criteria
    )
    changes = "".join(f"<li>{inline_html(x)}</li>" for x in decision.changes)
    changes = changes or "<li>nothing found</li>"
    return (
        f"<section class='decision verdict-section'>{_STYLE}"
        f"<h2>Decision for profile <code>{e(p.name)}</code>: "
        f"<strong class='verdict'>{e(decision.verdict)}</strong></h2><p>{e(p.description)}</p>"
        f"<p>{inline_html(summary_text(decision))}</p>"
        "<table><thead><tr><th>criterion</th><th>kind</th><th>SQLite, measured</th>"
        "<th>Kafka, same runs</th><th>SQLite's headroom</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<h3>What would change it</h3><ul>{changes}</ul></section>\n"
    )


def render_html(decision: Decision) -> str:
    """Return the whole decision as an HTML fragment (no <html>/<body>), escaped.

    The verdict section (:func:`render_verdict_html`), then the bill, assumptions and runs.
    """
    e = html.escape
    costs = "".join(
        f"<tr><td>{e(x.label)}</td><td>${x.total:,.2f}</td></tr>" for x in decision.projections
    )
    assumptions = "".join(f"<li>{e(x)}</li>" for x in decision.assumptions)
    runs = "".join(f"<li><code>{e(r)}</code></li>" for r in _runs_text(decision))
    return (
        f"<section class='decision'>{render_verdict_html(decision)}"
        "<h3>Monthly cost projection</h3><table><thead><tr><th>architecture</th>"
        f"<th>USD/month</th></tr></thead><tbody>{costs}</tbody></table>"
        f"<h3>Assumptions</h3><ul>{assumptions}</ul>"
        f"<h3>Runs used</h3><ul>{runs or '<li>none</li>'}</ul></section>\n"
    )


def write_report(decision: Decision, folder: str | os.PathLike[str]) -> list[Path]:
    """Write ``decision-<profile>.md``, ``.html`` and ``.json`` into ``folder``.

    Returns the three paths; overwrites an earlier decision for the same profile.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"decision-{decision.profile.name}"
    paths = [stem.with_suffix(".md"), stem.with_suffix(".html"), stem.with_suffix(".json")]
    paths[0].write_text(render_markdown(decision))
    paths[1].write_text(render_html(decision))
    paths[2].write_text(json.dumps(decision.to_dict(), indent=2, allow_nan=False) + "\n")
    return paths
