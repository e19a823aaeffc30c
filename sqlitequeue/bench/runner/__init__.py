"""Drive one workload against one backend, in processes, and return what was measured.

One module per job; each imports its siblings directly, never this package:

========================  ==================================================================
``run``                   the parent: start the children, prime every consumer group, sample
                          once a second, drain, collect (:func:`run_workload`)
``producer``              a producer process: send the schedule open loop, report deliveries
``consumer``              a consumer process: time and count what arrives, once per group
``messages``              the typed records children send the parent, and their roles
``control``               what parent and children share: events, timings, the process
                          context
``live``                  the parent's running totals, fed by the children's messages
``ramp``                  the max-rate search: judging its steps, the max sustainable rate
``result``                :class:`RunResult`, its scalars and notes, :func:`write_result`
========================  ==================================================================

Data flow: ``run`` starts ``consumer`` and ``producer`` processes steered by ``control``;
they send ``messages``; ``run`` adds them into ``live``, judges ``ramp`` steps, and turns
the totals into a ``result``.
"""

from sqlitequeue.bench.runner.control import POLL_RECORDS, PRIME
from sqlitequeue.bench.runner.ramp import RateStep, max_sustainable_rate
from sqlitequeue.bench.runner.result import RunResult, check_registry, target_rate, write_result
from sqlitequeue.bench.runner.run import NotApplicable, run_workload

__all__ = [
    "POLL_RECORDS",
    "PRIME",
    "NotApplicable",
    "RateStep",
    "RunResult",
    "check_registry",
    "max_sustainable_rate",
    "run_workload",
    "target_rate",
    "write_result",
]
