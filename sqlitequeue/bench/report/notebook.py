"""What the notebooks show: each one's answer, and Markdown, tables and charts to show it.

The notebooks stay short: their first code cell is one call here that returns the answer
as Markdown, read from a results folder (the committed reference run by default), and
their details use :func:`show`, :func:`show_table` and :func:`show_chart`. Every number
goes through :func:`~sqlitequeue.bench.report.formatting.format_number`, so no raw value
(``6930.833333``, ``NaN``) reaches an output. Reads results files only; needs the
``notebooks`` extra (IPython) only to display.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlitequeue.bench.report.capacity import Capacity, search_outcomes
from sqlitequeue.bench.report.formatting import format_number, markdown_table
from sqlitequeue.bench.results import Results, load

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: the backend families the answer sets side by side
FAMILIES = (("sqlite", "SQLite"), ("kafka", "Kafka"))


def show(text: str) -> None:
    """Display ``text`` as Markdown (its plain-text form is the same text)."""
    from IPython.display import display

    display({"text/markdown": text, "text/plain": text}, raw=True)


def show_table(df: pd.DataFrame) -> None:
    """Display ``df`` as a Markdown table, numbers rounded, missing values as "-"."""
    show(markdown_table(df))


def show_chart(chart: Figure | str | os.PathLike[str], caption: str) -> None:
    """Display one line (``caption``: what the chart shows, which way is better), then the
    chart: a matplotlib Figure (closed afterwards) or a PNG file."""
    from IPython.display import display

    if isinstance(chart, (str, os.PathLike)):
        png = Path(chart).read_bytes()
    else:
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        chart.savefig(
            buffer, format="png", dpi=80, bbox_inches="tight", metadata={"Software": None}
        )
        plt.close(chart)
        png = buffer.getvalue()
    show(f"*{caption}*")
    display({"image/png": base64.b64encode(png).decode(), "text/plain": caption}, raw=True)


def run_facts(res: Results) -> str:
    """ "run `reference` (2026-11-28 13:57 UTC), 2 CPUs, SQLite 3.45, Kafka 4.1.1"."""
    meta = res.meta
    kafka = meta.get("kafka") or {}
    quick = meta.get("suite") == "quick" or meta.get("quick")
    when = str(meta.get("created", "?"))[:16].replace("T", " ")
    facts = [
        f"run `{meta.get('run_id', res.path.name)}` ({when} UTC)",
        f"{(meta.get('host') or {}).get('cpu_count', '?')} CPUs",
        f"SQLite {(meta.get('versions') or {}).get('sqlite', '?')}",
        f"Kafka {kafka['version']}" if isinstance(kafka, dict) and kafka.get("version") else "",
        "quick mode: indicative figures" if quick else "",
    ]
    return ", ".join(f for f in facts if f)


# --- 01: throughput and latency --------------------------------------------------------


def throughput_answer(path: str | os.PathLike[str], team: Any = None) -> str:
    """Notebook 01's answer for the compare run at ``path``, as Markdown: the verdict for
    ``team`` (default: the seed article's), the latency on the seed's workload, each
    family's capacity (with its spread, and a lower bound named as one), losses, failures.
    """
    from sqlitequeue.bench.report import workloads as w
    from sqlitequeue.bench.report.seed_claim import seed_claim_lines
    from sqlitequeue.bench.report.verdict import team_verdict

    res = load(path)
    lines = []
    verdict = team_verdict(res, team)
    if verdict.decision is not None:
        d = verdict.decision
        hard = [c for c in d.criteria if c.hard]
        passed = sum(c.status == "pass" for c in hard)
        lines.append(
            f"**Verdict for team profile `{d.profile.name}`: {d.verdict}** ({passed} of "
            f"{len(hard)} hard criteria pass; every criterion, SQLite beside Kafka, in "
            "notebook 04 and the report)."
        )
    claims = [line.replace(" ()", "") for line in seed_claim_lines(res)]
    if claims:
        lines.append(
            "**Latency on the seed article's workload** (its claim: 40-50 ms on Kafka, under "
            "1 ms on SQLite):" + "".join(f"\n  - {c}" for c in claims)
        )
    target = w.p99_target(res)
    for family, name in FAMILIES:
        best = _best(search_outcomes(res), family)
        if best is not None:
            lines.append(
                f"**Capacity, {name}** (max-rate search, end-to-end p99 <= {target:g} ms): "
                f"{best.backend} {best.describe()}."
            )
    lines.append(_loss_line(w.summary_table(res)))
    failures = res.meta.get("failures") or []
    if failures:
        lines.append(f"**{len(failures)} run(s) FAILED:** " + _grouped_failures(failures))
    return "\n".join(f"- {line}" for line in lines) + f"\n\nFrom {run_facts(res)}."


def _grouped_failures(failures: list[object]) -> str:
    """ "a / w1, a / w2: why; b / w3: other" - runs that failed for the same reason, once."""
    runs_by_reason: dict[str, list[str]] = {}
    for failure in map(str, failures):
        run, _, reason = failure.partition(": ")
        runs_by_reason.setdefault(reason, []).append(run)
    return "; ".join(f"{', '.join(runs)}: {reason}" for reason, runs in runs_by_reason.items())


def _best(found: list[Capacity], family: str) -> Capacity | None:
    mine = [c for c in found if c.backend.startswith(family)]
    return max(mine, key=lambda c: c.median, default=None)


def _loss_line(summary: pd.DataFrame) -> str:
    if "lost" not in summary:
        return "**Loss:** not recorded."
    lost = summary[summary["lost"] > 0]
    if lost.empty:
        return "**Loss:** no backend lost a message in any workload."
    return "**Loss:** " + "; ".join(
        f"{r.backend} lost {format_number(r.lost)} on {r.workload}" for r in lost.itertuples()
    )


# --- 02: failure recovery --------------------------------------------------------------

RECOVERY_KEY = (
    "Lower is better in every column. *Write unavailability*: how long producers cannot "
    "write after the SQLite host or a Kafka broker is lost (SQLite: restore from Litestream "
    "and reopen; the gateway: `sqlitequeue serve` SIGKILLed and restarted). *Redelivery "
    "delay*: how long a crashed consumer's messages wait (SQLite's `lease=`, Kafka's "
    "`session.timeout.ms`). Controls (Litestream killed first) are left "
    "out here and shown below."
)


def recovery_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Per system and durability: worst write unavailability and what measured it, worst
    redelivery delay and the setting behind it, acknowledged messages lost, the worst loss
    window and the number of runs, as ``decide`` reads them from the faults run at ``path``."""
    import pandas as pd

    from sqlitequeue.bench.decide.evidence import GATEWAY, KAFKA, SQLITE, gather_evidence
    from sqlitequeue.bench.decide.evidence import recovery_by_durability as by_durability

    found = gather_evidence([path])
    rows = []
    for system, name in ((SQLITE, "SQLite"), (KAFKA, "Kafka"), (GATEWAY, "Gateway")):
        for r in by_durability(found, system):
            down, again = r.unavailability, r.redelivery
            rows.append(
                {
                    "system": f"{name} ({r.durability})",
                    "write unavailability, worst s": down.worst_s if down else None,
                    "measured by": ", ".join(down.experiments) if down else "-",
                    "redelivery delay, worst s": again.worst_s if again else None,
                    "set by": again.setting if again and again.setting else "-",
                    "acknowledged lost": r.lost,
                    "loss window, worst s": r.rpo_s,
                    "runs": r.runs,
                }
            )
    return pd.DataFrame(rows)


def recovery_answer(path: str | os.PathLike[str]) -> str:
    """Notebook 02's answer for the faults run at ``path``, as Markdown: one line per
    system and durability, the key to the table, the table, the losses and the run."""
    import pandas as pd

    from sqlitequeue.bench.report import faults as faults_report

    res = load(path)
    table = recovery_table(path)
    lines = []
    for row in table.to_dict("records"):
        text = f"**{row['system']}**: "
        if pd.notna(row["write unavailability, worst s"]):
            text += (
                f"writes back within {format_number(row['write unavailability, worst s'])} s "
                f"of {row['measured by']} (worst); "
            )
        if pd.notna(row["redelivery delay, worst s"]):  # the gateway kill has none
            text += (
                "a crashed consumer's messages redelivered after "
                f"{format_number(row['redelivery delay, worst s'])} s ({row['set by']}); "
            )
        lost = row["acknowledged lost"]
        text += (
            f"{format_number(lost)} acknowledged messages lost, a window of up to "
            f"{format_number(row['loss window, worst s'])} s"
            if lost
            else "no acknowledged message lost"
        ) + f" ({format_number(row['runs'])} runs)."
        lines.append(text)
    losses = [line for line in faults_report.reading(res) if "LOST" in line]
    parts = [
        "\n".join(f"- {line}" for line in lines),
        RECOVERY_KEY,
        markdown_table(table),
        "\n".join(f"- {line}" for line in losses),
        f"From {run_facts(res)}.",
    ]
    return "\n\n".join(p for p in parts if p)


# --- 04: the decision ------------------------------------------------------------------


def decision_answer(profile: Any, folders: list[str | os.PathLike[str]]) -> str:
    """Notebook 04's answer: the verdict section ``decide`` writes (Markdown), for
    ``profile`` (a path or Profile) on the results ``folders``."""
    from sqlitequeue.bench.decide.evidence import gather_evidence
    from sqlitequeue.bench.decide.report import render_verdict_markdown
    from sqlitequeue.bench.decide.team_profile import load_profile
    from sqlitequeue.bench.decide.verdict import evaluate

    chosen = load_profile(profile) if isinstance(profile, (str, os.PathLike)) else profile
    decision = evaluate(chosen, gather_evidence(folders))
    return render_verdict_markdown(decision).replace("## ", "### ", 1)
