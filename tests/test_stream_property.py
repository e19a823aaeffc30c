"""Property: any mix of appends, polls, commits and consumer restarts delivers, per group
and per partition, exactly the appended records in offset order, resuming at the committed
offset after a restart (at-least-once), and every record eventually."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlitequeue import Stream
from sqlitequeue._stream_codec import partition_for_key

PARTITIONS = 3
GROUPS = ("a", "b")

appends = st.tuples(
    st.just("append"),
    st.lists(st.one_of(st.none(), st.sampled_from([b"k1", b"k2", b"k3"])), max_size=12),
)
polls = st.tuples(st.just("poll"), st.sampled_from(GROUPS), st.integers(1, 7))
commits = st.tuples(st.just("commit"), st.sampled_from(GROUPS))
restarts = st.tuples(st.just("restart"), st.sampled_from(GROUPS))
operations = st.lists(st.one_of(appends, polls, commits, restarts), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_every_record_in_order_once_per_group_between_restarts(ops: list[tuple]) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stream(Path(tmp) / "s.db", "t", partitions=PARTITIONS) as stream,
    ):
        log: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
        consumers = {g: stream.consumer(g) for g in GROUPS}
        position = {g: dict.fromkeys(range(PARTITIONS), 0) for g in GROUPS}
        committed = {g: dict.fromkeys(range(PARTITIONS), 0) for g in GROUPS}
        counter = 0

        def poll(group: str, max_records: int) -> int:
            records = consumers[group].poll(max_records, timeout=0)
            assert len(records) <= max_records
            for r in records:
                assert r.offset == position[group][r.partition], "contiguous, in order"
                assert r.payload == log[r.partition][r.offset]
                if r.key is not None:
                    assert r.partition == partition_for_key(r.key, PARTITIONS)
                position[group][r.partition] += 1
            return len(records)

        for op in ops:
            if op[0] == "append":
                payloads = [b"%d" % (counter + i) for i in range(len(op[1]))]
                counter += len(payloads)
                for offset, payload in zip(
                    stream.append_many(payloads, keys=op[1]), payloads, strict=True
                ):
                    assert offset.offset == len(log[offset.partition])
                    log[offset.partition].append(payload)
            elif op[0] == "poll":
                poll(op[1], op[2])
            elif op[0] == "commit":
                consumers[op[1]].commit()
                committed[op[1]] = dict(position[op[1]])
            else:  # restart without committing: resume at the committed offsets
                consumers[op[1]].close()
                consumers[op[1]] = stream.consumer(op[1])
                position[op[1]] = dict(committed[op[1]])
                assert consumers[op[1]].position() == committed[op[1]]
        for group in GROUPS:
            while poll(group, 5):
                pass
            assert position[group] == {p: len(records) for p, records in log.items()}
