"""Locust load tests: run them as a subprocess, convert their CSVs into results folders."""
