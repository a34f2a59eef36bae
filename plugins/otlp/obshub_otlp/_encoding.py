"""Encoding span snapshots as OTLP: the implementation behind `obshub_otlp.encoding`.

`encode_spans` turns a batch of `SpanEvent` into an
``ExportTraceServiceRequest`` (the message an OTLP/HTTP receiver takes) with
the OpenTelemetry GenAI semantic conventions (``gen_ai.*``), so the same
encoder serves Langfuse, an OpenTelemetry Collector and any other OTLP backend.
A backend adds its own attributes per span through the ``extra_attributes``
hook.

The protobuf messages come from the official ``opentelemetry-proto`` package
(a dependency of obshub-otlp). It is imported on first use, so loading the
plugin at every ``obshub`` start stays cheap.
"""

from __future__ import annotations

import base64
import enum
import functools
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
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

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
    # Exact types first: nearly every attribute is a plain str or number, and
    # this runs a dozen times per span on the exporter worker.
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
    add = repeated.add
    for key, value in items:
        if value is None:
            continue
        kv: KeyValue = add()
        kv.key = key
        if type(value) is str:
            kv.value.string_value = value
        else:
            _set_value(kv.value, value)


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
        cache = None if cache_key is None else event.shared_cache()
        if cache is not None:
            encoded = cache.get(cache_key)
            if encoded is not None:
                scope.spans.add().MergeFromString(encoded)
                continue
        try:
            target = scope.spans.add()
            _fill_span(target, event, extra_attributes, chosen, include_content)
        except (UnicodeEncodeError, ValueError):
            # Protobuf refuses text without a UTF-8 form (a lone surrogate, e.g.
            # in an event replayed from a file): encode a cleaned copy instead.
            del scope.spans[-1]
            target = scope.spans.add()
            _fill_span(target, _text_cleaned(event), extra_attributes, chosen, include_content)
        if cache is not None:
            cache[cache_key] = target.SerializeToString()
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
