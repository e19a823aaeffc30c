"""The failure lab's gateway case: ``sqlitequeue serve`` SIGKILLed and restarted, for real.

A confluent-kafka producer (acks=all, idempotent) and a consumer group of two run against a
``sqlitequeue serve`` process; the lab SIGKILLs it and starts it again on the same port and
file. The test re-derives what matters from the files the trial left (the workers' ledgers
and the SQLite file itself, read through ``Stream``), not from the lab's own arithmetic.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sqlitequeue import stream
from sqlitequeue.bench.errors import BenchError
from sqlitequeue.bench.faults import experiments
from sqlitequeue.bench.faults.kafka_trials import GroupResume
from sqlitequeue.bench.faults.lab import QUICK, Lab
from sqlitequeue.bench.faults.ledger import Event, read_ledger
from sqlitequeue.bench.results import load
from tests.helpers import REPO, wait_gone

SMALL = QUICK.with_(rate=150.0, before_s=1.0, after_s=1.0, bin_s=0.25)


def ids(
    ledger: Path, kind: str, before: float | None = None, after: float | None = None
) -> set[int]:
    """The ids of ``kind`` events in ``ledger``, optionally only before/after a time."""
    return {
        i
        for e in read_ledger(ledger)
        if e.kind == kind and (before is None or e.at < before) and (after is None or e.at > after)
        for i in e.ids
    }


def stored_ids(file: Path, topic: str) -> list[int]:
    """Every record's message id in ``topic`` of the gateway's file, through ``Stream``."""
    s = stream.Stream(file, topic, create=False)
    try:
        found = []
        for partition, end in s.end_offsets().items():
            offset = 0
            while offset < end:
                records = s.read(partition, offset)
                found += [int(r.payload[:12]) for r in records]
                offset = records[-1].offset + 1
        return found
    finally:
        s.close()


def pid_in(detail: str) -> int:
    found = re.search(r"pid (\d+)", detail)
    assert found, detail
    return int(found.group(1))


def test_server_sigkill_and_restart_loses_nothing_and_the_group_resumes(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "lab", SMALL)
    folder = experiments.run_faults(
        experiments=["broker-kill:gateway"],
        repeats=1,
        out=tmp_path / "results",
        lab=lab,
        scale=SMALL,
    )
    res = load(folder)
    row = res.tables["faults"].iloc[0]
    assert (row.experiment, row.backend, row.durability) == ("broker-kill", "gateway", "acks=all")
    assert not str(row.notes).startswith(("failed", "unavailable")), row.notes
    assert row.lost == 0 and row.rpo_messages == 0
    assert 0 < row.rto_s < 60  # finite: writes were acknowledged again after the restart

    events = res.tables["fault_events"]
    by_name = {e.event: e for e in events.itertuples()}
    assert list(events.event) == [
        "server SIGKILL",
        "server restarted",
        "first ack after the kill",
        "consumers resumed",
    ]
    killed = pid_in(by_name["server SIGKILL"].detail)
    restarted = pid_in(by_name["server restarted"].detail)
    assert killed != restarted  # a new process, on the same port and file
    assert wait_gone([killed, restarted])  # killed, then stopped: none left
    assert row.rto_s >= by_name["server restarted"].t  # no ack while the server was down
    assert by_name["consumers resumed"].t > 0

    # independently of the lab: every acknowledged id is in the file, read through Stream
    d = lab.work_dir / "broker-kill-gateway-acks=all-r1"
    topic = (d / "topic").read_text()
    acked = ids(d / "producer.ledger", "A")
    stored = stored_ids(d / "gateway.sqlite", topic)
    assert acked and acked <= set(stored)
    assert row.acknowledged == len(acked)

    # the group resumed from its committed offsets: nothing committed before the kill came
    # again, every acknowledged record was processed, and the file holds the final offsets
    t_fault = by_name["server SIGKILL"].at
    consumers = sorted(d.glob("consumer*.ledger"))
    assert len(consumers) == 2
    committed = set().union(*(ids(c, "C", before=t_fault) for c in consumers))
    again = set().union(*(ids(c, "P", after=t_fault) for c in consumers))
    assert committed and not committed & again
    assert acked <= set().union(*(ids(c, "P") for c in consumers))
    (group,) = stream.groups(d / "gateway.sqlite", topic=topic)
    assert group.lag == 0

    check_decide_and_report_read_it(folder, tmp_path / "report", float(row.rto_s))


def check_decide_and_report_read_it(folder: Path, out: Path, rto_s: float) -> None:
    """decide names the gateway's figures beside SQLite's (not judged); the report shows them."""
    from sqlitequeue.bench.decide.evidence import gather_evidence
    from sqlitequeue.bench.decide.team_profile import load_profile
    from sqlitequeue.bench.decide.verdict import evaluate
    from sqlitequeue.bench.report.faults import render_faults_section
    from sqlitequeue.bench.report.notebook import recovery_table

    table = recovery_table(folder)
    (gateway,) = table[table.system == "Gateway (acks=all)"].to_dict("records")
    assert gateway["write unavailability, worst s"] == pytest.approx(rto_s)
    assert gateway["measured by"] == "broker-kill" and gateway["acknowledged lost"] == 0

    seed = load_profile(REPO / "examples" / "profiles" / "seed.yaml")
    decision = evaluate(seed, gather_evidence([folder]))
    criteria = {c.key: c for c in decision.criteria}
    down, loss = criteria["write_unavailability"], criteria["data_loss"]
    assert "through sqlitequeue serve (not judged): writes back within" in down.evidence
    assert "server kill (SIGKILL, restarted at once)" in down.evidence
    assert "through sqlitequeue serve (not judged): 0 acknowledged messages lost" in loss.evidence
    assert down.status == loss.status == "unknown"  # no SQLite host loss here: not judged

    section = render_faults_section(folder, out)
    assert "| broker-kill | gateway | acks=all |" in section
    assert "broker-kill · gateway: nothing acknowledged was lost" in section


def test_group_resume_counts_committed_records_delivered_again() -> None:
    produced = [Event(1.0, "S", (1, 2, 3)), Event(1.1, "A", (1, 2, 3)), Event(5.0, "S", (4,))]
    produced.append(Event(6.0, "A", (4,)))
    consumed = [
        Event(1.2, "P", (1, 2)),
        Event(1.3, "C", (1, 2)),
        Event(3.0, "P", (2, 3)),  # 2 was committed before the fault at t=2: offsets lost
        Event(7.0, "P", (4,)),
    ]
    resume = GroupResume.of(produced, consumed, t_fault=2.0)
    assert resume == GroupResume(resumed_s=5.0, again=1, committed_again=1, not_consumed=0)
    assert "1 of them committed before the fault" in resume.notes(2)
    assert GroupResume.of(produced, consumed[:2], 2.0).resumed_s is None


def test_the_gateway_case_is_selectable_by_name_with_a_hint_for_typos() -> None:
    picked = experiments.select_cases(["broker-kill"])
    assert [c.backend for c, _ in picked] == ["gateway", "kafka"]
    assert [c.label for c, _ in experiments.select_cases(["broker-kill:gateway"])] == [
        "broker-kill/gateway/acks=all"
    ]
    assert "broker-kill/gateway/acks=all" in [c.label for c, _ in experiments.select_cases()]
    with pytest.raises(BenchError, match="did you mean 'broker-kill:gateway'"):
        experiments.select_cases(["broker-kill:gatway"])


def test_a_sigkilled_harness_leaves_no_server_behind(tmp_path: Path) -> None:
    """The failure lab's server dies with the harness that started it (the kernel kills it)."""
    file, log = tmp_path / "gateway.sqlite", tmp_path / "server.log"
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from sqlitequeue.bench.backends.gateway_process import ServeProcess\n"
        f"server = ServeProcess(Path({str(file)!r}), Path({str(log)!r})).start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    server = 0
    try:
        assert harness.stdout is not None
        server = int(harness.stdout.readline())
        assert not wait_gone([server], timeout=0)  # it serves ...
        harness.kill()
        harness.wait(10)
        assert wait_gone([server])  # ... and is gone with its harness
    finally:
        harness.kill()
        harness.wait(10)
        if server:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server, signal.SIGKILL)


def test_a_server_that_cannot_start_is_an_error_with_its_log(tmp_path: Path) -> None:
    from sqlitequeue.bench.backends.gateway_process import ServeProcess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServeProcess(tmp_path / "g.sqlite", tmp_path / "server.log", port)
        with pytest.raises(BenchError, match=r"did not start(.|\n)*choose another --port"):
            server.start()
    assert not server.running and wait_gone(server.pids)
