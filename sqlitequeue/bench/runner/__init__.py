"""Drive one workload against one backend (see :mod:`sqlitequeue.bench.runner.run`)."""

from sqlitequeue.bench.runner.run import (
    POLL_RECORDS,
    PRIME,
    NotApplicable,
    RunResult,
    _max_sustainable,
    _target_rate,
    check_registry,
    run_workload,
    write_result,
)

__all__ = [
    "POLL_RECORDS",
    "PRIME",
    "NotApplicable",
    "RunResult",
    "_max_sustainable",
    "_target_rate",
    "check_registry",
    "run_workload",
    "write_result",
]
