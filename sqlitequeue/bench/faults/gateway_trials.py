"""Fault trials against ``sqlitequeue serve`` (the gateway): its server SIGKILLed and restarted.

The gateway's broker-kill: the same trial as Kafka's
(:func:`~sqlitequeue.bench.faults.kafka_trials.producing_through`, the same
``kafka-confluent`` client and settings: acks=all, an idempotent producer), with a consumer
group of two reading and committing throughout. The server is a real separate process,
``python -m sqlitequeue serve FILE --port PORT`` (a
:class:`~sqlitequeue.bench.backends.gateway_process.ServeProcess`, which dies with the
harness), SIGKILLed and started again on the same port and file. RTO: from the kill until
the producer's first acknowledgement of a message sent after it; loss: acknowledged ids
missing from the file afterwards; the notes say how the group came back (from its
committed offsets).
"""

from __future__ import annotations

import time

from sqlitequeue.bench.backends.gateway_process import ServeProcess
from sqlitequeue.bench.faults.kafka_trials import BrokerFault, producing_through
from sqlitequeue.bench.faults.lab import Case, FaultEvent, Lab, Trial, Unavailable

BACKEND = "gateway"
DURABILITY = "acks=all"
#: Members of the consumer group that reads through the fault.
CONSUMERS = 2


class ServerKill(BrokerFault):
    """SIGKILL ``sqlitequeue serve``, then start it again on the same port and file."""

    recovered = "first ack after the kill"
    waiting_for = "an acknowledgement after the server restart"

    def __init__(self, server: ServeProcess) -> None:
        self.server = server

    def inject(self, bootstrap: str, topic: str) -> list[tuple[str, float, str]]:
        """Kill the server and restart it; return both moments, with both pids."""
        killed = self.server.pid
        t_fault = self.server.restart()
        t_up = time.time()
        return [
            ("server SIGKILL", t_fault, f"pid {killed}"),
            ("server restarted", t_up, f"pid {self.server.pid}, same port and file"),
        ]

    def notes(self, bootstrap: str, topic: str, events: list[FaultEvent], errors: int) -> str:
        """How long the server was away and how many delivery errors the producer saw."""
        return (
            f"server back after {events[1][1]:.1f} s (pid {self.server.pids[-2]} -> "
            f"{self.server.pid}, port {self.server.port}); {errors} delivery errors"
        )


def gateway_problem() -> str | None:
    """Return None when the gateway can be served here, else why not (the extra to install)."""
    try:
        import sqlitequeue.gateway  # noqa: F401
    except Exception as exc:  # QueueError naming the extra, or a broken install
        return str(exc)
    return None


def broker_kill(lab: Lab, case: Case, repeat: int) -> Trial:
    """``sqlitequeue serve`` is SIGKILLed and restarted while a producer and a group run.

    RTO: from the kill until the producer's first acknowledgement after it. Loss:
    acknowledged ids missing from the file afterwards. Raises Unavailable without the
    gateway extra.
    """
    problem = gateway_problem()
    if problem is not None:
        raise Unavailable(problem)
    d = lab.trial_dir(case, repeat)
    server = ServeProcess(d / "gateway.sqlite", d / "server.log").start()
    try:
        return producing_through(
            lab, case, repeat, server.bootstrap, 1, ServerKill(server), consumers=CONSUMERS, d=d
        )
    finally:
        server.stop()
