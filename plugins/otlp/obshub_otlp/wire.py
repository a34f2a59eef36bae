"""OTLP/HTTP bodies: requests in either protocol, and what a receiver answers.

An OTLP/HTTP receiver answers in the encoding of the request: an
``ExportTraceServiceResponse`` on success (whose ``partial_success`` may say
that some spans were rejected), a ``google.rpc.Status`` on failure. Both are
read here without trusting the body to be well formed: a receiver that
accepted the spans (2xx) must never turn into a failed export because its
answer could not be parsed.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from obshub.plugin import json_string
from obshub_otlp.encoding import request_to_json

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = [
    "CONTENT_TYPES",
    "GZIP_LEVEL",
    "PartialSuccess",
    "encode_request",
    "error_message",
    "gzip_body",
    "parse_partial_success",
]

#: The ``Content-Type`` of each protocol.
CONTENT_TYPES = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}
# google.rpc.Status: field 2 is the message.
_STATUS_MESSAGE_FIELD = 2
_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5

#: The gzip level of request bodies. Level 1, chosen by measurement on span
#: batches (docs/performance.md, "gzip level"): a quarter to a third of level
#: 6's CPU for bodies 16-23 % larger.
GZIP_LEVEL = 1
# Parts at least this large are compressed as they are; smaller ones are joined
# first (one compressor call per span would cost more than it saves).
_GZIP_RUN = 64 * 1024
_GZIP_WBITS = 31  # a gzip header and trailer (header timestamp zero)


@attrs.frozen
class PartialSuccess:
    """What ``partial_success`` of an ``ExportTraceServiceResponse`` said.

    ``rejected_spans`` > 0: that many spans were refused (the rest accepted);
    0 with a message: everything was accepted, with a warning.
    """

    rejected_spans: int
    error_message: str


@functools.lru_cache(maxsize=1)
def _response_class() -> Any:
    # Imported on first use: loading the plugin (at every `obshub` start) stays cheap.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    return ExportTraceServiceResponse


def encode_request(request: ExportTraceServiceRequest, protocol: str) -> bytes:
    """``request`` as the body of ``protocol`` (``http/protobuf`` or ``http/json``).

    OTLP/JSON is the protobuf JSON mapping with OTLP's exceptions, as
    `obshub_otlp.encoding.request_to_json` writes it: hex ids, integer enums,
    64-bit integers as strings.
    """
    if protocol == "http/json":
        return json_string(request_to_json(request)).encode("utf-8")
    data: bytes = request.SerializeToString()
    return data


def gzip_body(parts: Iterable[bytes], level: int = GZIP_LEVEL) -> bytes:
    """The gzip of ``b"".join(parts)``, without joining large parts first.

    Equal inputs give equal bytes (the header's timestamp is zero). zlib runs
    without the interpreter lock, so other threads run while it compresses.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    out: list[bytes] = []
    run: list[bytes] = []
    run_size = 0
    for part in parts:
        size = len(part)
        if size >= _GZIP_RUN:
            if run:
                out.append(compressor.compress(b"".join(run)))
                run = []
                run_size = 0
            out.append(compressor.compress(part))
            continue
        run.append(part)
        run_size += size
        if run_size >= _GZIP_RUN:
            out.append(compressor.compress(b"".join(run)))
            run = []
            run_size = 0
    if run:
        out.append(compressor.compress(b"".join(run)))
    out.append(compressor.flush())
    return b"".join(out)


def _is_json(content_type: str, protocol: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    if media:
        return media.endswith("json")
    # No Content-Type: a receiver answers in the encoding of the request.
    return protocol == "http/json"


def parse_partial_success(body: bytes, content_type: str, protocol: str) -> PartialSuccess | None:
    """The ``partial_success`` of a 2xx answer, or None when it has none (or is unreadable)."""
    if not body.strip():
        return None
    response = _response_class()()
    try:
        if _is_json(content_type, protocol):
            from google.protobuf import json_format

            json_format.Parse(body, response, ignore_unknown_fields=True)
        else:
            response.ParseFromString(body)
    except Exception:
        # protobuf raises DecodeError, ParseError, or plain ValueErrors by
        # version and backend; whichever it is, the spans were accepted.
        return None
    if not response.HasField("partial_success"):
        return None
    partial = response.partial_success
    rejected = int(partial.rejected_spans)
    message = str(partial.error_message)
    if rejected <= 0 and not message:
        return None
    return PartialSuccess(rejected_spans=max(rejected, 0), error_message=message)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _status_message(body: bytes) -> str | None:
    """The ``message`` of a protobuf ``google.rpc.Status``.

    Read by hand from the wire format: the message class lives in
    googleapis-common-protos, a dependency too many for one string field.
    """
    pos = 0
    message: str | None = None
    try:
        while pos < len(body):
            key, pos = _varint(body, pos)
            field, wire = key >> 3, key & 7
            if wire == _WIRE_VARINT:
                _, pos = _varint(body, pos)
            elif wire == _WIRE_I64:
                pos += 8
            elif wire == _WIRE_I32:
                pos += 4
            elif wire == _WIRE_LEN:
                length, pos = _varint(body, pos)
                chunk = body[pos : pos + length]
                if len(chunk) != length:
                    return None
                pos += length
                if field == _STATUS_MESSAGE_FIELD:
                    message = chunk.decode("utf-8")
            else:
                return None
    except (ValueError, UnicodeDecodeError):
        return None
    return message if pos == len(body) else None


def error_message(body: bytes, content_type: str) -> str:
    """Readable text of an error answer's body.

    A ``google.rpc.Status`` (protobuf or JSON) gives its ``message``; any
    other body is taken as text. Returns ``""`` for an empty or binary body
    that says nothing readable.
    """
    if not body.strip():
        return ""
    media = content_type.partition(";")[0].strip().lower()
    if media.endswith("json"):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
    elif "protobuf" in media:
        return _status_message(body) or ""
    return body.decode("utf-8", errors="replace")
