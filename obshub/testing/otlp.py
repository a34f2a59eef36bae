"""Decoding OTLP/HTTP trace requests in test receivers.

What a stand-in for an OpenTelemetry backend needs to check that it was sent
valid OTLP and to read it back as plain values: `decode_traces` (a protobuf
or OTLP/JSON body to an ``ExportTraceServiceRequest``, refusing a broken one
with `Rejected` 400), `attribute_map` / `any_value` (``KeyValue`` lists and
``AnyValue`` as Python values) and `hex_ids_to_base64` (what protobuf's JSON
parser needs of OTLP/JSON's hex ids).

Only `decode_traces` imports ``opentelemetry-proto`` (the ``otlp`` or
``test`` extra), when it is called; the rest works on its messages without
importing it, so ``obshub.testing`` works without that package.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from obshub.testing.server import Rejected

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = [
    "HTTP_JSON",
    "HTTP_PROTOBUF",
    "OTLP_ID_FIELDS",
    "any_value",
    "attribute_map",
    "decode_traces",
    "hex_ids_to_base64",
]

#: The id fields of OTLP/JSON, written as hex strings.
OTLP_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
#: The OTLP/HTTP protocols, as ``OTEL_EXPORTER_OTLP_PROTOCOL`` names them.
HTTP_PROTOBUF = "http/protobuf"
HTTP_JSON = "http/json"


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value (lists for arrays, dicts for kv lists)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def attribute_map(repeated: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` attributes as a dict of plain values."""
    return {kv.key: any_value(kv.value) for kv in repeated}


def hex_ids_to_base64(node: Any, fields: Collection[str] = OTLP_ID_FIELDS) -> Any:
    """``node`` with the hex ids of OTLP/JSON as base64 (what protobuf's JSON parser reads).

    Raises `Rejected` (400) for an id that is not hex.
    """
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in fields and isinstance(value, str):
                try:
                    out[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise Rejected(400, f"{key} is not hex") from None
            else:
                out[key] = hex_ids_to_base64(value, fields)
        return out
    if isinstance(node, list):
        return [hex_ids_to_base64(item, fields) for item in node]
    return node


def decode_traces(content: bytes, protocol: str = HTTP_PROTOBUF) -> ExportTraceServiceRequest:
    """An OTLP/HTTP traces body (already decompressed) as an ``ExportTraceServiceRequest``.

    ``protocol`` is `HTTP_PROTOBUF` or `HTTP_JSON`. OTLP/JSON is read as the
    specification says a receiver must: hex ids, unknown fields ignored, an
    empty body is an empty request. Raises `Rejected` (400) for a body that
    is not valid in its protocol.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    if protocol == HTTP_PROTOBUF:
        try:
            request.ParseFromString(content)
        except DecodeError:
            raise Rejected(400, "invalid protobuf body") from None
        return request
    if protocol != HTTP_JSON:
        raise ValueError(f"protocol must be {HTTP_PROTOBUF!r} or {HTTP_JSON!r}, not {protocol!r}")
    try:
        document = json.loads(content) if content.strip() else {}
    except ValueError:
        raise Rejected(400, "invalid JSON body") from None
    if not isinstance(document, dict):
        raise Rejected(400, "invalid OTLP/JSON body: not a JSON object")
    try:
        json_format.ParseDict(hex_ids_to_base64(document), request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise Rejected(400, f"invalid OTLP/JSON body: {exc}") from None
    return request
