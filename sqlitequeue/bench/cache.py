"""Where the workbench keeps what it installs: Kafka jars, the litestream and toxiproxy binaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cache_root() -> Path:
    """Return the cache directory: ``$SQLITEQUEUE_CACHE`` or ``~/.cache/sqlitequeue``."""
    env = os.environ.get("SQLITEQUEUE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sqlitequeue"


def find_binary(name: str, env_var: str) -> Path | None:
    """Return the executable ``name``: ``$env_var``, then ``<cache>/bin/name``, then PATH.

    Returns None when none of them is an executable file.
    """
    candidates = [os.environ.get(env_var), str(cache_root() / "bin" / name), shutil.which(name)]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None
