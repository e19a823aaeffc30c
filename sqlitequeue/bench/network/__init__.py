"""Emulated networks between Kafka clients and brokers: named profiles and Toxiproxy.

* :mod:`~sqlitequeue.bench.network.profiles`   the profiles (YAML files beside this module:
  loopback, same-az, cross-az, cross-region; ``custom`` from the command line), each delay
  with its source;
* :mod:`~sqlitequeue.bench.network.toxiproxy`  a Toxiproxy server owned by this process, and
  proxies with latency toxics;
* :mod:`~sqlitequeue.bench.network.topology`   which Kafka hop (client, replication,
  controller) gets which delay, with brokers spread over availability zones.
"""
