"""The seed article's "when this makes sense" checklist, answered with a team's measurements.

A team profile (YAML, see ``examples/profiles/``) states peak and average rate, message size,
writers and regions, downtime and data-loss tolerance, retention, consumer groups, Kafka
ecosystem needs and team capacity. The parts, one module each:

* :mod:`~sqlitequeue.bench.decide.team_profile`  the profile: fields, checks, loading;
* :mod:`~sqlitequeue.bench.decide.evidence`      what results folders say, reduced for the criteria;
* :mod:`~sqlitequeue.bench.decide.criteria`      one ``check_*`` per checklist line;
* :mod:`~sqlitequeue.bench.decide.verdict`       :func:`evaluate` -> :class:`Decision`;
* :mod:`~sqlitequeue.bench.decide.report`        summary, markdown, HTML, JSON and the chart;
* :mod:`~sqlitequeue.bench.decide.run`           :func:`decide`: load, measure if needed, evaluate.

This package re-exports the names the notebooks, docs and user code use.
"""

from sqlitequeue.bench.decide.criteria import FAIL, PASS, UNKNOWN, Criterion
from sqlitequeue.bench.decide.evidence import Evidence, gather_evidence, sqlite_capacity
from sqlitequeue.bench.decide.report import (
    plot_criteria,
    render_html,
    render_markdown,
    summary_text,
    write_report,
)
from sqlitequeue.bench.decide.run import decide, run_measurements
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
    "decide",
    "evaluate",
    "gather_evidence",
    "load_profile",
    "plot_criteria",
    "render_html",
    "render_markdown",
    "run_measurements",
    "sqlite_capacity",
    "summary_text",
    "verdict_of",
    "write_report",
]
