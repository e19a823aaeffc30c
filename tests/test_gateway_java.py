"""`sqlitequeue serve` with Kafka's own Java tools (kafka-clients 4.1, the cached jars):
console producer and consumer, and `kafka-consumer-groups --describe` showing lag."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlitequeue import Stream
from sqlitequeue.bench.kafka import distribution
from sqlitequeue.gateway import serve

TOOLS = "org.apache.kafka.tools"


def java_tool(main: str, *args: str, stdin: str = "") -> str:
    """Run one of Kafka's command-line tools; return its stdout (fails the test on error)."""
    dist = distribution.ensure()
    done = subprocess.run(
        [
            dist.java,
            "-Xmx256M",
            "-cp",
            dist.classpath,
            f"-Dlog4j2.configurationFile={dist.log4j_config}",
            main,
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


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
