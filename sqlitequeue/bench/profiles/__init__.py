"""Backend settings profiles: small YAML files, recorded with every result.

A profile file (bundled ones live in ``sqlitequeue/bench/profiles/``)::

    description: what it is for and what it risks
    backends: [kafka, kafka-confluent]      # the backends it applies to
    settings:                               # for every listed backend
      replication.factor: 1
      producer:                             # a mapping is flattened one level:
        linger.ms: 1                        #   -> "producer.linger.ms"
    overrides:                              # optional, per backend
      kafka: {producer: {linger.ms: 0}}

Load one by bundled name (``kafka-latency``) or by path (``./mine.yaml``). Each backend has
a default profile (:data:`DEFAULT_PROFILES`). :func:`backend_spec` builds the picklable
:class:`~sqlitequeue.bench.backends.base.BackendSpec` a runner hands to its processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlitequeue.bench.backends.base import BACKENDS, BackendSpec
from sqlitequeue.bench.errors import BackendError

#: Where the bundled profiles live.
PROFILE_DIR = Path(__file__).resolve().parent

#: backend name -> the profile used when none is named.
DEFAULT_PROFILES: dict[str, str] = {
    "memory": "memory",
    "sqlite-queue": "sqlite-normal",
    "sqlite-stream": "sqlite-normal",
    "sqlite-seed": "sqlite-normal",
    "kafka": "kafka-latency",
    "kafka-confluent": "kafka-latency",
    "kafka-managed": "kafka-managed",
    "gateway-confluent": "gateway-latency",
    "gateway-kafka-python": "gateway-latency",
}


@dataclass(frozen=True)
class Profile:
    """One loaded profile: settings shared by its backends plus per-backend overrides."""

    name: str
    description: str
    backends: tuple[str, ...]
    settings: Mapping[str, Any]
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    path: str | None = None

    def settings_for(self, backend: str) -> dict[str, Any]:
        """Return the flat settings for ``backend``.

        Raises BackendError when the profile does not apply to ``backend``.
        """
        if backend not in self.backends:
            raise BackendError(
                f"profile {self.name!r} is for {', '.join(self.backends)}, not {backend!r}; "
                f"profiles for {backend!r}: {', '.join(profiles_for(backend)) or 'none'}"
            )
        settings = dict(self.settings)
        settings.update(self.overrides.get(backend, {}))
        return settings


def list_profiles() -> list[str]:
    """Return the names of the bundled profiles, sorted."""
    return sorted(path.stem for path in PROFILE_DIR.glob("*.yaml"))


def profiles_for(backend: str) -> list[str]:
    """Return the bundled profiles that apply to ``backend``."""
    return [name for name in list_profiles() if backend in load_profile(name).backends]


def default_profile(backend: str) -> str:
    """Return the name of ``backend``'s default profile; BackendError if it is unknown."""
    if backend not in DEFAULT_PROFILES:
        import difflib

        close = difflib.get_close_matches(backend, sorted(BACKENDS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BackendError(
            f"unknown backend {backend!r}; {hint}choose one of: {', '.join(sorted(BACKENDS))}"
        )
    return DEFAULT_PROFILES[backend]


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a profile by bundled name or by file path.

    Raises BackendError when the file is missing (listing the bundled names), is not valid
    YAML, or lacks ``backends``/``settings``, or names an unknown backend.
    """
    path = _resolve(name_or_path)
    import yaml  # the bench extra; imported here so the module loads without it

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BackendError(f"cannot read profile {path}: {exc}") from exc
    return _parse(path, data)


def backend_spec(
    backend: str,
    profile: str | Path | None = None,
    *,
    data_dir: str | Path = ".",
    bootstrap_servers: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> BackendSpec:
    """Return a BackendSpec for ``backend`` with ``profile``'s settings (default profile if None).

    ``overrides`` (flat keys) are applied last. Raises BackendError for an unknown backend,
    a missing profile, or a profile that does not apply to ``backend``.
    """
    chosen = load_profile(profile if profile is not None else default_profile(backend))
    settings = chosen.settings_for(backend)
    settings.update(overrides or {})
    return BackendSpec(
        name=backend,
        settings=settings,
        data_dir=str(data_dir),
        bootstrap_servers=bootstrap_servers,
        profile=chosen.name,
    )


def flatten(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``settings`` with nested mappings flattened one level ("producer.acks")."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[str(key)] = value
    return flat


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(text).expanduser()
    else:
        path = PROFILE_DIR / f"{text}.yaml"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(Path(text).stem, list_profiles(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise BackendError(
            f"no profile {text!r} (looked for {path}); {hint}bundled profiles: "
            f"{', '.join(list_profiles())}, or give a path to a YAML file"
        )
    return path


def _parse(path: Path, data: Any) -> Profile:
    if not isinstance(data, Mapping):
        raise BackendError(f"profile {path}: expected a mapping with backends and settings")
    backends = data.get("backends")
    if isinstance(backends, str):
        backends = [backends]
    if not backends or not isinstance(backends, list):
        raise BackendError(f"profile {path}: 'backends' must list the backends it applies to")
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown:
        raise BackendError(
            f"profile {path}: unknown backend(s) {', '.join(map(str, unknown))}; "
            f"choose from: {', '.join(sorted(BACKENDS))}"
        )
    settings = data.get("settings") or {}
    overrides = data.get("overrides") or {}
    if not isinstance(settings, Mapping) or not isinstance(overrides, Mapping):
        raise BackendError(f"profile {path}: 'settings' and 'overrides' must be mappings")
    stray = [name for name in overrides if name not in backends]
    if stray:
        raise BackendError(
            f"profile {path}: overrides for {', '.join(stray)}, which 'backends' does not list"
        )
    return Profile(
        name=path.stem,
        description=str(data.get("description", "")).strip(),
        backends=tuple(backends),
        settings=flatten(settings),
        overrides={name: flatten(values or {}) for name, values in overrides.items()},
        path=str(path),
    )
