"""The workbench: compare SQLite with a real Kafka on the same workloads.

Needs the extras (``pip install 'sqlitequeue[all]'``); the core package never imports it.
"""
