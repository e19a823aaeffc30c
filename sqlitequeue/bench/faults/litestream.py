"""Litestream, for real: replicate a queue file, wait until it is replicated, restore it.

The workbench runs the real ``litestream`` binary (0.5.x, installed by
``tools/install_litestream.sh``). A :class:`Replicator` runs ``litestream replicate`` for one
database with a config file it writes itself: a :class:`FileReplica` (a directory: the
default) or an :class:`S3Replica` (any S3-compatible store: endpoint, bucket, credentials).
:func:`restore` runs ``litestream restore`` and returns how long it took.

How long acknowledged writes stay exposed: Litestream copies new WAL frames to local LTX
files every *monitor interval* and ships them to the replica every *sync interval* (both
1 s by default), so a host lost at a random moment loses up to about their sum of
acknowledged writes. :meth:`Replicator.wait_until_replicated` closes that window on
demand (``litestream sync -wait`` through the daemon's control socket).

Credentials never touch disk: S3 keys are passed to the child process as
``LITESTREAM_ACCESS_KEY_ID`` / ``LITESTREAM_SECRET_ACCESS_KEY``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlitequeue.bench.errors import LitestreamError

#: The release ``tools/install_litestream.sh`` installs.
LITESTREAM_VERSION = "v0.5.18"
#: Any release of this series works with the flags and config keys used here.
SUPPORTED_SERIES = "v0.5."
#: Litestream's own defaults (replica sync-interval, db monitor-interval), in seconds.
DEFAULT_SYNC_INTERVAL = 1.0
DEFAULT_MONITOR_INTERVAL = 1.0
INSTALL_HINT = "run `make litestream` (or `bash tools/install_litestream.sh`)"


def cache_dir() -> Path:
    """Return the project cache (``$SQLITEQUEUE_CACHE`` or ``~/.cache/sqlitequeue``)."""
    env = os.environ.get("SQLITEQUEUE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sqlitequeue"


def find_litestream() -> Path:
    """Return the litestream binary to use.

    Looks at ``$LITESTREAM_BIN``, then the project cache's ``bin/``, then ``PATH``; accepts
    only a 0.5.x release. Raises LitestreamError saying how to install it otherwise.
    """
    candidates: list[Path] = []
    if os.environ.get("LITESTREAM_BIN"):
        candidates.append(Path(os.environ["LITESTREAM_BIN"]))
    candidates.append(cache_dir() / "bin" / "litestream")
    on_path = shutil.which("litestream")
    if on_path:
        candidates.append(Path(on_path))
    seen = []
    for candidate in candidates:
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        version = litestream_version(candidate)
        if version.startswith(SUPPORTED_SERIES):
            return candidate
        seen.append(f"{candidate} ({version})")
    found = f"; found only {', '.join(seen)}" if seen else ""
    raise LitestreamError(f"no litestream {SUPPORTED_SERIES}x binary{found}: {INSTALL_HINT}")


def litestream_version(binary: str | os.PathLike[str] | None = None) -> str:
    """Return what ``litestream version`` prints (e.g. ``v0.5.18``); '' if it cannot run."""
    path = str(binary) if binary is not None else str(find_litestream())
    try:
        out = subprocess.run(
            [path, "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


# -- replicas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileReplica:
    """A replica in a local directory (another disk or a network mount in production)."""

    path: Path

    def config(self) -> dict[str, Any]:
        """Return the ``replica:`` block of litestream's config."""
        return {"type": "file", "path": str(Path(self.path).resolve())}

    def env(self) -> dict[str, str]:
        """Return environment variables the litestream process needs (none)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Return what is recorded with results."""
        return {"type": "file", "path": str(self.path)}


@dataclass(frozen=True)
class S3Replica:
    """A replica in an S3-compatible bucket (AWS S3, R2, S3Proxy, a moto server ...)."""

    bucket: str
    path: str = "sqlitequeue"
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    force_path_style: bool | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Replica | None:
        """Build one from ``SQLITEQUEUE_S3_*`` variables; None when no bucket is set.

        Reads ``SQLITEQUEUE_S3_BUCKET`` (required), ``_PATH``, ``_ENDPOINT``, ``_REGION``,
        ``_FORCE_PATH_STYLE`` (1/0), and credentials from ``SQLITEQUEUE_S3_ACCESS_KEY_ID`` /
        ``_SECRET_ACCESS_KEY``, falling back to ``LITESTREAM_*`` then ``AWS_*`` ones.
        """
        env = os.environ if env is None else env
        bucket = env.get("SQLITEQUEUE_S3_BUCKET")
        if not bucket:
            return None

        def first(*names: str) -> str | None:
            return next((env[n] for n in names if env.get(n)), None)

        style = env.get("SQLITEQUEUE_S3_FORCE_PATH_STYLE")
        return cls(
            bucket=bucket,
            path=env.get("SQLITEQUEUE_S3_PATH", "sqlitequeue"),
            endpoint=env.get("SQLITEQUEUE_S3_ENDPOINT") or None,
            region=env.get("SQLITEQUEUE_S3_REGION", "us-east-1"),
            access_key_id=first(
                "SQLITEQUEUE_S3_ACCESS_KEY_ID", "LITESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"
            ),
            secret_access_key=first(
                "SQLITEQUEUE_S3_SECRET_ACCESS_KEY",
                "LITESTREAM_SECRET_ACCESS_KEY",
                "AWS_SECRET_ACCESS_KEY",
            ),
            force_path_style=None if style is None else style.lower() in {"1", "true", "yes"},
        )

    def config(self) -> dict[str, Any]:
        """Return the ``replica:`` block (without credentials: see :meth:`env`)."""
        block: dict[str, Any] = {
            "type": "s3",
            "bucket": self.bucket,
            "path": self.path,
            "region": self.region,
        }
        if self.endpoint:
            block["endpoint"] = self.endpoint
        if self.force_path_style is not None:
            block["force-path-style"] = self.force_path_style
        return block

    def env(self) -> dict[str, str]:
        """Return the credentials as the environment variables litestream reads."""
        env = {}
        if self.access_key_id:
            env["LITESTREAM_ACCESS_KEY_ID"] = self.access_key_id
        if self.secret_access_key:
            env["LITESTREAM_SECRET_ACCESS_KEY"] = self.secret_access_key
        return env

    def describe(self) -> dict[str, Any]:
        """Return what is recorded with results (never the secret)."""
        return {**self.config(), "credentials": bool(self.access_key_id)}


Replica = FileReplica | S3Replica


def default_replica(db_path: str | os.PathLike[str]) -> Replica:
    """Return the S3 replica configured in the environment, else ``<db>.replica/`` beside it."""
    s3 = S3Replica.from_env()
    if s3 is not None:
        return s3
    db = Path(db_path)
    return FileReplica(db.with_name(db.name + ".replica"))


def local_state_paths(db_path: str | os.PathLike[str]) -> list[Path]:
    """Return every host-local file of a replicated database.

    The database, its ``-wal`` and ``-shm``, and Litestream's local state directory
    (``.<name>-litestream``). Deleting all of them simulates losing the host.
    """
    db = Path(db_path)
    return [
        db,
        Path(f"{db}-wal"),
        Path(f"{db}-shm"),
        db.with_name(f".{db.name}-litestream"),
    ]


def delete_local_database(db_path: str | os.PathLike[str]) -> list[Path]:
    """Delete the database, its WAL/SHM and Litestream's local state; return what existed."""
    gone = []
    for path in local_state_paths(db_path):
        if path.is_dir():
            shutil.rmtree(path)
            gone.append(path)
        elif path.exists():
            path.unlink()
            gone.append(path)
    return gone


# -- config ------------------------------------------------------------------------------


def write_config(
    config_path: Path,
    db_path: Path,
    replica: Replica,
    *,
    sync_interval: float = DEFAULT_SYNC_INTERVAL,
    monitor_interval: float = DEFAULT_MONITOR_INTERVAL,
    socket_path: Path | None = None,
) -> Path:
    """Write a litestream config for one database and return its path.

    JSON is valid YAML, so the file is written as JSON (no quoting surprises in paths).
    """
    db_block: dict[str, Any] = {
        "path": str(Path(db_path).resolve()),
        "monitor-interval": _duration(monitor_interval),
        "replica": {**replica.config(), "sync-interval": _duration(sync_interval)},
    }
    config: dict[str, Any] = {"logging": {"level": "info"}, "dbs": [db_block]}
    if socket_path is not None:
        config["socket"] = {"enabled": True, "path": str(socket_path)}
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return config_path


def _duration(seconds: float) -> str:
    if seconds <= 0:
        raise LitestreamError(f"intervals must be > 0 seconds, not {seconds}")
    return f"{round(seconds * 1000)}ms"


# -- replicate ---------------------------------------------------------------------------


class Replicator:
    """Runs ``litestream replicate`` for one database file.

    ``replica`` defaults to :func:`default_replica`. Use as a context manager or call
    :meth:`start` / :meth:`stop`. The database should already exist in WAL mode (open a
    Queue on it first); Litestream then holds a read transaction on it and takes over
    checkpoints. Raises LitestreamError when the binary is missing or the daemon fails.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        replica: Replica | None = None,
        *,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
        monitor_interval: float = DEFAULT_MONITOR_INTERVAL,
        binary: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.db_path = Path(db_path).resolve()
        self.replica = replica if replica is not None else default_replica(self.db_path)
        self.sync_interval = sync_interval
        self.monitor_interval = monitor_interval
        self.binary = Path(binary) if binary is not None else find_litestream()
        self.version = litestream_version(self.binary)
        # A short private directory: Unix socket paths are limited to ~100 bytes.
        self._work = Path(tempfile.mkdtemp(prefix="sqq-ls-"))
        self.config_path = self._work / "litestream.yml"
        self.socket_path = self._work / "ctl.sock"
        self.log_path = Path(log_path) if log_path else self._work / "litestream.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        write_config(
            self.config_path,
            self.db_path,
            self.replica,
            sync_interval=sync_interval,
            monitor_interval=monitor_interval,
            socket_path=self.socket_path,
        )

    @property
    def pid(self) -> int | None:
        """The daemon's process id while it runs, else None."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """True while the daemon process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> Replicator:
        """Start the daemon and return once it replicates the database.

        Raises LitestreamError (with the end of its log) if it exits or is not ready
        within ``timeout`` seconds.
        """
        if self.running:
            return self
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        argv = [str(self.binary), "replicate", "-no-expand-env", "-config", str(self.config_path)]
        self._process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.replica.env()},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise LitestreamError(f"litestream replicate exited: {self.log_tail()}")
            if self.socket_path.exists() and "replicating to" in self._read_log():
                return self
            time.sleep(0.05)
        self.kill()
        raise LitestreamError(
            f"litestream replicate was not ready within {timeout:g} s: {self.log_tail()}"
        )

    def wait_until_replicated(self, timeout: float = 30.0) -> float:
        """Force a sync and block until the replica holds every committed transaction.

        Returns the seconds it took. Raises LitestreamError if the daemon is not running or
        the sync does not finish within ``timeout``.
        """
        if not self.running:
            raise LitestreamError("litestream is not running; call start() first")
        started = time.monotonic()
        argv = [
            str(self.binary),
            "sync",
            "-wait",
            "-timeout",
            str(max(1, round(timeout))),
            "-socket",
            str(self.socket_path),
            str(self.db_path),
        ]
        try:
            out = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout + 10, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise LitestreamError(f"litestream sync did not finish in {timeout:g} s") from exc
        if out.returncode != 0:
            raise LitestreamError(f"litestream sync failed: {(out.stderr or out.stdout).strip()}")
        return time.monotonic() - started

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the daemon gracefully (SIGTERM: it syncs what is pending first)."""
        if self.running and self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the daemon (as when the host dies): nothing pending is shipped."""
        if self.running and self._process is not None:
            self._process.kill()
            self._process.wait(10)
        self._close_log()

    def restore(self, output: str | os.PathLike[str], timeout: float = 120.0) -> float:
        """Restore the latest replicated state to ``output``; return the seconds it took."""
        return restore(
            self.db_path, output, self.replica, binary=self.binary, timeout=timeout, quiet=True
        )

    def describe(self) -> dict[str, Any]:
        """Return version, intervals and replica, recorded with every result."""
        return {
            "litestream_version": self.version,
            "binary": str(self.binary),
            "sync_interval_s": self.sync_interval,
            "monitor_interval_s": self.monitor_interval,
            "replica": self.replica.describe(),
        }

    def log_tail(self, lines: int = 15) -> str:
        """Return the last lines of the daemon's log (for error messages)."""
        text = self._read_log().strip().splitlines()
        return "\n".join(text[-lines:]) or "(no output)"

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the daemon and remove its private config directory."""
        self.stop()
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> Replicator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- restore -----------------------------------------------------------------------------


def restore(
    db_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    replica: Replica | None = None,
    *,
    binary: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
    quiet: bool = True,
) -> float:
    """Run ``litestream restore`` of ``db_path``'s replica into ``output``; return seconds.

    ``output`` must not exist yet (pass the original path after a host loss). Raises
    LitestreamError if there is no replica or the restore fails.
    """
    db = Path(db_path).resolve()
    out = Path(output)
    if out.exists():
        raise LitestreamError(f"{out} already exists; restore into a new path")
    chosen = replica if replica is not None else default_replica(db)
    exe = Path(binary) if binary is not None else find_litestream()
    work = Path(tempfile.mkdtemp(prefix="sqq-lsr-"))
    try:
        config = write_config(work / "litestream.yml", db, chosen)
        argv = [str(exe), "restore", "-no-expand-env", "-config", str(config)]
        argv += ["-o", str(out.resolve()), str(db)]
        started = time.monotonic()
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, **chosen.env()},
            )
        except subprocess.TimeoutExpired as exc:
            raise LitestreamError(f"litestream restore took over {timeout:g} s") from exc
        elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.returncode != 0 or not out.exists():
        detail = (result.stderr or result.stdout).strip() or "no output"
        raise LitestreamError(f"litestream restore of {db} failed: {detail}")
    if not quiet:
        print(result.stdout.strip())
    return elapsed
