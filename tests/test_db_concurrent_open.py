"""Many processes creating the same new file at once all succeed."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from sqlitequeue import Queue


def _open_and_put(path: str, barrier: object, out: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        with Queue(path) as q:
            q.put(b"x")
        out.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # report any failure to the parent
        out.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_processes_creating_one_file_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    for round_ in range(10):
        path = str(tmp_path / f"new-{round_}.db")
        barrier, out = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_and_put, args=(path, barrier, out)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert outcomes == ["ok"] * 4
        with Queue(path) as q:
            assert q.stats().pending == 4
