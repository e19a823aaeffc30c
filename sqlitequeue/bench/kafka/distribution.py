"""Apache Kafka's jars from Maven Central, cached on this machine, and the Java that runs them.

The jars are resolved by the pom shipped in ``sqlitequeue/bench/kafka/pom.xml`` with
``mvn dependency:copy-dependencies`` into ``$SQLITEQUEUE_CACHE/kafka-<version>/libs``
(default cache ``~/.cache/sqlitequeue``). The first call downloads (~55 MB, with a progress
message); later calls find the ``.complete`` marker and return at once. A file lock makes
concurrent installs (two test sessions, two notebooks) safe.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlitequeue.bench.cache import cache_root
from sqlitequeue.bench.errors import KafkaError

#: The Apache Kafka version the local broker runs (kafka-python 3.0 supports brokers up to 4.3).
KAFKA_VERSION = "4.1.1"
#: Oldest Java the Kafka 4.x broker runs on.
MIN_JAVA = 17
#: Where the pom and the log4j2 configuration live.
RESOURCES = Path(__file__).resolve().parent
#: How long one ``mvn`` run may take before we give up.
MVN_TIMEOUT = 900.0

_INSTALL_JAVA = (
    "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`, or set "
    "JAVA_HOME), or point KAFKA_BOOTSTRAP_SERVERS at an existing cluster"
)


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    """Return ``<cache>/kafka-<version>`` (it may not exist yet)."""
    return cache_root() / f"kafka-{version}"


@dataclass(frozen=True)
class KafkaDist:
    """An installed set of Kafka jars plus the Java to run them with."""

    version: str
    libs: Path
    java: str

    @property
    def classpath(self) -> str:
        """The JVM ``-cp`` value: every jar in ``libs`` (Java expands ``dir/*``)."""
        return str(self.libs / "*")

    @property
    def log4j_config(self) -> Path:
        """The log4j2 configuration file the broker is started with."""
        return RESOURCES / "log4j2.xml"

    def tool_command(self, main: str, logs: str | Path, heap: str = "512M") -> list[str]:
        """The command line that runs Kafka's tool class ``main`` (arguments follow), its
        log under ``logs`` (not the terminal, not the working directory)."""
        return [
            self.java,
            f"-Xmx{heap}",
            "-cp",
            self.classpath,
            f"-Dlog4j2.configurationFile={self.log4j_config}",
            f"-Dkafka.logs.dir={logs}",
            main,
        ]


# --------------------------------------------------------------------------- Java


def find_java() -> str:
    """Return the ``java`` executable: ``$JAVA_HOME/bin/java``, else ``java`` on PATH.

    Raises KafkaError (saying how to install one) when neither exists.
    """
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise KafkaError(f"no Java found (JAVA_HOME unset and no `java` on PATH): {_INSTALL_JAVA}")
    return found


def java_major_version(java: str) -> int:
    """Return the major version of ``java`` (8 for "1.8.0_x", 17 for "17.0.15").

    Raises KafkaError when it cannot be run or its version cannot be read (within 30 s).
    """
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KafkaError(f"could not run `{java} -version`: {exc}; {_INSTALL_JAVA}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise KafkaError(f"could not read the version of {java}: {out.stderr.strip()!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" style
        major = int(match.group(2))
    return major


def require_java() -> str:
    """Return a ``java`` of version >= 17; raise KafkaError if missing or too old."""
    java = find_java()
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise KafkaError(
            f"Java {major} at {java} is too old: Kafka 4.x needs Java {MIN_JAVA}+; {_INSTALL_JAVA}"
        )
    return java


# --------------------------------------------------------------------------- jars


def is_installed(version: str = KAFKA_VERSION) -> bool:
    """Return True when the jars for ``version`` are fully downloaded."""
    return (kafka_home(version) / "libs" / ".complete").exists()


def install(version: str = KAFKA_VERSION, progress: Callable[[str], None] | None = None) -> Path:
    """Download Kafka ``version``'s jars into the cache unless already there; return the libs dir.

    Idempotent and fast when cached (no ``mvn`` run). ``progress`` receives one-line messages
    (default: print to stderr) only when a download actually happens. Raises KafkaError when
    ``mvn`` is missing or fails (its output is in the message).
    """
    libs = kafka_home(version) / "libs"
    if is_installed(version):
        return libs
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    home = kafka_home(version)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing the same version
        if is_installed(version):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError(
                f"Kafka {version}'s jars are not in {libs} and Maven (`mvn`) is not on PATH to "
                "download them: install Maven (e.g. `apt-get install maven`), or set "
                "KAFKA_BOOTSTRAP_SERVERS to use an existing cluster"
            )
        say(
            f"sqlitequeue: downloading Apache Kafka {version}'s jars from Maven Central "
            f"into {libs} ..."
        )
        started = time.monotonic()
        _run_mvn(mvn, version, home)
        say(f"sqlitequeue: Kafka {version} jars ready ({time.monotonic() - started:.0f} s)")
    return libs


def _run_mvn(mvn: str, version: str, home: Path) -> None:
    staging = home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(RESOURCES / "pom.xml"),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=MVN_TIMEOUT, check=False, cwd=home
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaError(f"`mvn` did not finish within {MVN_TIMEOUT:.0f} s: {cmd}") from exc
    jars = sorted(p.name for p in staging.glob("*.jar")) if staging.exists() else []
    if out.returncode != 0 or not any(j.startswith("kafka_2.13-") for j in jars):
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-30:])
        raise KafkaError(
            f"`mvn dependency:copy-dependencies` failed (exit {out.returncode}) fetching Kafka "
            f"{version}; is Maven Central reachable?\n{tail}"
        )
    (staging / ".complete").write_text("\n".join(jars) + "\n")
    libs = home / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)


def ensure(
    version: str = KAFKA_VERSION, progress: Callable[[str], None] | None = None
) -> KafkaDist:
    """Return a usable :class:`KafkaDist`: Java 17+ checked, jars installed (downloaded if needed).

    Raises KafkaError when Java is missing or too old, or the jars cannot be fetched.
    """
    java = require_java()
    libs = install(version, progress)
    return KafkaDist(version=version, libs=libs, java=java)
