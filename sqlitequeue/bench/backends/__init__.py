"""Backends under test, behind one protocol (:mod:`sqlitequeue.bench.backends.base`)."""

from sqlitequeue.bench.backends.base import (
    BACKENDS,
    Backend,
    BackendSpec,
    Consumer,
    Delivery,
    Producer,
    RebalanceListener,
    Received,
    open_backend,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendSpec",
    "Consumer",
    "Delivery",
    "Producer",
    "RebalanceListener",
    "Received",
    "open_backend",
]
