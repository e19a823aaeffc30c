"""The report: one self-contained HTML file per results folder, the verdict first.

:func:`write_report` writes ``<folder>/report/index.html`` (and the charts as PNG files
beside it, for notebooks and docs). The page needs nothing else: its CSS is inline and its
charts are embedded as ``data:`` URIs, so it reads offline and can be attached to an email.
From the top:

1. the verdict for a team profile (:mod:`~sqlitequeue.bench.report.verdict`): the
   verdict, each criterion with SQLite's and Kafka's figures side by side, the headroom,
   what would change it, and which failure-lab run it used (or what is unknown without one);
2. problems in a red box (:mod:`~sqlitequeue.bench.report.problems`): failed runs with
   their logs, a self-check not met, quick mode;
3. the seed article's latency claim, and where each system sits;
4. the reading, then each chart with one line on what it shows and which way is better;
5. the tables, the run's notes, and what ran where.

Every number is rounded, with its unit; a missing one reads "-". Reads results files only.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.report import workloads as w
from sqlitequeue.bench.report.formatting import format_number
from sqlitequeue.bench.report.problems import problems, problems_html
from sqlitequeue.bench.report.seed_claim import seed_claim_lines
from sqlitequeue.bench.report.verdict import team_verdict, verdict_html
from sqlitequeue.bench.results import Results, load

if TYPE_CHECKING:
    import pandas as pd

    from sqlitequeue.bench.decide.team_profile import Profile

#: chart name -> one line: what it shows and which way is better
CAPTIONS = {
    "throughput": "Messages per second published (solid) and consumed (dashed) during each "
    "run. Better: the consume line on top of the publish line, at the target rate.",
    "latency_vs_rate": "End-to-end p99 latency at each achieved rate (squares: fixed-rate "
    "workloads; lines: the max-rate search's steps). Better: lower and further right; "
    "the dashed line is the p99 target.",
    "latency_cdf": "Share of messages delivered within a given end-to-end latency. Better: "
    "a curve further left (faster) and steeper (steadier).",
    "backlog": "Messages published but not yet consumed. Better: lower; a line that keeps "
    "rising means the consumers fall behind.",
    "resources": "Mean CPU (100 % = one core) and peak memory of clients and broker, averaged "
    "over the workloads. Better: lower, for the same work.",
}

#: table name -> one line: how to read it
TABLE_CAPTIONS = {
    "max_rate": "The highest rate whose end-to-end p99 met the target, from the max-rate "
    "search (median over repeats; spread = lowest-highest). Higher is better. Only a "
    "'converged' search's figure is the backend's maximum: at the 'harness ceiling' it is "
    "higher, and when the 'budget ended before convergence' the figure is a lower bound.",
    "summary": "Medians over the repeats. Latencies are from each message's scheduled send "
    "time; cpu % and rss MB add up clients and broker (100 % = one core). Lower latency, "
    "CPU and memory are better; lost, dups, errors and unsent should be 0.",
}

STYLE = (
    "<style>"
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1240px;"
    "margin:1em auto;padding:0 1em;color:#222;line-height:1.35}"
    "h1{font-size:1.4em;margin:0 0 0.1em}h2{font-size:1.2em;margin-top:1.6em}"
    "p.meta{color:#555;margin-top:0;font-size:0.9em}a.warn{color:#b3261e;font-weight:600}"
    ".verdict-box{border-left:6px solid #888;background:#fafafa;padding:0.1em 1em 0.4em}"
    ".verdict-box.fits{border-color:#17692b}.verdict-box.stay{border-color:#b3261e}"
    ".verdict-box h2{margin:0.4em 0 0.2em}.verdict-box p.evidence{color:#444;font-size:0.9em}"
    ".verdict-box section>p:first-of-type{color:#555;font-size:0.9em;margin:0}"
    ".verdict-box section>p{margin:0.4em 0;font-size:0.95em}.verdict-box .decision{max-width:none}"
    ".verdict-box .decision table{width:100%}"
    ".verdict-box .decision td,.verdict-box .decision th{font-size:13px;padding:2px 6px;"
    "line-height:1.3}"
    ".verdict-box .decision td:first-child{width:17%;font-weight:600}"
    ".verdict-box .decision td:nth-child(3),.verdict-box .decision td:nth-child(4){width:33%}"
    ".verdict-box .decision tr.fail td:first-child{color:#b3261e}"
    ".verdict-box h3{font-size:1em;margin:0.5em 0 0.1em}.verdict-box ul{margin:0.2em 0}"
    ".problems{border:2px solid #b3261e;background:#fdecea;padding:0.1em 1em;margin:1em 0}"
    ".problems h2{color:#b3261e;margin-top:0.4em}.problems li{margin:0.2em 0}"
    ".scroll{overflow-x:auto}"
    "table.t{border-collapse:collapse;font-size:13px;margin:0.5em 0}"
    "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
    "table.t th{vertical-align:bottom}"
    "table.t td.l,table.t th.l{text-align:left}table.t td.l{white-space:nowrap}"
    "details{margin:0.2em 0}summary{cursor:pointer;color:#444}"
    "figure{margin:1em 0 2em}figcaption,p.how{color:#444;margin:0.3em 0 0.6em}"
    "img{max-width:100%}dt{font-weight:bold}dd{margin:0 0 0.5em 1.5em}"
    "code{background:#f0f0f0;padding:0 0.2em}"
    "</style>"
)


def write_report(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    team: str | os.PathLike[str] | Mapping[str, Any] | Profile | None = None,
) -> Path:
    """Write the report of the results folder ``path``; return the ``index.html`` path.

    ``team`` is the team profile the verdict is for (a YAML path, a mapping or a Profile;
    default: :data:`~sqlitequeue.bench.report.verdict.DEFAULT_TEAM`, the seed article's).
    ``out_dir`` defaults to ``<path>/report``; the PNG charts are written there too.
    Raises BenchError if ``path`` is not a results folder, ProfileError for a bad profile.
    """
    res = load(path)
    verdict = team_verdict(res, team)
    out = Path(out_dir) if out_dir is not None else res.path / "report"
    charts = w.write_charts(res, out)
    index = out / "index.html"
    index.write_text(page_html(res, verdict_html(verdict), charts))
    return index


def page_html(res: Results, verdict: str, charts: Mapping[str, Path]) -> str:
    """The whole page: ``verdict`` (an HTML section) first, then the rest (module docstring)."""
    e = html.escape
    found = problems(res)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>SQLite vs Kafka: {e(res.path.name)}</title>{STYLE}</head><body>",
        f"<h1>Can one SQLite file replace Kafka? Run {e(res.path.name)}</h1>",
        f"<p class='meta'>{e(_subtitle(res))}{_problems_link(found)}</p>",
        verdict,
        problems_html(found),
        *_list_section("The seed article's latency claim", seed_claim_lines(res)),
        *_list_section("Where each system sits", _placement_lines(res)),
        *_list_section("Reading", w.reading(res)),
    ]
    for name, title in w.CHARTS.items():
        parts.append(
            f"<figure><h2>{e(title)}</h2><figcaption>{e(CAPTIONS[name])}</figcaption>"
            f"<img src='{_data_uri(charts[name])}' alt='{e(title)}'></figure>"
        )
    parts += [
        f"<h2>Maximum sustainable rate (e2e p99 &le; {w.p99_target(res):g} ms)</h2>",
        f"<p class='how'>{e(TABLE_CAPTIONS['max_rate'])}</p>",
        _html_table(w.max_rate_table(res)),
        "<h2>Summary, one row per workload and backend</h2>",
        f"<p class='how'>{e(TABLE_CAPTIONS['summary'])}</p>",
        _html_table(w.summary_table(res)),
        *_notes_html(res),
        "<h2>What ran where</h2><dl>",
        *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _facts(res)),
        _kafka_facts(res),
        "</dl></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _problems_link(found: list[Any]) -> str:
    """ " · 2 problems: failed run, quick mode (below the verdict)", linked; "" if none."""
    if not found:
        return ""
    titles = ", ".join(dict.fromkeys(p.title for p in found))
    return (
        f" · <a class='warn' href='#problems'>{len(found)} problem(s): {html.escape(titles)}"
        "</a> (below the verdict)"
    )


def _when(created: Any) -> str:
    """ "2026-12-06 19:44 UTC" from run.json's ISO time stamp."""
    text = str(created or "")
    return text[:16].replace("T", " ") + " UTC" if text.endswith("+00:00") else text


def _subtitle(res: Results) -> str:
    m = res.meta
    mode = "quick mode (indicative)" if m.get("suite") == "quick" or m.get("quick") else ""
    when = _when(m.get("created"))
    bits = [f"created {when}" if when else "", mode, f"folder {res.path}"]
    return " · ".join(b for b in bits if b)


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _html_table(df: pd.DataFrame) -> str:
    """``df`` as a table, numbers rounded and right-aligned, text columns left-aligned; it
    scrolls sideways rather than overflow a narrow window."""
    if df.empty:
        return "<p>(no results)</p>"
    e = html.escape
    text = [df[col].dtype.kind not in "fiub" for col in df.columns]
    left = [" class='l'" if t else "" for t in text]
    head = "".join(f"<th{a}>{e(str(c))}</th>" for c, a in zip(df.columns, left, strict=True))
    rows = "".join(
        "<tr>"
        + "".join(f"<td{a}>{e(format_number(v))}</td>" for v, a in zip(row, left, strict=True))
        + "</tr>"
        for row in df.itertuples(index=False)
    )
    return (
        f"<div class='scroll'><table class='t'><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )


def _list_section(title: str, lines: list[str]) -> list[str]:
    """An ``<h2>`` and a bulleted list; nothing when there are no lines."""
    if not lines:
        return []
    items = (f"<li>{html.escape(line)}</li>" for line in lines)
    return [f"<h2>{html.escape(title)}</h2><ul>", *items, "</ul>"]


def _placement_lines(res: Results) -> list[str]:
    """One line per backend: where its producers, consumers and storage sit."""
    placement = res.meta.get("placement") or {}
    return [f"{backend}: {where}" for backend, where in placement.items()]


def _notes_html(res: Results) -> list[str]:
    notes = dict(res.meta.get("notes") or {})
    if not notes:
        return []
    out = ["<h2>Notes</h2><ul>"]
    for where, items in notes.items():
        for item in items if isinstance(items, list) else [items]:
            out.append(f"<li><b>{html.escape(str(where))}</b>: {html.escape(str(item))}</li>")
    out.append("</ul>")
    return out


def _plain(value: Any) -> str:
    """A run.json value as text: mappings as "k=v, ...", lists joined, floats rounded."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " / ".join(_plain(v) for v in value)
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def _facts(res: Results) -> list[tuple[str, str]]:
    m = res.meta
    host = m.get("host", {})
    facts = [
        ("run", str(m.get("run_id", res.path.name))),
        ("created", _when(m.get("created"))),
        ("command", " ".join(map(str, m.get("command", [])))),
        ("git commit", str(m.get("git_commit"))),
        (
            "machine",
            f"{host.get('os', '')}, {host.get('cpu_count', '?')} CPUs, "
            f"{(host.get('memory_bytes') or 0) / 1024**3:.0f} GiB",
        ),
        ("versions", ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())),
    ]
    if m.get("load_average_at_start") is not None:
        start, end = m["load_average_at_start"], m.get("load_average_at_end") or "-"
        facts.append(
            (
                "load average (1 / 5 / 15 min)",
                f"at start {_plain(start)}, at end {_plain(end)} (above the CPU "
                "count means other work shared the machine)",
            )
        )
    selfcheck = m.get("selfcheck") or {}
    if selfcheck.get("text"):
        facts.append(("harness self-check", str(selfcheck["text"])))
    return facts


def _kafka_facts(res: Results) -> str:
    """The Kafka run.json entry: short fields inline, long ones (broker settings) folded."""
    kafka = {k: v for k, v in (res.meta.get("kafka") or {}).items() if v not in ({}, [], "")}
    if not kafka:
        return "<dt>Kafka</dt><dd>not used</dd>"
    e = html.escape
    short = {k: v for k, v in kafka.items() if not isinstance(v, Mapping)}
    long = {k: v for k, v in kafka.items() if isinstance(v, Mapping)}
    folded = "".join(
        f"<details><summary>{e(str(k))} ({len(v)})</summary><code>{e(_plain(v))}</code></details>"
        for k, v in long.items()
    )
    inline = "; ".join(f"{k}: {_plain(v)}" for k, v in short.items())
    return f"<dt>Kafka</dt><dd>{e(inline)}{folded}</dd>"
