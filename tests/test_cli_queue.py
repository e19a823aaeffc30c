"""The queue commands of the CLI: output, --json, exit codes, and no accidental files."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from sqlitequeue import Queue
from sqlitequeue.cli import main


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_put_then_stats_peek_get(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = str(db_path)
    assert main(["put", f, "hello", "world", "--priority", "2", "--key", "k"]) == 0
    assert capsys.readouterr().out.split() == ["1", "2"]
    assert main(["stats", f, "--json"]) == 0
    [stats] = _json(capsys)  # type: ignore[misc]
    assert (stats["queue"], stats["pending"], stats["in_flight"]) == ("default", 2, 0)
    assert main(["peek", f]) == 0
    out = capsys.readouterr().out
    assert "hello" in out and "world" in out
    assert main(["get", f, "--json"]) == 0
    [msg] = _json(capsys)  # type: ignore[misc]
    assert (msg["payload"], msg["key"], msg["priority"], msg["attempts"]) == ("hello", "k", 2, 1)
    assert main(["get", f]) == 0
    assert capsys.readouterr().out == "world\n"
    with Queue(db_path) as q:
        stats_after = q.stats()
    assert (stats_after.pending, stats_after.in_flight) == (0, 0)  # both acked


def test_get_with_nothing_exits_3(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["put", str(db_path), "x", "-q", "other"]) == 0
    capsys.readouterr()
    assert main(["get", str(db_path), "--timeout", "0.05"]) == 3
    assert "no message" in capsys.readouterr().err


def test_get_no_ack_leaves_the_message_leased(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["put", str(db_path), "job"])
    assert main(["get", str(db_path), "--no-ack", "--lease", "60"]) == 0
    with Queue(db_path) as q:
        assert q.stats().in_flight == 1


def test_put_reads_stdin_lines_and_binary_payloads_become_base64(
    db_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\ntwo\n")))
    assert main(["put", str(db_path), "--json"]) == 0
    assert _json(capsys) == {"queue": "default", "ids": [1, 2]}
    with Queue(db_path) as q:
        q.put(b"\xff\xfe")
    assert main(["peek", str(db_path), "--json"]) == 0
    payloads = [m["payload"] for m in _json(capsys)]  # type: ignore[attr-defined]
    assert payloads == ["one", "two", {"base64": "//4="}]


def test_dead_and_redrive(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Queue(db_path) as q:
        q.put_many([b"a", b"b"])
        for m in q.get_many(2, timeout=0):
            q.bury(m, "cannot parse")
    assert main(["dead", str(db_path)]) == 0
    assert "cannot parse" in capsys.readouterr().out
    assert main(["dead", str(db_path), "--json"]) == 0
    dead = _json(capsys)
    assert [d["last_error"] for d in dead] == ["cannot parse"] * 2  # type: ignore[attr-defined]
    assert main(["redrive", str(db_path), "1"]) == 0
    assert "1 message redriven" in capsys.readouterr().out
    assert main(["redrive", str(db_path), "--json"]) == 0
    assert _json(capsys) == {"queue": "default", "redriven": 1}
    assert main(["redrive", str(db_path)]) == 3


def test_purge_needs_yes(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["put", str(db_path), "a", "b"])
    assert main(["purge", str(db_path)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["purge", str(db_path), "--dead-only", "--yes"]) == 3
    assert main(["purge", str(db_path), "--yes"]) == 0
    assert "2 messages purged" in capsys.readouterr().out
    assert main(["purge", str(db_path), "--yes"]) == 3


def test_stats_lists_every_queue(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["put", str(db_path), "a", "-q", "emails"])
    main(["put", str(db_path), "b", "c", "-q", "images"])
    capsys.readouterr()
    assert main(["stats", str(db_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["queue", "pending", "in_flight"]
    assert [line.split()[:2] for line in lines[1:]] == [["emails", "1"], ["images", "2"]]


def test_missing_file_is_an_error_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    for command in ("stats", "peek", "get", "dead", "redrive"):
        assert main([command, str(missing)]) == 1
        assert "does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_non_queue_file_is_an_error(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path.write_text("hello\n")
    assert main(["put", str(db_path), "x"]) == 1
    assert "not an SQLite database" in capsys.readouterr().err
    assert db_path.read_text() == "hello\n"


def test_bad_usage_exits_2(db_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["get", str(db_path), "--timeout", "soon"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "{db}", "-n", "0"],
        ["get", "{db}", "--timeout", "-1"],
        ["get", "{db}", "--timeout", "nan"],
        ["get", "{db}", "--lease", "0"],
        ["put", "{db}", "x", "--delay", "-5"],
        ["peek", "{db}", "-n", "0"],
        ["dead", "{db}", "-n", "-3"],
    ],
)
def test_bad_values_are_bad_usage_and_change_nothing(
    argv: list[str], db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["put", str(db_path), "keep"]) == 0
    before = db_path.read_bytes()
    with pytest.raises(SystemExit) as exc:
        main([arg.format(db=db_path) for arg in argv])
    assert exc.value.code == 2
    assert "must be" in capsys.readouterr().err
    assert db_path.read_bytes() == before
