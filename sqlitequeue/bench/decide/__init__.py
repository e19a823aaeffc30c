"""The seed article's "when this makes sense" checklist, answered with a team's measurements.

A team profile (YAML, see ``examples/profiles/``) states peak and average rate, message size,
writers and regions, write-unavailability, redelivery and data-loss tolerance, retention,
consumer groups, Kafka ecosystem needs and team capacity. Every criterion shows SQLite's
figure and Kafka's from the same runs. The parts, one module each:

* :mod:`~sqlitequeue.bench.decide.team_profile`  the profile: fields, checks, loading;
* :mod:`~sqlitequeue.bench.decide.evidence`      what results folders say, for both systems;
* :mod:`~sqlitequeue.bench.decide.criteria`      the measured checklist lines, one ``check_*`` each;
* :mod:`~sqlitequeue.bench.decide.fit`           the lines the profile and cost model answer;
* :mod:`~sqlitequeue.bench.decide.verdict`       :func:`evaluate` -> :class:`Decision`;
* :mod:`~sqlitequeue.bench.decide.report`        summary, markdown, HTML, JSON and the chart;
* :mod:`~sqlitequeue.bench.decide.sources`       which runs to reuse, and how old they are;
* :mod:`~sqlitequeue.bench.decide.run`           :func:`decide`: load, reuse or measure, evaluate.

This package re-exports the names the notebooks, docs and user code use.
"""

from sqlitequeue.bench.decide.criteria import FAIL, PASS, UNKNOWN, Criterion
from sqlitequeue.bench.decide.evidence import Evidence, gather_evidence, sqlite_capacity
from sqlitequeue.bench.decide.report import (
    plot_criteria,
    render_html,
    render_markdown,
    render_verdict_html,
    render_verdict_markdown,
    summary_text,
    write_report,
)
from sqlitequeue.bench.decide.run import decide, gather_sources, run_measurements
from sqlitequeue.bench.decide.sources import Source
from sqlitequeue.bench.decide.team_profile import Profile, load_profile
from sqlitequeue.bench.decide.verdict import (
    INCONCLUSIVE,
    SQLITE_FITS,
    STAY_ON_KAFKA,
    Decision,
    evaluate,
    verdict_of,
)

__all__ = [
    "FAIL",
    "INCONCLUSIVE",
    "PASS",
    "SQLITE_FITS",
    "STAY_ON_KAFKA",
    "UNKNOWN",
    "Criterion",
    "Decision",
    "Evidence",
    "Profile",
    "Source",
    "decide",
    "evaluate",
    "gather_evidence",
    "gather_sources",
    "load_profile",
    "plot_criteria",
    "render_html",
    "render_markdown",
    "render_verdict_html",
    "render_verdict_markdown",
    "run_measurements",
    "sqlite_capacity",
    "summary_text",
    "verdict_of",
    "write_report",
]
