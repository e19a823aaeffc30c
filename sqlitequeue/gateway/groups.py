"""Kafka's classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.

Group membership lives in the server's memory, as on a Kafka group coordinator; committed
offsets live in the file (:meth:`Log.commit`). A rebalance starts when a member joins,
leaves, changes its subscription or misses its session timeout; it completes once every
known member has joined again (members that do not within the rebalance timeout are
dropped). The first member to join is the leader: it gets everyone's subscriptions and
sends the assignment in SyncGroup, which the coordinator hands out to each member.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from sqlitequeue.gateway.wire import ErrorCode

logger = logging.getLogger("sqlitequeue.gateway")


class GroupState(StrEnum):
    """A group's state, named as Kafka's DescribeGroups reports it."""

    EMPTY = "Empty"
    PREPARING = "PreparingRebalance"
    COMPLETING = "CompletingRebalance"
    STABLE = "Stable"


@dataclass
class Member:
    """One member: its subscription (protocols), assignment and liveness."""

    member_id: str
    client_id: str
    client_host: str
    session_timeout: float
    rebalance_timeout: float
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    last_seen: float = field(default_factory=time.monotonic)
    join: asyncio.Future[JoinResult] | None = None
    sync: asyncio.Future[tuple[int, bytes]] | None = None


@dataclass(frozen=True)
class JoinResult:
    """What JoinGroup answers a member."""

    error: int
    generation: int = -1
    protocol: str = ""
    leader: str = ""
    member_id: str = ""
    members: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Group:
    """A group's members and its current generation."""

    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str = ""
    protocol: str = ""
    leader: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    rebalance_deadline: float = 0.0

    def choose_protocol(self) -> str:
        """The first protocol (in the leader's order) that every member supports."""
        common = set.intersection(
            *({name for name, _ in m.protocols} for m in self.members.values())
        )
        first = next(iter(self.members.values()))
        return next((name for name, _ in first.protocols if name in common), "")


class Coordinator:
    """Every group of the server. Call :meth:`expire` periodically (session timeouts)."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}

    def group(self, group_id: str) -> Group:
        return self.groups.setdefault(group_id, Group(group_id))

    async def join(
        self,
        group_id: str,
        member_id: str,
        *,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member: bool,
    ) -> JoinResult:
        """Handle JoinGroup: answer once the rebalance this join takes part in completes."""
        group = self.group(group_id)
        if group.members and protocol_type != group.protocol_type:
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if not member_id:
            member_id = f"{client_id or 'member'}-{uuid.uuid4()}"
            if require_known_member:  # KIP-394: the member joins again with this id
                return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=member_id)
        member = group.members.get(member_id)
        if member is None:
            member = Member(
                member_id,
                client_id,
                client_host,
                session_timeout_ms / 1000,
                rebalance_timeout_ms / 1000,
                protocol_type,
                protocols,
            )
            group.members[member_id] = member
            group.protocol_type = protocol_type
            self._prepare(group, f"{member_id} joined")
        elif member.protocols != protocols or group.state is not GroupState.PREPARING:
            member.protocols = protocols
            self._prepare(group, f"{member_id} joined again")
        member.last_seen = time.monotonic()
        if member.join is not None and not member.join.done():
            member.join.set_result(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID))
        member.join = asyncio.get_running_loop().create_future()
        future = member.join
        self._maybe_complete_join(group)
        return await future

    def _prepare(self, group: Group, why: str) -> None:
        if group.state is not GroupState.PREPARING:
            logger.info("group %r: rebalancing (%s)", group.group_id, why)
            group.state = GroupState.PREPARING
            timeout = max((m.rebalance_timeout for m in group.members.values()), default=0)
            group.rebalance_deadline = time.monotonic() + timeout
            for member in group.members.values():  # a waiting SyncGroup must join again
                if member.sync is not None and not member.sync.done():
                    member.sync.set_result((ErrorCode.REBALANCE_IN_PROGRESS, b""))

    def _maybe_complete_join(self, group: Group, force: bool = False) -> None:
        if group.state is not GroupState.PREPARING:
            return
        pending = [m for m in group.members.values() if m.join is None or m.join.done()]
        if pending and not force:
            return
        for member in pending:  # did not join again within the rebalance timeout
            logger.info("group %r: %s did not rejoin in time", group.group_id, member.member_id)
            del group.members[member.member_id]
        if not group.members:
            group.state = GroupState.EMPTY
            group.generation += 1
            return
        group.generation += 1
        group.protocol = group.choose_protocol()
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = GroupState.COMPLETING
        subscriptions = tuple(
            (m.member_id, dict(m.protocols).get(group.protocol, b""))
            for m in group.members.values()
        )
        for member in group.members.values():
            member.last_seen = time.monotonic()
            result = JoinResult(
                ErrorCode.NONE,
                group.generation,
                group.protocol,
                group.leader,
                member.member_id,
                subscriptions if member.member_id == group.leader else (),
            )
            if member.join is not None and not member.join.done():
                member.join.set_result(result)

    async def sync(
        self, group_id: str, member_id: str, generation: int, assignments: dict[str, bytes]
    ) -> tuple[int, bytes]:
        """Handle SyncGroup: (error, this member's assignment) once the leader sent them."""
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID, b""
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION, b""
        if group.state is GroupState.PREPARING:
            return ErrorCode.REBALANCE_IN_PROGRESS, b""
        member = group.members[member_id]
        member.last_seen = time.monotonic()
        if group.state is GroupState.STABLE:
            return ErrorCode.NONE, member.assignment
        member.sync = asyncio.get_running_loop().create_future()
        future = member.sync
        if member_id == group.leader:
            for other in group.members.values():
                other.assignment = assignments.get(other.member_id, b"")
            group.state = GroupState.STABLE
            logger.info(
                "group %r: generation %d stable with %d member(s)",
                group.group_id,
                group.generation,
                len(group.members),
            )
            for other in group.members.values():
                if other.sync is not None and not other.sync.done():
                    other.sync.set_result((ErrorCode.NONE, other.assignment))
        return await future

    def heartbeat(self, group_id: str, member_id: str, generation: int) -> int:
        """Handle Heartbeat: an error code (REBALANCE_IN_PROGRESS asks the member to rejoin)."""
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        group.members[member_id].last_seen = time.monotonic()
        if group.state is GroupState.PREPARING:
            return ErrorCode.REBALANCE_IN_PROGRESS
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        return ErrorCode.NONE

    def leave(self, group_id: str, member_id: str) -> int:
        """Handle one member of LeaveGroup: drop it and rebalance the rest."""
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self._remove(group, member_id, "left")
        return ErrorCode.NONE

    def _remove(self, group: Group, member_id: str, why: str) -> None:
        member = group.members.pop(member_id)
        for future in (member.join, member.sync):
            if future is not None and not future.done():
                future.set_result(
                    JoinResult(ErrorCode.UNKNOWN_MEMBER_ID)
                    if future is member.join
                    else (ErrorCode.UNKNOWN_MEMBER_ID, b"")  # type: ignore[arg-type]
                )
        if not group.members:
            group.state = GroupState.EMPTY
            group.generation += 1
            logger.info("group %r: %s %s; the group is empty", group.group_id, member_id, why)
            return
        self._prepare(group, f"{member_id} {why}")
        self._maybe_complete_join(group)

    def check_commit(self, group_id: str, member_id: str, generation: int) -> int:
        """May this OffsetCommit be stored? (generation -1: a commit outside a group)."""
        if generation < 0:
            return ErrorCode.NONE
        group = self.groups.get(group_id)
        if group is None or member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        if group.state is GroupState.PREPARING:
            return ErrorCode.REBALANCE_IN_PROGRESS
        group.members[member_id].last_seen = time.monotonic()
        return ErrorCode.NONE

    def expire(self) -> None:
        """Drop members past their session timeout; end rebalances past their timeout."""
        now = time.monotonic()
        for group in list(self.groups.values()):
            for member in list(group.members.values()):
                waiting = member.join is not None and not member.join.done()
                if not waiting and now - member.last_seen > member.session_timeout:
                    self._remove(group, member.member_id, "timed out")
            if group.state is GroupState.PREPARING and now >= group.rebalance_deadline:
                self._maybe_complete_join(group, force=True)
