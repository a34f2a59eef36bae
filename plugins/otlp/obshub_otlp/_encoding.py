"""Encoding span snapshots as OTLP: the implementation behind `obshub_otlp.encoding`.

`encode_spans` turns a batch of `SpanEvent` into an
``ExportTraceServiceRequest`` (the message an OTLP/HTTP receiver takes) with
the OpenTelemetry GenAI semantic conventions (``gen_ai.*``), so the same
encoder serves Langfuse, an OpenTelemetry Collector and any other OTLP backend.
A backend adds its own attributes per span through the ``extra_attributes``
hook.

`encode_spans_protobuf` / `encode_spans_parts` write the request's protobuf
bytes directly (what the exporters send); `encode_spans` parses them into the
message class of the official ``opentelemetry-proto`` package (a dependency of
obshub-otlp), imported on first use, so loading the plugin at every ``obshub``
start stays cheap.
"""

from __future__ import annotations

import base64
import enum
import functools
import struct
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from obshub.plugin import clean_text, distribution_version, json_string, to_jsonable
from obshub.spans import Level, Span, SpanEvent, SpanType
from obshub_otlp._semconv import (
    CONVENTIONS,
    genai_attributes,
    openinference_attributes,
)

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

# The public names are those of obshub_otlp.encoding.

#: Any attribute value. str, bool, int, float and homogeneous lists of them
#: become the matching OTLP ``AnyValue``; anything else is sent as a JSON string.
AttrValue = object
#: A backend's hook: the extra attributes of one span (they win over obshub's).
ExtraAttributes = Callable[[SpanEvent], Mapping[str, AttrValue]]

#: The instrumentation scope of every span obshub encodes.
SCOPE_NAME = "obshub"

_SPAN_KIND_INTERNAL = 1
_SPAN_KIND_CLIENT = 3
# The GenAI conventions make calls to a model (or a vector store) CLIENT spans;
# agent runs, tool executions and workflow steps stay INTERNAL.
_CLIENT_TYPES = frozenset(
    {SpanType.MODEL_GENERATION, SpanType.MODEL_STEP, SpanType.EMBEDDING, SpanType.RETRIEVAL}
)
_STATUS_ERROR = 2
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class _Proto:
    """The generated message classes, imported once."""

    def __init__(self) -> None:
        try:
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
            from opentelemetry.proto.common.v1 import common_pb2
        except ImportError as exc:
            raise ImportError(
                "OTLP encoding needs the OpenTelemetry protobuf messages; "
                "install them with: pip install obshub-otlp"
            ) from exc
        self.ExportTraceServiceRequest = trace_service_pb2.ExportTraceServiceRequest
        self.AnyValue = common_pb2.AnyValue


@functools.lru_cache(maxsize=1)
def _proto() -> _Proto:
    return _Proto()


# -- attribute values ---------------------------------------------------------------


def _scalar_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return None


# -- the protobuf wire format -------------------------------------------------------
#
# The request is written directly in the protobuf wire format: every field number
# of the OTLP trace messages used here is below 16, so each field tag is one byte
# (field_number << 3 | wire_type), precomputed below. A nested message is
# written as its tag, its length as a varint, then its bytes; children are
# encoded first. The protobuf encoders write the fields of a message in field
# number order and leave out proto3 defaults (except for members of a oneof,
# such as AnyValue's), and so does this code: the bytes equal those of the
# generated classes' SerializeToString() (the tests check it, field by field
# and over generated inputs, against `obshub_otlp._reference`).

_SMALL_VARINTS = tuple(bytes((i,)) for i in range(0x80))
_UINT64_MASK = 2**64 - 1
_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack

# AnyValue: string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
# array_value = 5 (ArrayValue: values = 1).
_ANY_STRING = b"\x0a"
_ANY_TRUE = b"\x10\x01"
_ANY_FALSE = b"\x10\x00"
_ANY_INT = b"\x18"
_ANY_DOUBLE = b"\x21"
_ANY_ARRAY = b"\x2a"
_EMPTY_ARRAY = b"\x2a\x00"
_ARRAY_VALUES = b"\x0a"
# KeyValue: key = 1, value = 2.
_KV_KEY = b"\x0a"
_KV_VALUE = b"\x12"


# A KeyValue's value field, then AnyValue's string_value header, for texts of
# up to _SHORT_TEXT - 1 bytes (the AnyValue is then at most 127 bytes long).
_SHORT_TEXT = 0x80 - 2
_SHORT_HEADS = tuple(
    _KV_VALUE + bytes((n + 2,)) + _ANY_STRING + bytes((n,)) for n in range(_SHORT_TEXT)
)


def _varint(value: int) -> bytes:
    """``value`` (0 <= value < 2**64) as a base-128 varint."""
    if value < 0x80:
        return _SMALL_VARINTS[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fixed64(value: int) -> bytes:
    try:
        return _pack_fixed64(value)
    except struct.error:
        # What the generated classes raise for a value outside uint64.
        raise ValueError(f"value out of range for fixed64: {value!r}") from None


def _length_delimited(tag: bytes, data: bytes) -> bytes:
    return tag + _varint(len(data)) + data


@functools.lru_cache(maxsize=4096)
def _key_field(key: str) -> bytes:
    """KeyValue's ``key`` field: attribute keys repeat, so each is encoded once."""
    data = str.encode(key, "utf-8")
    # An empty key is proto3's default: left out, as every other empty string.
    return _KV_KEY + _varint(len(data)) + data if data else b""


def _string_value(text: str) -> bytes:
    data = text.encode("utf-8")
    return _ANY_STRING + _varint(len(data)) + data


def _scalar_value(kind: str, value: Any) -> bytes:
    """The AnyValue of ``value``, whose `_scalar_kind` is ``kind``."""
    if kind == "str":
        return _string_value(str.__str__(value))
    if kind == "int":
        return _ANY_INT + _varint(int(value) & _UINT64_MASK)
    if kind == "float":
        return _ANY_DOUBLE + _pack_double(float(value))
    return _ANY_TRUE if value else _ANY_FALSE


def _any_value(value: object) -> bytes:
    """The AnyValue of ``value`` (not None), of the right kind.

    str, bool, int (int64), float and homogeneous lists of them become the
    matching kind; enums their value; anything else a JSON string.
    """
    # Exact types first: nearly every attribute is a plain str or number.
    kind = type(value)
    if kind is str:
        return _string_value(value)  # type: ignore[arg-type]
    if kind is int and _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
        return _ANY_INT + _varint(value & _UINT64_MASK)  # type: ignore[operator]
    if kind is float:
        return _ANY_DOUBLE + _pack_double(value)
    if kind is bool:
        return _ANY_TRUE if value else _ANY_FALSE
    if isinstance(value, enum.Enum):
        value = value.value
    scalar = _scalar_kind(value)
    if scalar is not None:
        return _scalar_value(scalar, value)
    if isinstance(value, (list, tuple)):
        kinds = {_scalar_kind(item) for item in value}
        if len(kinds) == 1 and None not in kinds:
            (item_kind,) = kinds
            array = b"".join(
                _length_delimited(_ARRAY_VALUES, _scalar_value(str(item_kind), item))
                for item in value
            )
            return _length_delimited(_ANY_ARRAY, array)
        if not value:
            return _EMPTY_ARRAY
    return _string_value(json_string(value))


def _field(tag: bytes, key: str, value: object) -> bytes:
    """The KeyValue field ``tag`` of one attribute."""
    any_value = _any_value(value)
    kv = _key_field(key) + _KV_VALUE + _varint(len(any_value)) + any_value
    return tag + _varint(len(kv)) + kv


# Most attributes repeat from span to span (operation names, models, providers,
# span types, MIME types, small counts): their whole field is kept. Texts up to
# this many characters, ints and bools only (0.0 == -0.0 rules out floats).
_CACHED_TEXT = 64
_cached_field = functools.lru_cache(maxsize=2048, typed=True)(_field)
# Texts from this many characters are looked up before being encoded (see below).
_REUSED_TEXT = 1024


def _add_attributes(parts: list[bytes], tag: bytes, attributes: Mapping[str, AttrValue]) -> None:
    """Append one KeyValue field ``tag`` per attribute to ``parts`` (None values left out)."""
    append = parts.append
    # Large texts already encoded in this call, by identity: a backend may send
    # one text under two keys (Langfuse: a root span's input is the trace's).
    texts: dict[int, bytes] = {}
    for key, value in attributes.items():
        if value is None:
            continue
        kind = type(value)
        if kind is int or kind is bool or (kind is str and len(value) < _CACHED_TEXT):  # type: ignore[arg-type]
            append(_cached_field(tag, key, value))
            continue
        if kind is str:
            key_field = _key_field(key)
            if len(value) < _REUSED_TEXT:  # type: ignore[arg-type]
                data = value.encode("utf-8")  # type: ignore[attr-defined]
            else:
                known = texts.get(id(value))
                if known is None:
                    known = texts[id(value)] = value.encode("utf-8")  # type: ignore[attr-defined]
                data = known
            size = len(data)
            if size < _SHORT_TEXT:
                # Every length fits in one byte: one part, headers from a table.
                kv_size = len(key_field) + size + 4
                if kv_size < 0x80:
                    append(tag + _SMALL_VARINTS[kv_size] + key_field + _SHORT_HEADS[size] + data)
                    continue
            # The text is appended as it is, after the headers of the three
            # messages around it: a large input or output is copied once, by
            # the final join, not once per level of nesting.
            size_varint = _varint(size)
            any_size = 1 + len(size_varint) + size
            any_varint = _varint(any_size)
            kv_size = len(key_field) + 1 + len(any_varint) + any_size
            append(
                tag
                + _varint(kv_size)
                + key_field
                + _KV_VALUE
                + any_varint
                + _ANY_STRING
                + size_varint
            )
            append(data)
        else:
            append(_field(tag, key, value))


# -- span attributes ----------------------------------------------------------------


#: What ``conventions`` may be: True (GenAI), False (none), a name or a list of names.
Conventions: TypeAlias = "bool | str | Iterable[str]"


def conventions_tuple(conventions: Conventions) -> tuple[str, ...]:
    """``conventions`` as a tuple of names from `CONVENTIONS` (ValueError otherwise)."""
    if conventions is True:
        return ("genai",)
    if conventions is False:
        return ()
    names = (conventions,) if isinstance(conventions, str) else tuple(conventions)
    for name in names:
        if name not in CONVENTIONS:
            raise ValueError(
                f"unknown convention {name!r}: expected one of {', '.join(CONVENTIONS)}"
            )
    return tuple(dict.fromkeys(names))


def span_attributes(
    span: Span, conventions: Conventions = True, *, include_content: bool = True
) -> dict[str, AttrValue]:
    """The OpenTelemetry attributes obshub sets on ``span``.

    ``conventions`` chooses the attribute sets: ``"genai"`` (the OpenTelemetry
    GenAI semantic conventions, also what True means), ``"openinference"``, or
    both. ``include_content=False`` leaves out messages, tool arguments and
    results, and documents. ``span.attributes`` (set by the application) are
    included and win over the derived ones; values that are None are left out.
    """
    out: dict[str, AttrValue] = {}
    for name in conventions_tuple(conventions):
        if name == "genai":
            out.update(genai_attributes(span, content=include_content))
        else:
            out.update(openinference_attributes(span, content=include_content))
    out.update(span.attributes)
    return {key: value for key, value in out.items() if value is not None}


def _error_message(span: Span) -> str | None:
    if span.status_message:
        return span.status_message
    if span.error is not None:
        return span.error.message or span.error.type
    return None


# Span: trace_id = 1, span_id = 2, parent_span_id = 4, name = 5, kind = 6,
# start_time_unix_nano = 7 (fixed64), end_time_unix_nano = 8 (fixed64),
# attributes = 9, events = 11, status = 15.
_SPAN_TRACE_ID = b"\x0a"
_SPAN_SPAN_ID = b"\x12"
_SPAN_PARENT = b"\x22"
_SPAN_NAME = b"\x2a"
_SPAN_KIND = {
    _SPAN_KIND_INTERNAL: b"\x30" + _varint(_SPAN_KIND_INTERNAL),
    _SPAN_KIND_CLIENT: b"\x30" + _varint(_SPAN_KIND_CLIENT),
}
_SPAN_START = b"\x39"
_SPAN_END = b"\x41"
_SPAN_ATTRIBUTE = b"\x4a"
_SPAN_EVENT = b"\x5a"
_SPAN_STATUS = b"\x7a"
# Span.Event: time_unix_nano = 1 (fixed64), name = 2, attributes = 3.
_EVENT_TIME = b"\x09"
_EXCEPTION_NAME = _length_delimited(b"\x12", b"exception")
_EVENT_ATTRIBUTE = b"\x1a"
# Status: message = 2, code = 3.
_STATUS_MESSAGE = b"\x12"
_STATUS_CODE_ERROR = b"\x18" + _varint(_STATUS_ERROR)
# ExportTraceServiceRequest: resource_spans = 1; ResourceSpans: resource = 1,
# scope_spans = 2; Resource: attributes = 1; ScopeSpans: scope = 1, spans = 2;
# InstrumentationScope: name = 1, version = 2.
_REQUEST_RESOURCE_SPANS = b"\x0a"
_RESOURCE_SPANS_RESOURCE = b"\x0a"
_RESOURCE_SPANS_SCOPE_SPANS = b"\x12"
_RESOURCE_ATTRIBUTE = b"\x0a"
_SCOPE_SPANS_SCOPE = b"\x0a"
_SCOPE_SPANS_SPAN = b"\x12"
_SCOPE_NAME = b"\x0a"
_SCOPE_VERSION = b"\x12"


def _encode_span(
    event: SpanEvent,
    extra: ExtraAttributes | None,
    conventions: tuple[str, ...],
    include_content: bool,
) -> bytes:
    """The ``Span`` message of ``event`` in the protobuf wire format."""
    span = event.span
    parts: list[bytes] = []
    append = parts.append
    trace_id = bytes.fromhex(span.trace_id)
    if trace_id:
        append(_length_delimited(_SPAN_TRACE_ID, trace_id))
    span_id = bytes.fromhex(span.span_id)
    if span_id:
        append(_length_delimited(_SPAN_SPAN_ID, span_id))
    if span.parent_span_id:
        parent = bytes.fromhex(span.parent_span_id)
        if parent:
            append(_length_delimited(_SPAN_PARENT, parent))
    name = span.name.encode("utf-8")
    if name:
        append(_length_delimited(_SPAN_NAME, name))
    append(_SPAN_KIND[_SPAN_KIND_CLIENT if span.type in _CLIENT_TYPES else _SPAN_KIND_INTERNAL])
    start = span.start_time
    end = span.end_time if span.end_time is not None else start
    if start:
        append(_SPAN_START + _fixed64(start))
    if end:
        append(_SPAN_END + _fixed64(end))
    attributes = (
        span_attributes(span, conventions, include_content=include_content)
        if conventions
        else dict(span.attributes)
    )
    if extra is not None:
        attributes.update(extra(event))
    _add_attributes(parts, _SPAN_ATTRIBUTE, attributes)
    error = span.error
    if conventions and error is not None:
        exception = [_EVENT_TIME + _fixed64(end)] if end else []
        exception.append(_EXCEPTION_NAME)
        _add_attributes(
            exception,
            _EVENT_ATTRIBUTE,
            {
                "exception.type": error.type,
                "exception.message": error.message,
                "exception.stacktrace": error.stack,
            },
        )
        append(_length_delimited(_SPAN_EVENT, b"".join(exception)))
    if error is not None or span.level is Level.ERROR:
        message = _error_message(span)
        status = _STATUS_CODE_ERROR
        if message:
            status = _length_delimited(_STATUS_MESSAGE, message.encode("utf-8")) + status
        append(_length_delimited(_SPAN_STATUS, status))
    return b"".join(parts)


def _resource_field(
    service_name: str, version: str, resource_attributes: Mapping[str, AttrValue] | None
) -> bytes:
    attributes = {
        "service.name": service_name,
        "telemetry.sdk.name": SCOPE_NAME,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": version,
        **(resource_attributes or {}),
    }
    parts: list[bytes] = []
    _add_attributes(parts, _RESOURCE_ATTRIBUTE, attributes)
    return _length_delimited(_RESOURCE_SPANS_RESOURCE, b"".join(parts))


@functools.lru_cache(maxsize=8)
def _scope_field(version: str) -> bytes:
    scope = _length_delimited(_SCOPE_NAME, SCOPE_NAME.encode("utf-8"))
    if version:
        scope += _length_delimited(_SCOPE_VERSION, version.encode("utf-8"))
    return _length_delimited(_SCOPE_SPANS_SCOPE, scope)


def encode_spans_parts(
    events: Iterable[SpanEvent],
    *,
    extra_attributes: ExtraAttributes | None = None,
    resource_attributes: Mapping[str, AttrValue] | None = None,
    cache_key: Hashable | None = None,
    conventions: Conventions = True,
    include_content: bool = True,
) -> list[bytes]:
    """`encode_spans_protobuf`'s bytes in parts: ``b"".join(parts)`` is the request.

    Each span is one part (after a small header part), so a body can be
    compressed part by part (`obshub_otlp.wire.gzip_body`) without first
    copying a large request into one buffer.
    """
    chosen = conventions_tuple(conventions)
    groups: dict[str, list[bytes]] = {}
    for event in events:
        spans = groups.get(event.service_name)
        if spans is None:
            spans = groups[event.service_name] = []
        cache = None if cache_key is None else event.shared_cache()
        encoded: bytes | None = None if cache is None else cache.get(cache_key)
        if encoded is None:
            try:
                encoded = _encode_span(event, extra_attributes, chosen, include_content)
            except (UnicodeEncodeError, ValueError):
                # Text without a UTF-8 form (a lone surrogate, e.g. in an event
                # replayed from a file): encode a cleaned copy instead.
                encoded = _encode_span(
                    _text_cleaned(event), extra_attributes, chosen, include_content
                )
            if cache is not None:
                cache[cache_key] = encoded
        spans.append(_SCOPE_SPANS_SPAN + _varint(len(encoded)))
        spans.append(encoded)
    version = distribution_version("obshub")
    scope = _scope_field(version)
    out: list[bytes] = []
    for service_name, spans in groups.items():
        resource = _resource_field(service_name, version, resource_attributes)
        scope_spans_size = len(scope) + sum(map(len, spans))
        scope_spans_head = _RESOURCE_SPANS_SCOPE_SPANS + _varint(scope_spans_size)
        resource_spans_size = len(resource) + len(scope_spans_head) + scope_spans_size
        out.append(
            _REQUEST_RESOURCE_SPANS
            + _varint(resource_spans_size)
            + resource
            + scope_spans_head
            + scope
        )
        out.extend(spans)
    return out


def encode_spans_protobuf(
    events: Iterable[SpanEvent],
    *,
    extra_attributes: ExtraAttributes | None = None,
    resource_attributes: Mapping[str, AttrValue] | None = None,
    cache_key: Hashable | None = None,
    conventions: Conventions = True,
    include_content: bool = True,
) -> bytes:
    """The ``ExportTraceServiceRequest`` of `encode_spans`, as protobuf bytes.

    The body of an OTLP/HTTP protobuf request, written directly in the
    protobuf wire format (no message objects are built): the same bytes as
    ``encode_spans(...).SerializeToString()``, at a fraction of the cost. It
    takes the same arguments as `encode_spans`; ``opentelemetry-proto`` is not
    needed. `encode_spans_parts` gives the same bytes in parts.
    """
    return b"".join(
        encode_spans_parts(
            events,
            extra_attributes=extra_attributes,
            resource_attributes=resource_attributes,
            cache_key=cache_key,
            conventions=conventions,
            include_content=include_content,
        )
    )


def encode_spans(
    events: Iterable[SpanEvent],
    *,
    extra_attributes: ExtraAttributes | None = None,
    resource_attributes: Mapping[str, AttrValue] | None = None,
    cache_key: Hashable | None = None,
    conventions: Conventions = True,
    include_content: bool = True,
) -> ExportTraceServiceRequest:
    """An OTLP ``ExportTraceServiceRequest`` holding ``events``' spans.

    Spans are grouped by ``event.service_name`` into one ``ResourceSpans``
    each (resource attribute ``service.name``, plus ``resource_attributes``),
    with one ``ScopeSpans`` named ``obshub``. ``extra_attributes(event)``
    returns a backend's own attributes for a span; they are added last and so
    win over obshub's. Raises ImportError when ``opentelemetry-proto`` is missing.

    To send the request as protobuf, `encode_spans_protobuf` gives its bytes
    directly, much cheaper than building this message and serialising it
    (which is what this function does, from those bytes).

    ``cache_key`` names everything ``extra_attributes`` depends on (say
    ``("langfuse", options)``). When the hub fans one event out to several
    exporters, the first to encode it with a given key stores the encoded
    span on the event and the others copy it, instead of encoding again.

    ``conventions=False`` leaves out what obshub derives for generic OTel
    backends (the ``gen_ai.*`` / ``obshub.*`` / ``session.id`` / ``user.id``
    attributes of `span_attributes` and the ``exception`` span event): a span
    then carries only the application's own ``span.attributes`` and
    ``extra_attributes``, for a backend that reads its own attribute set.
    The span's status (code and message) is kept. ``cache_key`` must then
    differ from the keys of encodings made with conventions.

    ``conventions`` may also name the attribute sets: ``"genai"``,
    ``"openinference"`` or a list of both (see `span_attributes`);
    ``include_content=False`` keeps messages, tool arguments and results and
    documents out of them. Both must be part of ``cache_key``.
    """
    data = encode_spans_protobuf(
        events,
        extra_attributes=extra_attributes,
        resource_attributes=resource_attributes,
        cache_key=cache_key,
        conventions=conventions,
        include_content=include_content,
    )
    request: ExportTraceServiceRequest = _proto().ExportTraceServiceRequest.FromString(data)
    return request


def _text_cleaned(event: SpanEvent) -> SpanEvent:
    span = event.span

    def text(value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    error = span.error
    if error is not None:
        error = attrs.evolve(
            error,
            message=clean_text(error.message),
            type=clean_text(error.type),
            stack=text(error.stack),
        )
    prompt = span.prompt
    if prompt is not None:
        prompt = attrs.evolve(prompt, name=clean_text(prompt.name))
    cleaned = attrs.evolve(
        span,
        name=clean_text(span.name),
        input=to_jsonable(span.input, frozen=True),
        output=to_jsonable(span.output, frozen=True),
        metadata=to_jsonable(span.metadata, frozen=True),
        attributes=to_jsonable(span.attributes, frozen=True),
        parameters=to_jsonable(span.parameters, frozen=True),
        tags=tuple(clean_text(t) for t in span.tags),
        session_id=text(span.session_id),
        user_id=text(span.user_id),
        status_message=text(span.status_message),
        model=text(span.model),
        provider=text(span.provider),
        trace_name=text(span.trace_name),
        error=error,
        prompt=prompt,
    )
    return attrs.evolve(
        event,
        span=cleaned,
        config_name=clean_text(event.config_name),
        service_name=clean_text(event.service_name),
    )


# -- OTLP/JSON ------------------------------------------------------------------------


def _hex_ids(node: Any) -> Any:
    # The protobuf JSON mapping writes bytes as base64; OTLP/JSON wants hex ids.
    if isinstance(node, dict):
        return {
            key: base64.b64decode(value).hex()
            if key in _ID_FIELDS and isinstance(value, str)
            else _hex_ids(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def request_to_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form of ``request``: camelCase keys, hex ids, integer enums.

    Send it with ``Content-Type: application/json`` when a receiver does not
    take protobuf, or keep it for debugging.
    """
    from google.protobuf import json_format

    raw = json_format.MessageToDict(request, use_integers_for_enums=True)
    converted: dict[str, Any] = _hex_ids(raw)
    return converted
