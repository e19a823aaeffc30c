"""One module per workbench command (see :mod:`sqlitequeue.bench.cli`)."""
