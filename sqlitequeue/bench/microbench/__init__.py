"""Micro-benchmarks of Queue and Stream against a minimal raw design and the Python peers."""
