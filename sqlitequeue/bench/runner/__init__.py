"""Drive one workload against one backend, in processes, and return what was measured.

One module per job; each imports its siblings directly, never this package:

========================  ==================================================================
``run``                   the parent: start the children, prime every consumer group, sample
                          once a second, drain, collect (:func:`run_workload`)
``producer``              a producer process: send the schedule open loop, in ticks; report
                          deliveries
``consumer``              a consumer process: time and count what arrives, once per group
``latency``               latency histograms by scheduled time, recorded a poll at a time
``messages``              the typed records children send the parent, and their roles
``control``               what parent and children share: events, timings, a search's
                          segments, the process context
``live``                  the parent's running totals, fed by the children's messages
``ramp``                  the max-rate search: ramp, then bisect; judging its steps
``result``                :class:`RunResult`, its scalars and notes, :func:`write_result`
``ceiling``               the search's top rate, and the check that the harness sustains it
                          (:func:`verify_ceiling`)
========================  ==================================================================

Data flow: ``run`` starts ``consumer`` and ``producer`` processes steered by ``control``;
they send ``messages``; ``run`` adds them into ``live``, moves a ``ramp`` search on, and
turns the totals into a ``result``.
"""

from sqlitequeue.bench.runner.ceiling import CeilingCheck, search_ceiling, verify_ceiling
from sqlitequeue.bench.runner.control import POLL_RECORDS, PRIME
from sqlitequeue.bench.runner.ramp import (
    RateSearch,
    RateStep,
    SearchEnd,
    SearchPhase,
    max_sustainable_rate,
)
from sqlitequeue.bench.runner.result import RunResult, check_registry, target_rate, write_result
from sqlitequeue.bench.runner.run import NotApplicable, run_workload

__all__ = [
    "POLL_RECORDS",
    "PRIME",
    "CeilingCheck",
    "NotApplicable",
    "RateSearch",
    "RateStep",
    "RunResult",
    "SearchEnd",
    "SearchPhase",
    "check_registry",
    "max_sustainable_rate",
    "run_workload",
    "search_ceiling",
    "target_rate",
    "verify_ceiling",
    "write_result",
]
