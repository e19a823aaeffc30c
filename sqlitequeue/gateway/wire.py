"""Kafka's wire format: which APIs and versions the gateway speaks, and frame decoding.

Message types come from kafka-python's protocol module (``kafka.protocol``), which is
generated from Kafka's own JSON message schemas; nothing here encodes a field by hand.
:data:`SUPPORTED` lists each API with the version range advertised in ApiVersions: the
floor is Kafka 4.0's (KIP-896, the schemas' ``validVersions``), the ceiling the newest
version whose fields the gateway fills in (e.g. Produce and Fetch stop before topic ids).

:func:`decode_request` raises :class:`FrameError` for anything that is not a well-formed
request of a supported API version; the server then closes that connection.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

from kafka.protocol.admin import (
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeClusterRequest,
    DescribeConfigsRequest,
    DescribeGroupsRequest,
    ListGroupsRequest,
)
from kafka.protocol.api_header import RequestHeader, ResponseHeader
from kafka.protocol.consumer import (
    FetchRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    ListOffsetsRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FindCoordinatorRequest,
    MetadataRequest,
)
from kafka.protocol.producer import InitProducerIdRequest, ProduceRequest


class ErrorCode:
    """Kafka's error codes the gateway answers with (see Kafka's ``Errors.java``)."""

    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    MESSAGE_TOO_LARGE = 10
    COORDINATOR_NOT_AVAILABLE = 15
    INVALID_TOPIC_EXCEPTION = 17
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    UNSUPPORTED_VERSION = 35
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REQUEST = 42
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    INVALID_PRODUCER_EPOCH = 47
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
    KAFKA_STORAGE_ERROR = 56
    GROUP_ID_NOT_FOUND = 69
    UNSUPPORTED_COMPRESSION_TYPE = 76
    MEMBER_ID_REQUIRED = 79
    INVALID_RECORD = 87


@dataclass(frozen=True)
class Api:
    """One API the gateway answers: its request class and advertised versions."""

    request: Any
    min_version: int
    max_version: int


def _api(request: Any, max_version: int) -> tuple[int, Api]:
    floor = int(request.json["validVersions"].split("-")[0])
    return int(request.API_KEY), Api(request, floor, min(max_version, request.max_version))


#: api key -> what the gateway supports (Kafka 4.0 floors; ceilings as noted).
SUPPORTED: dict[int, Api] = dict(
    [
        _api(ProduceRequest, 12),  # v13 names topics by id
        _api(FetchRequest, 12),  # v13 names topics by id
        _api(ListOffsetsRequest, 9),
        _api(MetadataRequest, 12),
        _api(OffsetCommitRequest, 9),  # v10 names topics by id
        _api(OffsetFetchRequest, 9),  # v10 names topics by id
        _api(FindCoordinatorRequest, 6),
        _api(JoinGroupRequest, 9),
        _api(HeartbeatRequest, 4),
        _api(LeaveGroupRequest, 5),
        _api(SyncGroupRequest, 5),
        _api(DescribeGroupsRequest, 5),
        _api(ListGroupsRequest, 4),
        _api(ApiVersionsRequest, 4),
        _api(CreateTopicsRequest, 7),
        _api(DeleteTopicsRequest, 5),  # v6 names topics by id
        _api(InitProducerIdRequest, 5),
        _api(DescribeConfigsRequest, 4),
        _api(DescribeClusterRequest, 1),
    ]
)

_PREFIX = struct.Struct(">hhi")
API_VERSIONS = 18


class FrameError(Exception):
    """A frame that is not a request the gateway can answer; its connection is closed."""


@dataclass(frozen=True)
class Request:
    """A decoded request: header fields, the message, and its version."""

    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    body: Any


def peek(frame: bytes) -> tuple[int, int, int]:
    """Return (api key, api version, correlation id) of a frame; FrameError if too short."""
    if len(frame) < _PREFIX.size:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than a request header")
    api_key, version, correlation_id = _PREFIX.unpack_from(frame)
    return api_key, version, correlation_id


def decode_request(frame: bytes) -> Request:
    """Decode one request frame (without its size prefix); raise FrameError if malformed."""
    api_key, version, correlation_id = peek(frame)
    api = SUPPORTED.get(api_key)
    if api is None:
        raise FrameError(f"unsupported API key {api_key}")
    if not api.min_version <= version <= api.max_version:
        raise FrameError(
            f"unsupported version {version} of {api.request.__name__} "
            f"(supported {api.min_version}-{api.max_version})"
        )
    try:
        flexible = api.request.flexible_version_q(version)
        data = io.BytesIO(frame)
        header = RequestHeader.decode(data, flexible=flexible)
        body = api.request.decode(memoryview(frame)[data.tell() :], version=version)
    except Exception as exc:  # the library raises many types on truncated or bad bytes
        raise FrameError(f"malformed {api.request.__name__} v{version}: {exc!r}") from exc
    return Request(api_key, version, correlation_id, header.client_id, body)


#: What follows the correlation id in a response header (the library's encoding of an
#: empty one; flexible headers end with their tagged fields), by flexibility.
_HEADER_TAIL = {
    flexible: bytes(ResponseHeader(correlation_id=0).encode(flexible=flexible))[4:]
    for flexible in (False, True)
}
_SIZE_AND_ID = struct.Struct(">ii")


def _frame(correlation_id: int, flexible: bool, body: bytes) -> bytes:
    tail = _HEADER_TAIL[flexible]
    size = _SIZE_AND_ID.size - 4 + len(tail) + len(body)
    return b"".join((_SIZE_AND_ID.pack(size, correlation_id), tail, body))


def encode_response(request: Request, response: Any) -> bytes:
    """Encode ``response`` (a kafka-python response object) as a frame, size prefix included.

    The response header is flexible when the request's version is, except for
    ApiVersions, whose response header never is (so that any client can read it).
    """
    flexible = request.api_key != API_VERSIONS and response.flexible_version_q(request.version)
    return _frame(request.correlation_id, flexible, bytes(response.encode(version=request.version)))


def api_versions_error(correlation_id: int) -> bytes:
    """The version 0 ApiVersions answer to a request of an unsupported version (as Kafka)."""
    response = ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION,
        api_keys=[
            ApiVersionsResponse.ApiVersion(
                api_key=k, min_version=a.min_version, max_version=a.max_version
            )
            for k, a in sorted(SUPPORTED.items())
        ],
    )
    return _frame(correlation_id, False, bytes(response.encode(version=0)))
