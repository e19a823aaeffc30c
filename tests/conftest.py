"""Shared fixtures: a fresh database path per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a new database file in a fresh temporary directory."""
    return tmp_path / "queue.db"
