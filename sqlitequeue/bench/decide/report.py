"""The decision as text and pictures: summary, markdown, HTML fragment, JSON, criteria chart.

:func:`write_report` writes ``decision-<profile>.md``, ``.html`` (a fragment) and ``.json``
into a results folder; :func:`summary_text` is the plain-language reading; :func:`plot_criteria`
charts each numeric criterion's margin.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlitequeue.bench import cost
from sqlitequeue.bench.decide.criteria import FAIL, PASS, UNKNOWN, fmt, times

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sqlitequeue.bench.decide.verdict import Decision


def summary_text(decision: Decision) -> str:
    """Return a plain-language reading of the decision, computed from its criteria and costs."""
    hard = [c for c in decision.criteria if c.hard]
    failed = [c.title for c in hard if c.status == FAIL]
    unknown = [c.title for c in hard if c.status == UNKNOWN]
    name = decision.profile.name
    if failed:
        lines = [
            f"For profile '{name}': {decision.verdict}. {len(failed)} of {len(hard)} hard "
            f"criteria fail: {'; '.join(failed)}."
        ]
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
            f"{fmt(tight.measured or 0)} {tight.unit} against {fmt(tight.threshold or 0)} "
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

    Bars right of 1 pass with that much room; left of 1 fail. Criteria without numbers
    (writers, regions, ecosystem, team) are listed in the title instead.
    """
    from matplotlib.figure import Figure

    numeric = [c for c in decision.criteria if c.margin is not None]
    fig = Figure(figsize=(8, 0.5 * max(len(numeric), 1) + 1.8))
    ax = fig.subplots()
    colours = {PASS: "tab:green", FAIL: "tab:red", UNKNOWN: "tab:grey"}
    for y, c in enumerate(numeric):
        margin = min(c.margin or 1.0, 1000.0)
        ax.barh(y, margin, left=0, color=colours[c.status])
        ax.text(
            margin,
            y,
            f" {fmt(c.measured or 0)} vs {fmt(c.threshold or 0)} {c.unit}",
            va="center",
            fontsize=8,
        )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(numeric)), [c.title.split(":")[0] for c in numeric])
    ax.invert_yaxis()
    ax.set_xlabel("margin (x): > 1 passes, < 1 fails")
    others = ", ".join(f"{c.key} {c.status}" for c in decision.criteria if c.margin is None)
    ax.set_title(f"{decision.profile.name}: {decision.verdict}\n{others}", fontsize=9)
    fig.tight_layout()
    return fig


_MARK = {PASS: "pass", FAIL: "FAIL", UNKNOWN: "unknown"}


def render_markdown(decision: Decision) -> str:
    """Return the decision as a markdown report section."""
    p = decision.profile
    lines = [
        f"## Decision for profile `{p.name}`: **{decision.verdict}**",
        "",
        f"{p.description}".strip(),
        "",
        summary_text(decision),
        "",
        "| criterion | kind | status | evidence | headroom |",
        "|---|---|---|---|---|",
    ]
    for c in decision.criteria:
        kind = "hard" if c.hard else "soft"
        lines.append(
            f"| {c.title} | {kind} | {_MARK[c.status]} | {c.evidence.replace('|', '/')} "
            f"| {c.headroom} |"
        )
    lines += ["", "**What would change it**", ""]
    lines += [f"- {line}" for line in decision.changes] or ["- nothing found"]
    lines += [
        "",
        "**Monthly cost projection**",
        "",
        "```",
        cost.format_table(decision.projections),
        "```",
    ]
    lines += ["", "**Assumptions**", ""] + [f"- {a}" for a in decision.assumptions]
    lines += ["", "**Sources**: " + (", ".join(f"`{s}`" for s in decision.sources) or "none")]
    return "\n".join(line for line in lines if line is not None) + "\n"


def render_html(decision: Decision) -> str:
    """Return the decision as an HTML fragment (no <html>/<body>), escaped."""
    e = html.escape
    p = decision.profile
    rows = "".join(
        f"<tr class='{c.status}'><td>{e(c.title)}</td><td>{'hard' if c.hard else 'soft'}</td>"
        f"<td>{e(_MARK[c.status])}</td><td>{e(c.evidence)}</td><td>{e(c.headroom)}</td></tr>"
        for c in decision.criteria
    )
    costs = "".join(
        f"<tr><td>{e(x.label)}</td><td>${x.total:,.2f}</td></tr>" for x in decision.projections
    )
    changes = "".join(f"<li>{e(x)}</li>" for x in decision.changes)
    assumptions = "".join(f"<li>{e(x)}</li>" for x in decision.assumptions)
    sources = ", ".join(f"<code>{e(s)}</code>" for s in decision.sources) or "none"
    return (
        f"<section class='decision'><h2>Decision for profile <code>{e(p.name)}</code>: "
        f"<strong>{e(decision.verdict)}</strong></h2><p>{e(p.description)}</p>"
        f"<p>{e(summary_text(decision))}</p>"
        "<table><thead><tr><th>criterion</th><th>kind</th><th>status</th><th>evidence</th>"
        f"<th>headroom</th></tr></thead><tbody>{rows}</tbody></table>"
        f"<h3>What would change it</h3><ul>{changes}</ul>"
        "<h3>Monthly cost projection</h3><table><thead><tr><th>architecture</th>"
        f"<th>USD/month</th></tr></thead><tbody>{costs}</tbody></table>"
        f"<h3>Assumptions</h3><ul>{assumptions}</ul><p>Sources: {sources}</p></section>\n"
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
    paths[2].write_text(json.dumps(decision.to_dict(), indent=2, default=str) + "\n")
    return paths
