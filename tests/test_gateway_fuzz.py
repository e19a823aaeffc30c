"""Garbage on the wire: whatever bytes a client sends, the server stays up for the others
and the file is not changed (hypothesis-generated frames)."""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

from sqlitequeue import Stream
from sqlitequeue.gateway import serve
from tests.gateway_wire import RawConnection

#: Frames that start like real requests of every supported API (key, version) and go on
#: with random bytes, plus wholly random bytes with and without a size prefix.
HEADER_PREFIXES = st.tuples(
    st.sampled_from([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 32, 60, 99]),
    st.integers(min_value=-1, max_value=20),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
FRAMES = st.one_of(
    st.builds(
        lambda head, body: struct.pack(">hhi", *head) + body,
        HEADER_PREFIXES,
        st.binary(max_size=300),
    ).map(lambda frame: struct.pack(">i", len(frame)) + frame),
    st.binary(min_size=1, max_size=300),
    st.binary(max_size=300).map(lambda frame: struct.pack(">i", len(frame)) + frame),
)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for suffix in ("", "-wal"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            digest.update(part.read_bytes())
    return digest.hexdigest()


def test_garbage_frames_leave_the_server_up_and_the_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.db"
    with Stream(path, "t", partitions=2) as stream:
        stream.append_many([b"kept"] * 5)
    before = file_digest(path)
    with serve(path, auto_create=False) as server:

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(frame=FRAMES)
        def send(frame: bytes) -> None:
            bad = RawConnection(server.bootstrap)
            with contextlib.suppress(OSError):  # the server may have closed it already
                bad.send_bytes(frame)
            bad.close()
            probe = RawConnection(server.bootstrap)
            assert probe.request(ApiVersionsRequest(), 3, ApiVersionsResponse).error_code == 0
            probe.close()

        send()
    assert file_digest(path) == before
    with Stream(path, "t") as stream:
        assert sum(stream.end_offsets().values()) == 5


def test_a_stalled_client_does_not_block_the_others(tmp_path: Path) -> None:
    with serve(tmp_path / "slow.db") as server:
        stalled = RawConnection(server.bootstrap)
        stalled.send_bytes(struct.pack(">i", 1000) + b"\x00\x03")  # half a request, then silence
        for _ in range(3):
            probe = RawConnection(server.bootstrap)
            assert probe.request(ApiVersionsRequest(), 3, ApiVersionsResponse).error_code == 0
            probe.close()
        stalled.close()
