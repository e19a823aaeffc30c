"""The max-rate search: judge each step of a rising rate, stop after two failures in a row.

After the warm-up, a max-rate workload raises its rate every ``rampStepSeconds``
(:func:`~sqlitequeue.bench.workload.ramp_rates`). A step passes when the end-to-end p99 of
the messages scheduled in it meets the workload's target and at least 95 % of them arrived.
One failed step alone is taken as a stall; two in a row end the search, and the maximum
sustainable rate is the last passing step before them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlitequeue.bench.metrics import WindowedHistograms
from sqlitequeue.bench.workload import Workload, ramp_rates

#: seconds after a step ends before it is judged (its last messages are still in flight)
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class RateStep:
    """One judged step of a max-rate search (a row of ``rate_steps.csv``)."""

    step: int
    target_rate: float
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    ok: bool


class RateSearch:
    """The steps of one run's max-rate search, judged as the run goes."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.steps: list[RateStep] = []
        #: index of the first of two failed steps in a row, once the search has ended
        self.failed_step: int | None = None

    @property
    def ended(self) -> bool:
        return self.failed_step is not None

    def judge(self, elapsed: float, e2e: WindowedHistograms) -> bool:
        """Judge every step that ended by ``elapsed`` seconds into the run, from ``e2e``
        latencies by scheduled time; return True when the search has just ended."""
        w = self.workload
        rates = ramp_rates(w)
        length = w.ramp_step_seconds
        while len(self.steps) < len(rates) and not self.ended:
            k = len(self.steps)
            lo = w.warmup_seconds + k * length
            if elapsed < lo + length + SETTLE_SECONDS:
                return False
            self.steps.append(self._judge_step(k, rates[k], lo, lo + length, e2e))
            if len(self.steps) >= 2 and not (self.steps[-1].ok or self.steps[-2].ok):
                self.failed_step = k - 1  # two failures in a row: not a one-off stall
                return True
        return False

    def _judge_step(
        self, k: int, rate: float, lo: float, hi: float, e2e: WindowedHistograms
    ) -> RateStep:
        hist = e2e.between(lo, hi)
        expected = rate * (hi - lo)
        p99 = hist.percentile(99)
        ok = p99 <= self.workload.p99_target_ms and hist.total >= 0.95 * expected
        return RateStep(
            step=k,
            target_rate=rate,
            achieved_rate=hist.total / (hi - lo),
            p50_ms=hist.percentile(50),
            p99_ms=p99,
            ok=ok,
        )

    def ended_note(self) -> str | None:
        """Why the search stopped early, for the run's notes; None when it did not."""
        if self.failed_step is None:
            return None
        step = self.steps[self.failed_step]
        return (
            f"max-rate search stopped at step {step.step} ({step.target_rate:,.0f} "
            f"msg/s): p99 {step.p99_ms:,.1f} ms against a target of "
            f"{self.workload.p99_target_ms:g} ms, {step.achieved_rate:,.0f} msg/s arrived"
        )


def max_sustainable_rate(steps: Sequence[RateStep]) -> float:
    """The last passing step before two failures in a row (one failure alone is a stall)."""
    best = 0.0
    for k, step in enumerate(steps):
        if step.ok:
            best = step.achieved_rate
        elif k + 1 < len(steps) and not steps[k + 1].ok:
            break
    return best
