"""Handlers of the data and cluster APIs: ApiVersions, Metadata, topics, Produce, Fetch,
ListOffsets, InitProducerId, DescribeConfigs, DescribeCluster.

Each handler takes the server's :class:`Context` and a decoded request and returns the
response object (None when no response is due: Produce with acks=0).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka.protocol.admin import (
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
)
from kafka.protocol.consumer import FetchResponse, ListOffsetsResponse
from kafka.protocol.metadata import ApiVersionsResponse, MetadataResponse
from kafka.protocol.producer import InitProducerIdResponse, ProduceResponse

from sqlitequeue.errors import QueueError
from sqlitequeue.gateway.batches import Batch, BatchError, check_batch
from sqlitequeue.gateway.context import MAX_BATCH_BYTES, NODE_ID, Context
from sqlitequeue.gateway.wire import SUPPORTED, ErrorCode, Request
from sqlitequeue.stream import MAX_PARTITIONS, TOPIC_NAME

logger = logging.getLogger("sqlitequeue.gateway")


async def api_versions(ctx: Context, req: Request) -> Any:
    return ApiVersionsResponse(
        error_code=ErrorCode.NONE,
        api_keys=[
            ApiVersionsResponse.ApiVersion(
                api_key=key, min_version=api.min_version, max_version=api.max_version
            )
            for key, api in sorted(SUPPORTED.items())
        ],
        throttle_time_ms=0,
    )


async def metadata(ctx: Context, req: Request) -> Any:
    body = req.body
    allow = bool(body.allow_auto_topic_creation) if req.version >= 4 else True
    names = (
        ctx.log.topic_names() if body.topics is None else [t.name for t in body.topics if t.name]
    )
    topics = []
    for name in names:
        row = ctx.log.topic(name)
        if row is None and allow and ctx.log.auto_create and TOPIC_NAME.fullmatch(name):
            await ctx.writer.run(ctx.writer.log.create_topic, name, ctx.log.default_partitions)
            row = ctx.log.topic(name)
        if row is None:
            code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if not TOPIC_NAME.fullmatch(name):
                code = ErrorCode.INVALID_TOPIC_EXCEPTION
            topics.append(MetadataResponse.MetadataResponseTopic(error_code=code, name=name))
            continue
        partitions = [
            MetadataResponse.MetadataResponseTopic.MetadataResponsePartition(
                error_code=0,
                partition_index=p,
                leader_id=NODE_ID,
                leader_epoch=0,
                replica_nodes=[NODE_ID],
                isr_nodes=[NODE_ID],
                offline_replicas=[],
            )
            for p in range(row.partitions)
        ]
        topics.append(
            MetadataResponse.MetadataResponseTopic(
                error_code=0, name=name, is_internal=False, partitions=partitions
            )
        )
    return MetadataResponse(
        throttle_time_ms=0,
        brokers=[
            MetadataResponse.MetadataResponseBroker(node_id=NODE_ID, host=ctx.host, port=ctx.port)
        ],
        cluster_id=ctx.cluster_id,
        controller_id=NODE_ID,
        topics=topics,
    )


async def create_topics(ctx: Context, req: Request) -> Any:
    results = []
    for topic in req.body.topics:
        count = topic.num_partitions if topic.num_partitions > 0 else ctx.log.default_partitions
        code, message = ErrorCode.NONE, None
        if not TOPIC_NAME.fullmatch(topic.name):
            code, message = ErrorCode.INVALID_TOPIC_EXCEPTION, "invalid topic name"
        elif topic.replication_factor not in (-1, 1):
            code, message = ErrorCode.INVALID_REPLICATION_FACTOR, "one node: replication factor 1"
        elif not 1 <= count <= MAX_PARTITIONS:
            code, message = ErrorCode.INVALID_PARTITIONS, f"partitions must be 1..{MAX_PARTITIONS}"
        elif ctx.log.topic(topic.name) is not None:
            code, message = ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {topic.name!r} exists"
        elif not req.body.validate_only:
            await ctx.writer.run(ctx.writer.log.create_topic, topic.name, count)
            for config in topic.configs or ():
                if config.name == "max.message.bytes" and (config.value or "").isdigit():
                    ctx.max_message_bytes[topic.name] = int(config.value)
        results.append(
            CreateTopicsResponse.CreatableTopicResult(
                name=topic.name,
                error_code=code,
                error_message=message,
                num_partitions=count if code == 0 else -1,
                replication_factor=1 if code == 0 else -1,
                configs=[],
            )
        )
    return CreateTopicsResponse(throttle_time_ms=0, topics=results)


async def delete_topics(ctx: Context, req: Request) -> Any:
    names = [t.name for t in req.body.topics] if req.version >= 6 else req.body.topic_names
    results = []
    for name in names:
        found = await ctx.writer.run(ctx.writer.log.delete_topic, name)
        ctx.log.forget(name)
        code = ErrorCode.NONE if found else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        results.append(DeleteTopicsResponse.DeletableTopicResult(name=name, error_code=code))
    return DeleteTopicsResponse(throttle_time_ms=0, responses=results)


def _partition_response(index: int, code: int, offset: int = -1, start: int = -1) -> Any:
    return ProduceResponse.TopicProduceResponse.PartitionProduceResponse(
        index=index,
        error_code=code,
        base_offset=offset,
        log_append_time_ms=-1,
        log_start_offset=start,
        record_errors=[],
    )


async def produce(ctx: Context, req: Request) -> Any:
    """Answer one Produce request (see :func:`produce_many`)."""
    return (await produce_many(ctx, [req]))[0]


async def produce_many(ctx: Context, requests: list[Request]) -> list[Any]:
    """Check every partition's batch of every request, store the good ones in one
    transaction (one commit for requests a client pipelined), and return each request's
    response (None for acks=0) in order, once stored."""
    return await accept_produce(ctx, requests).finish(ctx)


@dataclass
class AcceptedProduce:
    """Produce requests checked by :func:`accept_produce`, their good batches not yet
    stored: :meth:`finish` waits for their commit and returns the responses."""

    requests: list[Request]
    answers: list[dict[tuple[str, int], Any]]
    writes: list[tuple[int, Batch]]
    places: list[tuple[int, tuple[str, int]]]
    stored: asyncio.Future[list[int]] | None  # the writes' offsets, once committed

    @property
    def ready(self) -> bool:
        """True once the commit succeeded (at once when the writer's fast path took it),
        or when nothing was to store: :meth:`responses` can answer without waiting or
        raising. A failed commit is not ready: :meth:`finish` settles it."""
        stored = self.stored
        if stored is None:
            return True
        return stored.done() and not stored.cancelled() and stored.exception() is None

    async def finish(self, ctx: Context) -> list[Any]:
        """Wait for the accepted batches' commit; return each request's response (None
        for acks=0) in order."""
        if self.stored is not None and not self.stored.done():
            try:
                await asyncio.wait([self.stored])
            except asyncio.CancelledError:
                for pid, _batch in self.writes:
                    ctx.producers.forget(pid)
                raise
        return self.responses(ctx)

    def responses(self, ctx: Context) -> list[Any]:
        """Each request's response (None for acks=0) in order; only once the commit is
        over (:attr:`ready`, or after :meth:`finish` waited). Settles the producers' batches;
        raises the commit's error when it is not a QueueError."""
        if self.stored is not None:
            _settle(ctx, self.stored, self.writes, self.places, self.answers)
            self.stored = None
        return [
            _produce_response(req, found)
            for req, found in zip(self.requests, self.answers, strict=True)
        ]


def accept_produce(ctx: Context, requests: list[Request]) -> AcceptedProduce:
    """Check every partition's batch of every request and submit the good ones to the
    writer, without waiting for the writer thread: the writer's fast path may commit them
    before this returns (then :attr:`AcceptedProduce.ready`). The accepted batches are in
    flight for idempotence (see :meth:`Producers.check`) until :meth:`AcceptedProduce.
    responses` (or :meth:`AcceptedProduce.finish`) settled them, so the next requests of
    a producer can be accepted while these are committed."""
    answers: list[dict[tuple[str, int], Any]] = []
    writes: list[tuple[int, Batch]] = []
    places: list[tuple[int, tuple[str, int]]] = []
    for number, req in enumerate(requests):
        answers.append({})
        if req.body.transactional_id is not None:
            continue
        for topic in req.body.topic_data:
            row = ctx.log.topic(topic.name)
            for part in topic.partition_data:
                key = (topic.name, part.index)
                if row is None or not 0 <= part.index < row.partitions:
                    answers[number][key] = _partition_response(
                        part.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    )
                    continue
                pid = row.pids[part.index]
                try:
                    batch = check_batch(part.records, ctx.batch_limit(topic.name))
                except BatchError as exc:
                    logger.warning("produce to %s[%d] refused: %s", topic.name, part.index, exc)
                    answers[number][key] = _partition_response(part.index, exc.code)
                    continue
                code, original = ctx.producers.check(pid, batch)
                if code or original is not None:
                    at = -1 if original is None else original
                    answers[number][key] = _partition_response(part.index, code, at)
                    continue
                writes.append((pid, batch))
                places.append((number, key))
    stored = ctx.writer.submit(writes) if writes else None
    return AcceptedProduce(requests, answers, writes, places, stored)


def _settle(
    ctx: Context,
    stored: asyncio.Future[list[int]],
    writes: list[tuple[int, Batch]],
    places: list[tuple[int, tuple[str, int]]],
    answers: list[dict[tuple[str, int], Any]],
) -> None:
    """Fill in the answers of committed (or failed) writes; wake the fetches."""
    failure = stored.exception() if not stored.cancelled() else asyncio.CancelledError()
    if failure is not None:
        for pid, batch in writes:  # (the writer forgot their partitions as they failed)
            if stored.cancelled():  # it may have committed all the same: reload the file
                ctx.producers.forget(pid)
            else:
                ctx.producers.failed(pid, batch)
        if not isinstance(failure, QueueError):
            raise failure
        logger.error("produce failed, nothing stored: %s", failure)
        for number, key in places:
            answers[number][key] = _partition_response(key[1], ErrorCode.KAFKA_STORAGE_ERROR)
        return
    offsets = stored.result()
    for (number, key), (pid, batch), offset in zip(places, writes, offsets, strict=True):
        ctx.producers.stored(pid, batch, offset)
        answers[number][key] = _partition_response(key[1], ErrorCode.NONE, offset, 0)
    ctx.changes.notify()


def _produce_response(req: Request, answers: dict[tuple[str, int], Any]) -> Any:
    body = req.body
    if body.transactional_id is not None:
        return _produce_refused(body, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    if body.acks == 0:
        return None
    return ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name=topic.name,
                partition_responses=[answers[(topic.name, p.index)] for p in topic.partition_data],
            )
            for topic in body.topic_data
        ],
        throttle_time_ms=0,
    )


def _produce_refused(body: Any, code: int) -> Any:
    return ProduceResponse(
        responses=[
            ProduceResponse.TopicProduceResponse(
                name=t.name,
                partition_responses=[_partition_response(p.index, code) for p in t.partition_data],
            )
            for t in body.topic_data
        ],
        throttle_time_ms=0,
    )


def _fetch_partitions(ctx: Context, body: Any) -> tuple[list[Any], int]:
    """Read every requested partition once: (topic responses, record bytes found)."""
    budget = body.max_bytes if body.max_bytes > 0 else 0x7FFFFFFF
    total = 0
    responses = []
    for topic in body.topics:
        row = ctx.log.topic(topic.topic)
        parts = []
        for part in topic.partitions:
            entry = FetchResponse.FetchableTopicResponse.PartitionData
            if row is None or not 0 <= part.partition < row.partitions:
                parts.append(
                    entry(
                        partition_index=part.partition,
                        error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        high_watermark=-1,
                        last_stable_offset=-1,
                        log_start_offset=-1,
                        aborted_transactions=None,
                        preferred_read_replica=-1,
                        records=b"",
                    )
                )
                continue
            limit = min(part.partition_max_bytes, max(budget - total, 1))
            start, end, records = ctx.log.read(row.pids[part.partition], part.fetch_offset, limit)
            code = ErrorCode.NONE
            if not start <= part.fetch_offset <= end:
                code = ErrorCode.OFFSET_OUT_OF_RANGE
            total += len(records)
            parts.append(
                entry(
                    partition_index=part.partition,
                    error_code=code,
                    high_watermark=end,
                    last_stable_offset=end,
                    log_start_offset=start,
                    aborted_transactions=None,
                    preferred_read_replica=-1,
                    records=records,
                )
            )
        responses.append(FetchResponse.FetchableTopicResponse(topic=topic.topic, partitions=parts))
    return responses, total


async def fetch(ctx: Context, req: Request) -> Any:
    """A long poll: answer at once when min_bytes are there (or on an error), else wait
    for an append (by this server or another process) until max_wait_ms."""
    body = req.body
    deadline = time.monotonic() + max(body.max_wait_ms, 0) / 1000
    while True:
        mark = ctx.changes.mark()
        responses, total = _fetch_partitions(ctx, body)
        errors = any(p.error_code for t in responses for p in t.partitions)
        left = deadline - time.monotonic()
        if total >= max(body.min_bytes, 1) or errors or left <= 0:
            break
        await ctx.changes.wait(mark, left)
    return FetchResponse(throttle_time_ms=0, error_code=0, session_id=0, responses=responses)


async def list_offsets(ctx: Context, req: Request) -> Any:
    topics = []
    for topic in req.body.topics:
        row = ctx.log.topic(topic.name)
        parts = []
        for part in topic.partitions:
            entry = ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse
            if row is None or not 0 <= part.partition_index < row.partitions:
                parts.append(
                    entry(
                        partition_index=part.partition_index,
                        error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                        timestamp=-1,
                        offset=-1,
                        leader_epoch=-1,
                    )
                )
                continue
            pid = row.pids[part.partition_index]
            start, end = ctx.log.bounds(pid)
            timestamp, offset = -1, -1
            if part.timestamp == -1:  # latest
                offset = end
            elif part.timestamp == -2:  # earliest
                offset = start
            elif part.timestamp in (-3, -4, -5):  # max timestamp, earliest local, tiered
                offset = start if part.timestamp != -3 else max(end - 1, start)
            else:
                offset, timestamp = ctx.log.offset_for_time(pid, part.timestamp)
            parts.append(
                entry(
                    partition_index=part.partition_index,
                    error_code=0,
                    timestamp=timestamp,
                    offset=offset,
                    leader_epoch=0,
                )
            )
        topics.append(
            ListOffsetsResponse.ListOffsetsTopicResponse(name=topic.name, partitions=parts)
        )
    return ListOffsetsResponse(throttle_time_ms=0, topics=topics)


async def init_producer_id(ctx: Context, req: Request) -> Any:
    if req.body.transactional_id is not None:
        code = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        return InitProducerIdResponse(
            throttle_time_ms=0, error_code=code, producer_id=-1, producer_epoch=-1
        )
    return InitProducerIdResponse(
        throttle_time_ms=0, error_code=0, producer_id=ctx.producers.new_id(), producer_epoch=0
    )


#: What DescribeConfigs reports for every topic (Kafka's defaults that hold here).
TOPIC_CONFIGS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "max.message.bytes": str(MAX_BATCH_BYTES),
    "message.timestamp.type": "CreateTime",
    "min.insync.replicas": "1",
}
BROKER_CONFIGS = {"auto.create.topics.enable": "true", "num.partitions": "1"}


async def describe_configs(ctx: Context, req: Request) -> Any:
    results = []
    for resource in req.body.resources:
        configs = TOPIC_CONFIGS if resource.resource_type == 2 else BROKER_CONFIGS
        if resource.resource_type == 2:
            limit = str(ctx.batch_limit(resource.resource_name))
            configs = {**configs, "max.message.bytes": limit}
        code = ErrorCode.NONE
        if resource.resource_type == 2 and ctx.log.topic(resource.resource_name) is None:
            code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        wanted = resource.configuration_keys
        results.append(
            DescribeConfigsResponse.DescribeConfigsResult(
                error_code=code,
                error_message=None,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
                configs=[
                    DescribeConfigsResponse.DescribeConfigsResult.DescribeConfigsResourceResult(
                        name=name,
                        value=value,
                        read_only=True,
                        config_source=5,  # DEFAULT_CONFIG
                        is_default=True,
                        is_sensitive=False,
                        synonyms=[],
                        config_type=0,
                        documentation=None,
                    )
                    for name, value in configs.items()
                    if wanted is None or name in wanted
                ]
                if code == 0
                else [],
            )
        )
    return DescribeConfigsResponse(throttle_time_ms=0, results=results)


async def describe_cluster(ctx: Context, req: Request) -> Any:
    return DescribeClusterResponse(
        throttle_time_ms=0,
        error_code=0,
        error_message=None,
        endpoint_type=1,
        cluster_id=ctx.cluster_id,
        controller_id=NODE_ID,
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(
                broker_id=NODE_ID, host=ctx.host, port=ctx.port, rack=None, is_fenced=False
            )
        ],
    )
