"""What a reader must know before trusting a results folder's figures, from its run.json.

:func:`problems` lists, in order: each failed backend x workload run (run.json ``failures``,
``"BACKEND / WORKLOAD: error"``) with the paths of its logs (run.json ``logs``: a mapping
of name -> path, or a list of paths), a harness self-check that was not met
(``selfcheck.ok`` false), max-rate searches that ended before converging (their figures
are lower bounds, :mod:`~sqlitequeue.bench.report.capacity`), a machine already busy when
the run began (1-minute load average above :data:`BUSY_LOAD` x its CPUs), and quick mode
(``suite == "quick"`` or ``quick: true``), whose figures are indicative. The report shows
them in a red box under the verdict; the terminal summary prints them first.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sqlitequeue.bench.results import Results


#: a run that began with a 1-minute load average above this many times the CPU count
#: shared the machine with other work
BUSY_LOAD = 1.5


class Problem(NamedTuple):
    """One thing that went wrong or limits the figures, and where to look."""

    title: str
    detail: str
    logs: tuple[str, ...] = ()


def _log_paths(res: Results) -> dict[str, str]:
    """run.json ``logs`` as name -> path (relative paths taken from the results folder)."""
    raw: Any = res.meta.get("logs") or {}
    items = raw.items() if isinstance(raw, dict) else ((Path(str(p)).stem, p) for p in raw)
    out = {}
    for name, path in items:
        where = Path(str(path))
        if not where.is_absolute() and not where.exists():
            where = res.path / where
        out[str(name)] = str(where)
    return out


def _logs_for(backend: str, logs: dict[str, str]) -> tuple[str, ...]:
    """The logs named ``backend`` (or ``backend.*``, ``backend/*``); a broker's own
    ``kafka.out`` is not the ``kafka`` backend's log."""
    mine = [
        path
        for name, path in logs.items()
        if name == backend or name.startswith((f"{backend}.", f"{backend}/"))
    ]
    return tuple(mine)


def problems(res: Results) -> list[Problem]:
    """Return the folder's problems (see the module docstring); empty when there are none."""
    meta = res.meta
    logs = _log_paths(res)
    found = []
    for failure in meta.get("failures") or []:
        text = str(failure)
        backend = text.split(" / ", 1)[0].split(":", 1)[0].strip()
        mine = _logs_for(backend, logs) or tuple(logs.values())
        if not mine and (res.path / "logs").is_dir():
            mine = (str(res.path / "logs"),)
        found.append(Problem("failed run", text, mine))
    check = meta.get("selfcheck") or {}
    if check and check.get("ok") is False:
        found.append(
            Problem(
                "harness self-check not met",
                f"{check.get('text') or 'the memory backend missed its target'}; figures near "
                "that rate may measure the harness, not the backend",
            )
        )
    found += _capacity_problems(res)
    busy = _busy(meta)
    if busy:
        found.append(Problem("busy machine", busy))
    if meta.get("suite") == "quick" or meta.get("quick") is True:
        found.append(
            Problem(
                "quick mode",
                "each workload ran once, for a few seconds: the figures are indicative, not "
                "a basis for a decision; `make compare` runs the full suite with repeats",
            )
        )
    return found


def _capacity_problems(res: Results) -> list[Problem]:
    """One problem for the searches that did not converge, naming them."""
    from sqlitequeue.bench.report.capacity import search_outcomes

    stopped = [c for c in search_outcomes(res) if not c.converged]
    if not stopped:
        return []
    by_end: dict[str, list[str]] = {}
    for c in stopped:
        by_end.setdefault(c.ended, []).append(c.backend)
    names = "; ".join(f"{', '.join(backends)}: {ended}" for ended, backends in by_end.items())
    return [
        Problem(
            "capacity search did not converge",
            f"{names}. Their maximum-rate figures are lower bounds, not capacities; a longer "
            "max-rate workload (the full suite's) lets the search converge",
        )
    ]


def _busy(meta: dict[str, Any]) -> str:
    """What to say when other work already loaded the machine at the start ("" if not)."""
    start = meta.get("load_average_at_start") or []
    cpus = (meta.get("host") or {}).get("cpu_count") or 0
    if not start or not cpus or float(start[0]) <= BUSY_LOAD * cpus:
        return ""
    return (
        f"the 1-minute load average was {float(start[0]):.1f} on {cpus} CPUs when the run "
        "began: other work shared the machine, so rates may be lower and latencies higher "
        "than on a quiet one"
    )


def problems_html(found: list[Problem]) -> str:
    """The red box of problems ("" when there are none)."""
    if not found:
        return ""
    e = html.escape
    items = []
    for p in found:
        logs = "".join(f"<br>log: <code>{e(path)}</code>" for path in p.logs)
        items.append(f"<li><b>{e(p.title)}</b>: {e(p.detail)}{logs}</li>")
    return f"<div class='problems' id='problems'><h2>Problems</h2><ul>{''.join(items)}</ul></div>"


def problems_text(found: list[Problem]) -> list[str]:
    """The problems as terminal lines (empty when there are none)."""
    lines = []
    for p in found:
        lines.append(f"PROBLEM {p.title}: {p.detail}")
        lines += [f"  log: {path}" for path in p.logs]
    return lines
