"""The harness's ceiling: the top rate a max-rate search offers, and the check that the
harness itself sustains it.

The runner can only measure a backend's limit below the rate its own producers and
consumers sustain. A search therefore offers no more than :func:`search_ceiling` (the
workload's ``producerMaxRate``, by default :data:`~sqlitequeue.bench.workload.HARNESS_CEILING`)
and, when a backend still meets its target there, says that the harness was the limit.
:func:`verify_ceiling` checks that the ceiling holds on this machine: it runs the storage-less
``memory`` backend at that rate, with the workload's message size, producers and consumers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from sqlitequeue.bench.backends.base import BackendSpec
from sqlitequeue.bench.runner.run import run_workload
from sqlitequeue.bench.workload import Workload

#: how long :func:`verify_ceiling` runs by default (s), and the warm-up it excludes
CHECK_SECONDS = 10.0
CHECK_WARMUP_SECONDS = 2.0
#: the check passes when this share of the ceiling arrived (as a search step must)
ARRIVED_SHARE = 0.95
#: runs before the check fails: as in the search, one miss alone is taken as a stall
ATTEMPTS = 2


@dataclass(frozen=True)
class CeilingCheck:
    """What :func:`verify_ceiling` measured on the ``memory`` backend.

    ``rate`` is the rate offered (the search's top, msg/s), ``achieved`` the rate consumed
    per consumer group, ``p99_ms`` the end-to-end p99 against ``p99_target_ms``, ``lost``
    the acknowledged messages never received and ``unsent`` the scheduled ones the producers
    never sent, in the last of ``attempts`` runs. ``ok`` when at least 95 % arrived, within
    the target, and nothing was lost.
    """

    workload: str
    rate: float
    achieved: float
    p99_ms: float
    p99_target_ms: float
    lost: int
    unsent: int
    producers: int
    attempts: int
    ok: bool

    @property
    def verified(self) -> float | None:
        """The harness's verified ceiling (msg/s): ``rate`` when the check passed, else None."""
        return self.rate if self.ok else None

    def describe(self) -> str:
        """One line: what was checked, what was measured, and the verdict."""
        verdict = (
            "OK: searches can trust rates up to it"
            if self.ok
            else "NOT MET: near this rate the harness, not the backend, may be the limit"
        )
        return (
            f"harness ceiling for {self.workload}: memory backend offered "
            f"{self.rate:,.0f} msg/s by {self.producers} producer(s), {self.achieved:,.0f} "
            f"msg/s arrived, e2e p99 {self.p99_ms:,.1f} ms (target {self.p99_target_ms:g} "
            f"ms), lost {self.lost:,}"
            + (f" (attempt {self.attempts})" if self.attempts > 1 else "")
            + f": {verdict}"
        )


def search_ceiling(workload: Workload) -> float:
    """The highest rate (msg/s, as ``producerRate``) a max-rate search of ``workload`` offers."""
    return workload.producer_max_rate


def verify_ceiling(
    workload: Workload,
    *,
    seconds: float = CHECK_SECONDS,
    warmup: float = CHECK_WARMUP_SECONDS,
    attempts: int = ATTEMPTS,
    progress: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
) -> CeilingCheck:
    """Run ``memory`` at ``workload``'s search ceiling for ``seconds``; return the verdict.

    The run keeps the workload's topics, message size, producers, consumers and rate shape,
    offers :func:`search_ceiling` msg/s steadily, and excludes ``warmup`` seconds. A run that
    misses is repeated, up to ``attempts`` runs in all (a machine shared with other work has
    stalls). Raises BackendError if the memory backend cannot run (e.g. not on Linux).
    """
    rate = search_ceiling(workload)
    check = replace(
        workload,
        name=f"{workload.name}-ceiling",
        producer_rate=rate,
        duration_seconds=seconds,
        warmup_seconds=warmup,
        consumer_backlog_messages=0,
        trace=None,
    )
    attempt = 0
    while True:
        attempt += 1
        result = run_workload(check, BackendSpec("memory"), data_dir=data_dir, progress=progress)
        s = result.scalars
        achieved, p99 = s["consume_rate_mean"], s["e2e_latency_ms.p99"]
        lost, unsent = int(s["lost"]), int(s["unsent"])
        ok = achieved >= ARRIVED_SHARE * rate and p99 <= workload.p99_target_ms and lost == 0
        if ok or attempt >= attempts:
            return CeilingCheck(
                workload=workload.name,
                rate=rate,
                achieved=achieved,
                p99_ms=p99,
                p99_target_ms=workload.p99_target_ms,
                lost=lost,
                unsent=unsent,
                producers=workload.producers_per_topic * workload.topics,
                attempts=attempt,
                ok=ok,
            )
