"""The monthly cost model: managed Kafka, self-managed Kafka, and one VM + SQLite + Litestream.

One module per part:

* :mod:`~sqlitequeue.bench.cost.parameters`   prices and sizing constants (``parameters.yaml``),
  with unit, source and date, and overrides;
* :mod:`~sqlitequeue.bench.cost.model`        :class:`Traffic` in, one :class:`Projection` per
  architecture out (Kafka sizing, Litestream requests);
* :mod:`~sqlitequeue.bench.cost.projections`  sweeps over many rates, break-even points,
  tables and charts.

This package re-exports the names the notebooks, docs and the rest of the workbench use.
"""

from sqlitequeue.bench.cost.model import (
    CATEGORIES,
    KafkaSizing,
    LineItem,
    Projection,
    Traffic,
    common_assumptions,
    confluent_eckus,
    kafka_sizing,
    litestream_puts_per_month,
    monthly_bytes_in,
    project,
    retained_bytes,
)
from sqlitequeue.bench.cost.parameters import (
    ARCHITECTURES,
    KAFKA_ARCHITECTURES,
    SQLITE_ARCHITECTURES,
    Parameter,
    Parameters,
    default_parameters,
    load_parameters,
)
from sqlitequeue.bench.cost.projections import (
    break_even_points,
    default_rates,
    format_table,
    plot_breakdown,
    plot_cost_vs_throughput,
    sweep,
)

__all__ = [
    "ARCHITECTURES",
    "CATEGORIES",
    "KAFKA_ARCHITECTURES",
    "SQLITE_ARCHITECTURES",
    "KafkaSizing",
    "LineItem",
    "Parameter",
    "Parameters",
    "Projection",
    "Traffic",
    "break_even_points",
    "common_assumptions",
    "confluent_eckus",
    "default_parameters",
    "default_rates",
    "format_table",
    "kafka_sizing",
    "litestream_puts_per_month",
    "load_parameters",
    "monthly_bytes_in",
    "plot_breakdown",
    "plot_cost_vs_throughput",
    "project",
    "retained_bytes",
    "sweep",
]
