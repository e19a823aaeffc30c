"""The stream commands: topics, groups, tail, reset-offsets (through sqlitequeue.cli.main)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from sqlitequeue import Retention, Stream
from sqlitequeue.cli import main


@pytest.fixture
def orders(db_path: Path) -> Path:
    """A file with topic "orders" (2 partitions, 6 records) and group "billing" at 0/3."""
    with Stream(db_path, "orders", partitions=2, retention=Retention(max_age=86400)) as s:
        s.append_many([b"order %d" % i for i in range(6)])  # 3 per partition
        consumer = s.consumer("billing")
        consumer.commit({0: 0, 1: 3})
        consumer.close()
    return db_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_topics_table_and_json(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "topics", str(orders))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["TOPIC", "PARTITION", "EARLIEST", "END", "RECORDS", "BYTES"]
    assert lines[1].split()[:6] == ["orders", "0", "0", "3", "3", "21"]
    assert "86400s" in lines[1]
    code, out, _ = run(capsys, "topics", str(orders), "--json")
    (topic,) = json.loads(out)
    assert topic["name"] == "orders" and topic["retention"]["max_age"] == 86400
    assert [p["end"] for p in topic["partitions"]] == [3, 3]


def test_groups_shows_committed_end_and_lag(
    orders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "groups", str(orders))
    assert code == 0
    assert out.splitlines()[1].split() == ["billing", "orders", "0", "0", "3", "3", "-"]
    assert out.splitlines()[2].split() == ["billing", "orders", "1", "3", "3", "0", "-"]
    code, out, _ = run(capsys, "groups", str(orders), "--topic", "orders", "--json")
    (group,) = json.loads(out)
    assert group["group"] == "billing" and group["lag"] == 3
    _, out, _ = run(capsys, "groups", str(orders), "--group", "nobody", "--json")
    assert json.loads(out) == []


def test_tail_from_earliest_to_the_end(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tail", str(orders), "orders", "--from", "earliest", "-e")
    assert code == 0
    assert sorted(out.splitlines()) == [f"order {i}" for i in range(6)]


def test_tail_last_n_as_json(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Stream(orders, "orders") as stream:
        stream.append(b"\xff binary", key=b"k", headers={"h": b"v"})
    code, out, _ = run(capsys, "tail", str(orders), "orders", "--from", "-1", "-e", "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 2
    binary = next(r for r in records if r["key"] == "k")
    assert binary["payload"] == {"base64": "/yBiaW5hcnk="} and binary["headers"] == {"h": "v"}
    assert set(binary) == {"topic", "partition", "offset", "timestamp", "key", "payload", "headers"}


def test_tail_offset_partition_and_count(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "tail", str(orders), "orders", "--from", "1", "--partition", "0", "-e"
    )
    assert code == 0 and len(out.splitlines()) == 2
    code, out, _ = run(
        capsys, "tail", str(orders), "orders", "--from", "1", "--partition", "1", "-c", "1"
    )
    assert code == 0 and len(out.splitlines()) == 1


def test_tail_follows_new_records(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def append_later() -> None:
        time.sleep(0.3)
        with Stream(orders, "orders") as stream:
            stream.append(b"fresh")

    writer = threading.Thread(target=append_later)
    writer.start()
    code, out, _ = run(capsys, "tail", str(orders), "orders", "--count", "1")
    writer.join()
    assert code == 0 and out == "fresh\n"


def test_tail_as_a_group_commits_what_it_printed(
    orders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "tail", str(orders), "orders", "--group", "billing", "-e")
    with Stream(orders, "orders") as stream:
        partition0 = [r.payload.decode() for r in stream.read(0, 0)]
    assert code == 0 and out.splitlines() == partition0  # committed 0/3: only partition 0
    code, out, _ = run(capsys, "tail", str(orders), "orders", "--group", "billing", "-e")
    assert code == 3 and out == ""  # nothing left: "nothing to do"
    _, out, _ = run(capsys, "groups", str(orders), "--json")
    assert json.loads(out)[0]["lag"] == 0


def test_tail_errors(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tail", str(orders), "missing", "-e")
    assert code == 1 and "has no topic 'missing'; its topics are: orders" in err
    code, _, err = run(capsys, "tail", str(orders), "orders", "--partition", "7", "-e")
    assert code == 1 and "no partition 7" in err
    code, _, err = run(capsys, "tail", str(orders), "orders", "--group", "g", "--from", "3")
    assert code == 2 and "--from must be earliest or latest" in err
    with pytest.raises(SystemExit) as exc:
        main(["tail", str(orders), "orders", "--from", "yesterday"])
    assert exc.value.code == 2
    assert "must be earliest, latest" in capsys.readouterr().err
    code, _, err = run(capsys, "topics", str(orders.parent / "nope.db"))
    assert code == 1 and "does not exist" in err
    assert not (orders.parent / "nope.db").exists()


def test_reset_offsets(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "reset-offsets", str(orders), "orders", "billing", "--to-latest", "--dry-run"
    )
    assert code == 0 and "dry run" in out
    assert out.splitlines()[1].split() == ["0", "0", "3"]
    code, out, _ = run(
        capsys, "reset-offsets", str(orders), "orders", "billing", "--to-offset", "1", "--json"
    )
    assert code == 0
    assert json.loads(out)["partitions"] == [
        {"partition": 0, "old": 0, "new": 1},
        {"partition": 1, "old": 3, "new": 1},
    ]
    code, _, _ = run(
        capsys, "reset-offsets", str(orders), "orders", "billing", "--to-earliest",
        "--partition", "1",
    )  # fmt: skip
    assert code == 0
    code, _, _ = run(
        capsys, "reset-offsets", str(orders), "orders", "billing", "--to-timestamp",
        "2000-01-01T00:00:00",
    )  # fmt: skip
    assert code == 0
    _, out, _ = run(capsys, "groups", str(orders), "--json")
    assert [p["committed"] for p in json.loads(out)[0]["partitions"]] == [0, 0]


def test_reset_offsets_errors(orders: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "reset-offsets", str(orders), "orders", "billing", "--to-offset", "99"
    )
    assert code == 1 and "outside partition 0" in err
    with Stream(orders, "orders") as stream:
        stream.consumer("billing")
        code, _, err = run(
            capsys, "reset-offsets", str(orders), "orders", "billing", "--to-earliest"
        )
        assert code == 1 and "live member" in err
    with pytest.raises(SystemExit) as exc:
        main(["reset-offsets", str(orders), "orders", "billing"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["reset-offsets", str(orders), "orders", "billing", "--to-timestamp", "soon"])
    assert "not a time" in capsys.readouterr().err
