"""The message-object OTLP encoder: the reference the direct encoder is checked against.

`obshub_otlp._encoding` writes the protobuf wire format itself. This module
builds the same request with ``opentelemetry-proto``'s generated message
classes, field by field, as obshub did before; the tests require
``_encoding.encode_spans_protobuf(...)`` to equal
``reference_encode_spans(...).SerializeToString()`` byte for byte. It is not
used when exporting.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from obshub.plugin import distribution_version, json_string
from obshub.spans import Level, SpanEvent
from obshub_otlp._encoding import (
    _CLIENT_TYPES,
    _INT64_MAX,
    _INT64_MIN,
    _SPAN_KIND_CLIENT,
    _SPAN_KIND_INTERNAL,
    _STATUS_ERROR,
    SCOPE_NAME,
    AttrValue,
    Conventions,
    ExtraAttributes,
    _error_message,
    _proto,
    _scalar_kind,
    _text_cleaned,
    conventions_tuple,
    span_attributes,
)

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["reference_encode_spans"]


def _set_scalar(target: AnyValue, kind: str, value: Any) -> None:
    if kind == "bool":
        target.bool_value = bool(value)
    elif kind == "int":
        target.int_value = int(value)
    elif kind == "float":
        target.double_value = float(value)
    else:
        target.string_value = str.__str__(value)


def _set_value(target: AnyValue, value: object) -> None:
    """Store ``value`` in an ``AnyValue`` of the right kind."""
    kind = type(value)
    if kind is str:
        target.string_value = value  # type: ignore[assignment]
        return
    if kind is int and _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
        target.int_value = value  # type: ignore[assignment]
        return
    if kind is float:
        target.double_value = value  # type: ignore[assignment]
        return
    if kind is bool:
        target.bool_value = value  # type: ignore[assignment]
        return
    if isinstance(value, enum.Enum):
        value = value.value
    scalar = _scalar_kind(value)
    if scalar is not None:
        _set_scalar(target, scalar, value)
        return
    if isinstance(value, (list, tuple)):
        kinds = {_scalar_kind(item) for item in value}
        if len(kinds) == 1 and None not in kinds:
            (item_kind,) = kinds
            array = target.array_value
            for item in value:
                _set_scalar(array.values.add(), str(item_kind), item)
            return
        if not value:
            target.array_value.SetInParent()
            return
    target.string_value = json_string(value)


def _add_attributes(
    repeated: Any, attributes: Mapping[str, AttrValue] | Iterable[tuple[str, AttrValue]]
) -> None:
    items = attributes.items() if isinstance(attributes, Mapping) else attributes
    for key, value in items:
        if value is None:
            continue
        kv: KeyValue = repeated.add()
        kv.key = key
        _set_value(kv.value, value)


def _fill_span(
    target: Any,
    event: SpanEvent,
    extra: ExtraAttributes | None,
    conventions: tuple[str, ...],
    include_content: bool,
) -> None:
    span = event.span
    target.trace_id = bytes.fromhex(span.trace_id)
    target.span_id = bytes.fromhex(span.span_id)
    if span.parent_span_id:
        target.parent_span_id = bytes.fromhex(span.parent_span_id)
    target.name = span.name
    target.kind = _SPAN_KIND_CLIENT if span.type in _CLIENT_TYPES else _SPAN_KIND_INTERNAL
    target.start_time_unix_nano = span.start_time
    end = span.end_time if span.end_time is not None else span.start_time
    target.end_time_unix_nano = end
    attributes = (
        span_attributes(span, conventions, include_content=include_content)
        if conventions
        else dict(span.attributes)
    )
    if extra is not None:
        attributes.update(extra(event))
    _add_attributes(target.attributes, attributes)
    if span.error is not None or span.level is Level.ERROR:
        target.status.code = _STATUS_ERROR
        message = _error_message(span)
        if message:
            target.status.message = message
    if conventions and span.error is not None:
        exception = target.events.add()
        exception.name = "exception"
        exception.time_unix_nano = end
        _add_attributes(
            exception.attributes,
            {
                "exception.type": span.error.type,
                "exception.message": span.error.message,
                "exception.stacktrace": span.error.stack,
            },
        )


def reference_encode_spans(
    events: Iterable[SpanEvent],
    *,
    extra_attributes: ExtraAttributes | None = None,
    resource_attributes: Mapping[str, AttrValue] | None = None,
    conventions: Conventions = True,
    include_content: bool = True,
) -> ExportTraceServiceRequest:
    """What `obshub_otlp.encoding.encode_spans` returns, built message by message."""
    chosen = conventions_tuple(conventions)
    proto = _proto()
    request = proto.ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    version = distribution_version("obshub")
    for event in events:
        scope = scopes.get(event.service_name)
        if scope is None:
            resource_spans = request.resource_spans.add()
            resource = {
                "service.name": event.service_name,
                "telemetry.sdk.name": SCOPE_NAME,
                "telemetry.sdk.language": "python",
                "telemetry.sdk.version": version,
                **(resource_attributes or {}),
            }
            _add_attributes(resource_spans.resource.attributes, resource)
            scope = resource_spans.scope_spans.add()
            scope.scope.name = SCOPE_NAME
            scope.scope.version = version
            scopes[event.service_name] = scope
        try:
            target = scope.spans.add()
            _fill_span(target, event, extra_attributes, chosen, include_content)
        except (UnicodeEncodeError, ValueError):
            del scope.spans[-1]
            target = scope.spans.add()
            _fill_span(target, _text_cleaned(event), extra_attributes, chosen, include_content)
    return request
