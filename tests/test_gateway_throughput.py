"""The gateway's writer under load: what a produce waits for, and what it does not."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sqlitequeue.gateway import writer as writer_module
from sqlitequeue.gateway.batches import check_batch
from sqlitequeue.gateway.storage import Log
from sqlitequeue.gateway.writer import Writer
from tests.test_gateway_protocol import batch


def test_appends_commit_while_a_checkpoint_runs(db_path: Path) -> None:
    """A checkpoint (tens of ms of copying and syncing) runs beside the appends: the
    produces that arrive meanwhile are committed and answered without waiting for it."""
    setup = Log(db_path)
    setup.create_topic("t", 1)
    setup.close()
    release = threading.Event()
    started = threading.Event()

    async def scenario() -> list[int]:
        writer = Writer(Log(db_path))
        real = writer._checkpoint_log.checkpoint

        def held_checkpoint() -> None:
            started.set()
            release.wait(30)
            real()

        writer._checkpoint_log.checkpoint = held_checkpoint  # type: ignore[method-assign]
        pid = writer.log.topic("t").pids[0]  # type: ignore[union-attr]
        one = check_batch(batch([b"x" * 1000]), 1 << 20)
        try:
            writer._unchecked = writer_module.CHECKPOINT_PAGES  # a checkpoint is due
            offsets = [(await writer.append([(pid, one)]))[0]]
            assert await asyncio.to_thread(started.wait, 30)  # it runs, and is held
            for _ in range(3):  # each commits while the checkpoint is still held
                offsets.append((await asyncio.wait_for(writer.append([(pid, one)]), 30))[0])
            assert not release.is_set()
            return offsets
        finally:
            release.set()
            await asyncio.to_thread(writer.close)

    assert asyncio.run(scenario()) == [0, 1, 2, 3]
    check = Log(db_path)
    try:
        assert check.bounds(check.topic("t").pids[0]) == (0, 4)  # type: ignore[union-attr]
    finally:
        check.close()
