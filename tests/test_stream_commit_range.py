"""An explicit commit must lie in the partition's retained range (issue 15, defect 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlitequeue import OffsetOutOfRange, Retention, Stream


def retained_50_to_100(db_path: Path) -> Stream:
    """A one-partition topic whose retained offsets are 50..99 (end offset 100)."""
    stream = Stream(db_path, "t", partitions=1, retention=Retention(max_bytes=50))
    stream.append_many([b"x"] * 100)
    stream.apply_retention()
    assert (stream.earliest_offsets(), stream.end_offsets()) == ({0: 50}, {0: 100})
    return stream


@pytest.mark.parametrize("offset", [0, 10, 49, 101, 10**6])
def test_commit_outside_the_retained_range_is_refused_with_the_real_range(
    db_path: Path, offset: int
) -> None:
    with retained_50_to_100(db_path) as stream:
        consumer = stream.consumer("g")
        before = consumer.committed()
        with pytest.raises(OffsetOutOfRange, match=r"retained offsets are 50\.\.100") as info:
            consumer.commit({0: offset})
        assert f"offset {offset} " in str(info.value)
        assert consumer.committed() == before
        assert [g.partitions[0].committed for g in stream.groups()] == [before[0]]


@pytest.mark.parametrize("offset", [50, 77, 100])
def test_commit_inside_the_retained_range_is_stored(db_path: Path, offset: int) -> None:
    with retained_50_to_100(db_path) as stream:
        consumer = stream.consumer("g")
        consumer.commit({0: offset})
        assert [g.partitions[0].committed for g in stream.groups()] == [offset]
