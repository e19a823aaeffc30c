"""`sqlitequeue serve` with Kafka's own Java tools (kafka-clients 4.1, the cached jars):
console producer and consumer, and `kafka-consumer-groups --describe` showing lag."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlitequeue import Stream
from sqlitequeue.bench.kafka import distribution
from sqlitequeue.gateway import serve

TOOLS = "org.apache.kafka.tools"


def java_tool(main: str, *args: str, stdin: str = "", check: bool = True) -> str:
    """Run one of Kafka's command-line tools; return its stdout (and, unless ``check``,
    its stderr and log too; with ``check`` a failure fails the test)."""
    dist = distribution.ensure()
    logs = Path(tempfile.mkdtemp(prefix="kafka-tool-logs-"))
    done = subprocess.run(
        [*dist.tool_command(main, logs, heap="256M"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log_file = logs / "server.log"
    log = log_file.read_text() if log_file.exists() else ""
    shutil.rmtree(logs, ignore_errors=True)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr + log
        return done.stdout
    return done.stdout + done.stderr + log


def test_console_producer_consumer_and_consumer_groups_describe(db_path: Path) -> None:
    with serve(db_path) as server:
        bootstrap = ["--bootstrap-server", server.bootstrap]
        java_tool(
            f"{TOOLS}.ConsoleProducer",
            *bootstrap,
            "--topic",
            "jt",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            stdin="a:1\nb:2\nc:3\n",
        )
        with Stream(db_path, "jt") as stream:
            assert [(r.key, r.payload) for r in stream.read(0, 0)] == [
                (b"a", b"1"),
                (b"b", b"2"),
                (b"c", b"3"),
            ]
            stream.append(b"4", key=b"d")
        out = java_tool(
            f"{TOOLS}.consumer.ConsoleConsumer",
            *bootstrap,
            "--topic",
            "jt",
            "--group",
            "jg",
            "--from-beginning",
            "--max-messages",
            "3",
            "--property",
            "print.key=true",
        )
        assert out.split() == ["a", "1", "b", "2", "c", "3"]
        out = java_tool(
            f"{TOOLS}.consumer.group.ConsumerGroupCommand",
            *bootstrap,
            "--describe",
            "--group",
            "jg",
        )
        row = next(line.split() for line in out.splitlines() if line.startswith("jg "))
        assert row[:6] == ["jg", "jt", "0", "3", "4", "1"]  # committed 3, end 4, lag 1


def test_the_kip_848_consumer_protocol_is_refused_with_the_protocols_error(db_path: Path) -> None:
    """ConsumerGroupHeartbeat is not advertised: the Java client says to use classic."""
    with serve(db_path) as server:
        out = java_tool(
            f"{TOOLS}.consumer.ConsoleConsumer",
            "--bootstrap-server",
            server.bootstrap,
            "--topic",
            "k",
            "--group",
            "g",
            "--consumer-property",
            "group.protocol=consumer",
            "--timeout-ms",
            "5000",
            check=False,
        )
    assert "does not support the new CONSUMER group protocol" in out
