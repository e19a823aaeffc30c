"""Backend profiles: bundled files load, apply to their backends, and bad ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlitequeue.bench.backends import BACKENDS, BackendSpec, open_backend
from sqlitequeue.bench.backends._kafka import java_producer_properties
from sqlitequeue.bench.errors import BackendError
from sqlitequeue.bench.profiles import (
    DEFAULT_PROFILES,
    backend_spec,
    default_profile,
    list_profiles,
    load_profile,
    profiles_for,
)

REQUIRED = {"kafka-latency", "kafka-throughput", "sqlite-normal", "sqlite-full", "memory"}


def test_bundled_profiles_exist_and_load() -> None:
    assert set(list_profiles()) >= REQUIRED
    for name in list_profiles():
        profile = load_profile(name)
        assert profile.description
        for backend in profile.backends:
            assert backend in BACKENDS


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_backend_opens_with_every_profile_for_it(backend: str, tmp_path: Path) -> None:
    assert default_profile(backend) in profiles_for(backend)
    for name in profiles_for(backend):
        spec = backend_spec(backend, name, data_dir=tmp_path, bootstrap_servers="127.0.0.1:9")
        opened = open_backend(spec)  # settings are checked here; no connection is made
        info = opened.describe()
        assert info["profile"] == name
        assert info["settings"]


def test_every_backend_has_a_default_profile() -> None:
    assert set(DEFAULT_PROFILES) == set(BACKENDS)


def test_kafka_profiles_follow_openmessaging_benchmark() -> None:
    latency = load_profile("kafka-latency").settings_for("kafka-confluent")
    assert latency["producer.acks"] == "all"
    assert latency["producer.linger.ms"] == 1
    assert latency["producer.batch.size"] == 131072
    assert latency["producer.enable.idempotence"] is True
    throughput = load_profile("kafka-throughput").settings_for("kafka")
    assert throughput["producer.acks"] == "all"
    assert 5 <= throughput["producer.linger.ms"] <= 10
    assert throughput["producer.batch.size"] == 1048576
    assert throughput["producer.compression.type"] == "none"
    assert "acks=all" in java_producer_properties(throughput)
    assert "enable.idempotence=true" in java_producer_properties(throughput)


def test_sqlite_profiles_set_synchronous() -> None:
    assert load_profile("sqlite-full").settings_for("sqlite-queue")["synchronous"] == "FULL"
    assert load_profile("sqlite-normal").settings_for("sqlite-seed")["synchronous"] == "NORMAL"


def test_synchronous_reaches_the_database(tmp_path: Path) -> None:
    backend = open_backend(backend_spec("sqlite-seed", "sqlite-full", data_dir=tmp_path))
    assert backend.describe()["synchronous"] == "FULL"


def test_unknown_profile_lists_the_bundled_ones() -> None:
    with pytest.raises(BackendError) as excinfo:
        load_profile("kafka-fastest")
    assert "kafka-latency" in str(excinfo.value)


def test_profile_for_another_backend_is_refused() -> None:
    with pytest.raises(BackendError, match="not 'kafka'"):
        backend_spec("kafka", "sqlite-full")


def test_profile_by_path_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "description: mine\nbackends: [kafka]\nsettings:\n  producer:\n    linger.ms: 20\n"
        "overrides:\n  kafka:\n    producer: {acks: 1}\n"
    )
    spec = backend_spec("kafka", str(path), bootstrap_servers="127.0.0.1:9")
    assert spec.profile == "mine"
    assert spec.settings["producer.linger.ms"] == 20
    assert spec.settings["producer.acks"] == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("- just a list", "mapping"),
        ("backends: [nosuch]\nsettings: {}", "unknown backend"),
        ("settings: {}", "backends"),
        ("backends: [memory]\nsettings: {a: [1\n", "cannot read"),
        ("backends: [memory]\noverrides: {kafka: {}}", "does not list"),
    ],
)
def test_bad_profile_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(BackendError, match=message):
        load_profile(path)


@pytest.mark.parametrize(
    "backend, settings",
    [
        ("sqlite-queue", {"synchronus": "FULL"}),
        ("memory", {"buffer": 1}),
        ("kafka", {"lingerms": 1}),
        ("kafka-confluent", {"consumer.group.id": "mine"}),
    ],
)
def test_unknown_setting_is_refused(backend: str, settings: dict[str, object]) -> None:
    with pytest.raises(BackendError, match="setting"):
        open_backend(BackendSpec(backend, settings=settings, bootstrap_servers="127.0.0.1:9"))


def test_bad_synchronous_is_refused(tmp_path: Path) -> None:
    for backend in ("sqlite-queue", "sqlite-stream", "sqlite-seed"):
        with pytest.raises(BackendError, match="synchronous"):
            open_backend(BackendSpec(backend, settings={"synchronous": "SOMETIMES"}))
