"""Handlers of the group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups."""

from __future__ import annotations

from typing import Any

from kafka.protocol.admin import DescribeGroupsResponse, ListGroupsResponse
from kafka.protocol.consumer import (
    HeartbeatResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    SyncGroupResponse,
)
from kafka.protocol.metadata import FindCoordinatorResponse

from sqlitequeue.gateway.context import NODE_ID, Context
from sqlitequeue.gateway.groups import GroupState
from sqlitequeue.gateway.wire import ErrorCode, Request

GROUP_KEY = 0


async def find_coordinator(ctx: Context, req: Request) -> Any:
    body = req.body
    key_type = body.key_type if req.version >= 1 else GROUP_KEY
    code = (
        ErrorCode.NONE if key_type == GROUP_KEY else ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )
    message = None if code == 0 else "transactions are not supported by sqlitequeue serve"
    if req.version >= 4:
        return FindCoordinatorResponse(
            throttle_time_ms=0,
            coordinators=[
                FindCoordinatorResponse.Coordinator(
                    key=key,
                    node_id=NODE_ID,
                    host=ctx.host,
                    port=ctx.port,
                    error_code=code,
                    error_message=message,
                )
                for key in body.coordinator_keys
            ],
        )
    return FindCoordinatorResponse(
        throttle_time_ms=0,
        error_code=code,
        error_message=message,
        node_id=NODE_ID,
        host=ctx.host,
        port=ctx.port,
    )


async def join_group(ctx: Context, req: Request) -> Any:
    body = req.body
    result = await ctx.coordinator.join(
        body.group_id,
        body.member_id,
        client_id=req.client_id or "",
        client_host=ctx.host,
        session_timeout_ms=body.session_timeout_ms,
        rebalance_timeout_ms=body.rebalance_timeout_ms
        if req.version >= 1
        else body.session_timeout_ms,
        protocol_type=body.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in body.protocols],
        require_known_member=req.version >= 4,
    )
    return JoinGroupResponse(
        throttle_time_ms=0,
        error_code=result.error,
        generation_id=result.generation,
        protocol_type=body.protocol_type,
        protocol_name=result.protocol or None,
        leader=result.leader,
        skip_assignment=False,
        member_id=result.member_id or body.member_id,
        members=[
            JoinGroupResponse.JoinGroupResponseMember(
                member_id=m, group_instance_id=None, metadata=meta
            )
            for m, meta in result.members
        ],
    )


async def sync_group(ctx: Context, req: Request) -> Any:
    body = req.body
    assignments = {a.member_id: bytes(a.assignment) for a in body.assignments}
    code, assignment = await ctx.coordinator.sync(
        body.group_id, body.member_id, body.generation_id, assignments
    )
    group = ctx.coordinator.groups.get(body.group_id)
    return SyncGroupResponse(
        throttle_time_ms=0,
        error_code=code,
        protocol_type=group.protocol_type if group else None,
        protocol_name=group.protocol if group else None,
        assignment=assignment,
    )


async def heartbeat(ctx: Context, req: Request) -> Any:
    body = req.body
    code = ctx.coordinator.heartbeat(body.group_id, body.member_id, body.generation_id)
    return HeartbeatResponse(throttle_time_ms=0, error_code=code)


async def leave_group(ctx: Context, req: Request) -> Any:
    body = req.body
    if req.version >= 3:
        members = [
            LeaveGroupResponse.MemberResponse(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                error_code=ctx.coordinator.leave(body.group_id, m.member_id),
            )
            for m in body.members
        ]
        return LeaveGroupResponse(throttle_time_ms=0, error_code=0, members=members)
    code = ctx.coordinator.leave(body.group_id, body.member_id)
    return LeaveGroupResponse(throttle_time_ms=0, error_code=code)


async def offset_commit(ctx: Context, req: Request) -> Any:
    body = req.body
    code = ctx.coordinator.check_commit(
        body.group_id, body.member_id, body.generation_id_or_member_epoch
    )
    entry = OffsetCommitResponse.OffsetCommitResponseTopic.OffsetCommitResponsePartition
    topics = []
    writes = []
    for topic in body.topics:
        row = ctx.log.topic(topic.name)
        parts = []
        for part in topic.partitions:
            part_code = code
            if not part_code and (row is None or not 0 <= part.partition_index < row.partitions):
                part_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if not part_code and row is not None:
                writes.append((row.pids[part.partition_index], part.committed_offset))
            parts.append(entry(partition_index=part.partition_index, error_code=part_code))
        topics.append(
            OffsetCommitResponse.OffsetCommitResponseTopic(name=topic.name, partitions=parts)
        )
    if writes:
        await ctx.writer.run(ctx.writer.log.commit, body.group_id, writes)
    return OffsetCommitResponse(throttle_time_ms=0, topics=topics)


def _group_offsets(
    ctx: Context, group_id: str, topics: Any
) -> list[tuple[str, list[tuple[int, int, int]]]]:
    """[(topic, [(partition, committed offset or -1, error)])] for an OffsetFetch."""
    if topics is None:
        found: dict[str, list[tuple[int, int, int]]] = {}
        for name, partition, offset in ctx.log.group_offsets(group_id):
            found.setdefault(name, []).append((partition, offset, 0))
        return list(found.items())
    result = []
    for name, indexes in topics:
        row = ctx.log.topic(name)
        if row is None:
            result.append((name, [(p, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION) for p in indexes]))
            continue
        pids = [row.pids[p] for p in indexes if 0 <= p < row.partitions]
        committed = ctx.log.committed(group_id, pids)
        result.append(
            (
                name,
                [
                    (p, committed.get(row.pids[p], -1), 0)
                    if 0 <= p < row.partitions
                    else (p, -1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                    for p in indexes
                ],
            )
        )
    return result


async def offset_fetch(ctx: Context, req: Request) -> Any:
    body = req.body
    if req.version >= 8:
        groups = []
        for group in body.groups:
            wanted = (
                None
                if group.topics is None
                else [(t.name, t.partition_indexes) for t in group.topics]
            )
            groups.append(
                OffsetFetchResponse.OffsetFetchResponseGroup(
                    group_id=group.group_id,
                    error_code=0,
                    topics=[
                        OffsetFetchResponse.OffsetFetchResponseGroup.OffsetFetchResponseTopics(
                            name=name,
                            partitions=[
                                OffsetFetchResponse.OffsetFetchResponseGroup.OffsetFetchResponseTopics.OffsetFetchResponsePartitions(
                                    partition_index=p,
                                    committed_offset=off,
                                    committed_leader_epoch=-1,
                                    metadata="",
                                    error_code=err,
                                )
                                for p, off, err in parts
                            ],
                        )
                        for name, parts in _group_offsets(ctx, group.group_id, wanted)
                    ],
                )
            )
        return OffsetFetchResponse(throttle_time_ms=0, groups=groups)
    wanted = None if body.topics is None else [(t.name, t.partition_indexes) for t in body.topics]
    return OffsetFetchResponse(
        throttle_time_ms=0,
        error_code=0,
        topics=[
            OffsetFetchResponse.OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    OffsetFetchResponse.OffsetFetchResponseTopic.OffsetFetchResponsePartition(
                        partition_index=p,
                        committed_offset=off,
                        committed_leader_epoch=-1,
                        metadata="",
                        error_code=err,
                    )
                    for p, off, err in parts
                ],
            )
            for name, parts in _group_offsets(ctx, body.group_id, wanted)
        ],
    )


async def list_groups(ctx: Context, req: Request) -> Any:
    listed = {g.group_id: (g.protocol_type, g.state.value) for g in ctx.coordinator.groups.values()}
    for name in ctx.log.stored_groups():  # Stream groups and idle Kafka groups
        listed.setdefault(name, ("consumer", GroupState.EMPTY.value))
    states = set(req.body.states_filter or []) if req.version >= 4 else set()
    return ListGroupsResponse(
        throttle_time_ms=0,
        error_code=0,
        groups=[
            ListGroupsResponse.ListedGroup(
                group_id=name, protocol_type=ptype, group_state=state, group_type="classic"
            )
            for name, (ptype, state) in sorted(listed.items())
            if not states or state in states
        ],
    )


async def describe_groups(ctx: Context, req: Request) -> Any:
    described = []
    for group_id in req.body.groups:
        group = ctx.coordinator.groups.get(group_id)
        stored = group is not None or group_id in ctx.log.stored_groups()
        members = []
        if group is not None and group.state is not GroupState.EMPTY:
            members = [
                DescribeGroupsResponse.DescribedGroup.DescribedGroupMember(
                    member_id=m.member_id,
                    group_instance_id=None,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    member_metadata=dict(m.protocols).get(group.protocol, b""),
                    member_assignment=m.assignment,
                )
                for m in group.members.values()
            ]
        state = group.state.value if group is not None else ("Empty" if stored else "Dead")
        described.append(
            DescribeGroupsResponse.DescribedGroup(
                error_code=0,
                group_id=group_id,
                group_state=state,
                protocol_type=(group.protocol_type if group else "consumer") if stored else "",
                protocol_data=group.protocol if group else "",
                members=members,
            )
        )
    return DescribeGroupsResponse(throttle_time_ms=0, groups=described)
