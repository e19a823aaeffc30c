"""Failure-recovery experiments: lab, ledgers, workers, SQLite and Kafka trials, Litestream."""
