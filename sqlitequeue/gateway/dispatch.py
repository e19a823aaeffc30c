"""Which handler answers which API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlitequeue.gateway import group_handlers as groups
from sqlitequeue.gateway import handlers as data
from sqlitequeue.gateway.context import Context
from sqlitequeue.gateway.wire import SUPPORTED, Request

Handler = Callable[[Context, Request], Awaitable[Any]]

#: api key -> handler; every key of wire.SUPPORTED has one.
HANDLERS: dict[int, Handler] = {
    0: data.produce,
    1: data.fetch,
    2: data.list_offsets,
    3: data.metadata,
    8: groups.offset_commit,
    9: groups.offset_fetch,
    10: groups.find_coordinator,
    11: groups.join_group,
    12: groups.heartbeat,
    13: groups.leave_group,
    14: groups.sync_group,
    15: groups.describe_groups,
    16: groups.list_groups,
    18: data.api_versions,
    19: data.create_topics,
    20: data.delete_topics,
    22: data.init_producer_id,
    32: data.describe_configs,
    60: data.describe_cluster,
}
assert set(HANDLERS) == set(SUPPORTED), "every supported API needs a handler"


async def dispatch(ctx: Context, request: Request) -> Any:
    """Run the handler of ``request``'s API; return its response (None: no response)."""
    return await HANDLERS[request.api_key](ctx, request)
