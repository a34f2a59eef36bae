"""How obshub spans become Langfuse observations.

Langfuse reads a span's ``langfuse.*`` OpenTelemetry attributes (see its OTel
integration, ``packages/shared/src/server/otel/OtelIngestionProcessor.ts``);
`OBSERVATION_TYPES` is the one table from obshub span types to Langfuse
observation types, and `langfuse_attributes` gives the whole attribute set of
one span: the exporter encodes spans without obshub's generic GenAI attributes
(``encode_spans(conventions=False)``), which Langfuse would only copy into
``metadata.attributes``.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any

import attrs
from obshub_otlp.encoding import AttrValue

from obshub.plugin import json_string
from obshub.spans import Cost, Level, Span, SpanType, Usage, ns_to_iso

__all__ = [
    "EVENT_OBSERVATION_TYPE",
    "OBSERVATION_TYPES",
    "PUBLIC_ATTRIBUTE",
    "TraceOptions",
    "cost_details",
    "is_public",
    "langfuse_attributes",
    "normalise_environment",
    "observation_metadata",
    "observation_type",
    "status_message",
    "text_value",
    "trace_metadata",
    "usage_details",
]

#: The Langfuse observation type of each obshub span type.
OBSERVATION_TYPES: Mapping[SpanType, str] = types.MappingProxyType(
    {
        SpanType.AGENT_RUN: "agent",
        SpanType.WORKFLOW_RUN: "chain",
        SpanType.WORKFLOW_STEP: "chain",
        SpanType.MODEL_GENERATION: "generation",
        SpanType.MODEL_STEP: "span",
        SpanType.TOOL_CALL: "tool",
        SpanType.MCP_TOOL_CALL: "tool",
        SpanType.EMBEDDING: "embedding",
        SpanType.RETRIEVAL: "retriever",
        SpanType.GUARDRAIL: "guardrail",
        SpanType.EVALUATOR: "evaluator",
        SpanType.GENERIC: "span",
    }
)
#: The observation type of an event span (``span.is_event``), whatever its type.
EVENT_OBSERVATION_TYPE = "event"

_LEVELS: Mapping[Level, str] = types.MappingProxyType(
    {
        Level.DEBUG: "DEBUG",
        Level.DEFAULT: "DEFAULT",
        Level.WARNING: "WARNING",
        Level.ERROR: "ERROR",
    }
)

#: Langfuse keeps environments matching this; any other value silently becomes "default".
MAX_ENVIRONMENT_LENGTH = 40
_ENVIRONMENT_INVALID = re.compile(r"[^a-z0-9_-]+")


@attrs.frozen
class TraceOptions:
    """Values put on every span: Langfuse's ``environment``, ``release`` and ``version``."""

    environment: str | None = None
    release: str | None = None
    version: str | None = None


def normalise_environment(value: str) -> str:
    """``value`` as Langfuse accepts it: lowercase ``[a-z0-9-_]``, at most 40 characters.

    Runs of other characters become one ``-``; an empty result is ``default``.
    """
    cleaned = _ENVIRONMENT_INVALID.sub("-", value.strip().lower()).strip("-")
    return cleaned[:MAX_ENVIRONMENT_LENGTH].rstrip("-") or "default"


#: The observation type a ``span``-typed span is sent as when it carries model data.
GENERATION_OBSERVATION_TYPE = "generation"


def _has_model_data(span: Span) -> bool:
    return bool(
        span.model
        or span.usage is not None
        or span.cost is not None
        or any(value is not None for value in span.parameters.values())
        or span.completion_start_time is not None
        or span.prompt is not None
    )


def observation_type(span: Span) -> str:
    """The Langfuse observation type of ``span``.

    `OBSERVATION_TYPES` gives it, with one exception: a span that maps to
    ``span`` (a ``generic`` or ``model_step`` span) but carries a model,
    usage, cost, model parameters, a completion start time or a prompt is
    sent as a ``generation``. Langfuse's ingestion schema for ``span-create``
    events (``CreateSpanBody`` in ``packages/shared/src/server/ingestion/types.ts``)
    has none of those fields, so its legacy path would drop them all; a
    generation keeps them, as Langfuse's own type mapper would classify a
    span with a model.
    """
    if span.is_event:
        return EVENT_OBSERVATION_TYPE
    mapped = OBSERVATION_TYPES[span.type]
    if mapped == "span" and _has_model_data(span):
        return GENERATION_OBSERVATION_TYPE
    return mapped


def usage_details(usage: Usage) -> dict[str, int]:
    """Langfuse ``usage_details`` from provider-style counts.

    Providers count cached input inside ``input`` and reasoning inside
    ``output``; Langfuse wants them apart: ``input`` is the non-cached input,
    ``input_cached_tokens`` and ``input_cache_creation`` the rest,
    ``output`` the visible output and ``output_reasoning_tokens`` the
    reasoning. ``total`` is as the provider reported it (or input + output).
    Counts never go negative. Provider-specific ``details`` are kept.
    """
    details: dict[str, int] = {
        key: max(0, value) for key, value in usage.details.items() if isinstance(value, int)
    }
    cached = usage.cached_input or 0
    cache_write = usage.cache_write or 0
    reasoning = usage.reasoning or 0
    if usage.input is not None:
        details["input"] = max(0, usage.input - cached - cache_write)
    if usage.cached_input is not None:
        details["input_cached_tokens"] = max(0, usage.cached_input)
    if usage.cache_write is not None:
        details["input_cache_creation"] = max(0, usage.cache_write)
    if usage.output is not None:
        details["output"] = max(0, usage.output - reasoning)
    if usage.reasoning is not None:
        details["output_reasoning_tokens"] = max(0, usage.reasoning)
    total = usage.total_tokens()
    if total is not None:
        details["total"] = max(0, total)
    return details


def cost_details(cost: Cost) -> dict[str, float]:
    """Langfuse ``cost_details``: ``input``, ``output`` and ``total`` (summed when not given)."""
    details: dict[str, float] = {}
    if cost.input is not None:
        details["input"] = cost.input
    if cost.output is not None:
        details["output"] = cost.output
    if cost.total is not None:
        details["total"] = cost.total
    elif details:
        details["total"] = sum(details.values())
    return details


def _prompt_version(version: int | str | None) -> int | None:
    # Langfuse links a prompt by name and integer version.
    if isinstance(version, bool):
        return None
    if isinstance(version, int):
        return version
    if isinstance(version, str) and version.strip().isdigit():
        return int(version)
    return None


#: The root-span attribute that makes the trace public (shareable by link), as in
#: Langfuse's SDK: ``hub.span(..., attributes={"langfuse.trace.public": True})``.
PUBLIC_ATTRIBUTE = "langfuse.trace.public"
#: Observation metadata keys obshub adds (the application's own keys win).
PROVIDER_KEY = "provider"
ERROR_TYPE_KEY = "error.type"
ERROR_MESSAGE_KEY = "error.message"
ERROR_STACK_KEY = "error.stack"


def text_value(value: Any) -> str:
    """An input or output as Langfuse's SDK sends it: a string as is, anything else as JSON."""
    return value if isinstance(value, str) else json_string(value)


#: The largest integer Langfuse's server (JavaScript numbers) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def _metadata_value(value: Any) -> AttrValue:
    # Strings and numbers go as OTel scalars: Langfuse stores them as their text
    # ("chat", "3"), where a JSON-encoded string would stay quoted ("\"chat\"").
    # An integer beyond 2**53 - 1 goes as its digits: Langfuse reads an int64
    # attribute into a JavaScript number (OtelIngestionProcessor.convertOtelIntValue),
    # which would round 2**53 + 1 to 2**53; the text is stored digit for digit.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return str(value)
    if isinstance(value, (str, bool, int, float)):
        return value
    return json_string(value)


def _flatten(prefix: str, values: Mapping[str, Any], out: dict[str, AttrValue]) -> None:
    for key, value in values.items():
        if value is not None:
            out[f"{prefix}.{key}"] = _metadata_value(value)


def status_message(span: Span) -> str | None:
    """The status message: ``"ValueError: card declined"`` for an exception, as OTel writes it.

    A status message the application set itself (not the exception's) is kept.
    """
    error = span.error
    message = span.status_message
    if error is not None and (message is None or message in (error.message, error.type)):
        short_type = error.type.rsplit(".", 1)[-1]
        return f"{short_type}: {error.message}" if error.message else short_type
    return message


def observation_metadata(span: Span) -> dict[str, Any]:
    """The observation's metadata: the span's own, plus provider and error details.

    Langfuse has no field for the provider, the exception type or its stack
    trace: they go as readable metadata keys (``provider``, ``error.type``,
    ``error.stack``, and ``error.message`` when the status message is not
    the exception's). A key the application set itself wins.
    """
    extra: dict[str, Any] = {}
    if span.provider:
        extra[PROVIDER_KEY] = span.provider
    error = span.error
    if error is not None:
        extra[ERROR_TYPE_KEY] = error.type
        if error.message and span.status_message not in (None, error.message, error.type):
            extra[ERROR_MESSAGE_KEY] = error.message
        if error.stack:
            extra[ERROR_STACK_KEY] = error.stack
    if not extra:
        return dict(span.metadata)
    extra.update(span.metadata)
    return extra


def trace_metadata(span: Span) -> Mapping[str, Any]:
    """The trace's metadata: the root span's metadata (children carry it as ``trace_metadata``)."""
    return span.metadata if span.is_root else span.trace_metadata


def is_public(span: Span) -> bool:
    """True when the trace's root span asked for a public trace (`PUBLIC_ATTRIBUTE`)."""
    attributes = span.attributes if span.is_root else span.trace_attributes
    value = attributes.get(PUBLIC_ATTRIBUTE)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def langfuse_attributes(span: Span, options: TraceOptions) -> dict[str, AttrValue]:
    """The attributes Langfuse reads for ``span``: its whole OTel attribute set.

    The exporter sends only these (and the application's own
    ``span.attributes``): Langfuse copies every attribute of a non-SDK
    instrumentation scope into the observation's ``metadata.attributes``, so
    nothing is sent twice under GenAI names.

    Trace-level values (trace name, tags, session, user, public flag,
    environment, release, version and the trace metadata) go on every span,
    because Langfuse filters observations by them; the trace's input and
    output go on the root only. A string (input, output, metadata value) is
    sent as the string, anything structured as JSON, as Langfuse's SDK does.
    Values that are None are left out, and so is the default level.
    """
    out: dict[str, AttrValue] = {"langfuse.observation.type": observation_type(span)}

    # -- trace level, on every span ---------------------------------------------------
    trace_name = span.trace_name or (span.name if span.is_root else None)
    if trace_name:
        out["langfuse.trace.name"] = trace_name
    if span.tags:
        out["langfuse.trace.tags"] = list(span.tags)
    if span.session_id:
        out["session.id"] = span.session_id
    if span.user_id:
        out["user.id"] = span.user_id
    if is_public(span):
        out[PUBLIC_ATTRIBUTE] = True
    if options.environment:
        out["langfuse.environment"] = options.environment
    if options.release:
        out["langfuse.release"] = options.release
    if options.version:
        out["langfuse.version"] = options.version
    metadata = observation_metadata(span)
    # Langfuse's direct (v4) path merges trace metadata over an observation's own
    # metadata: a key the span has itself is not repeated as trace metadata.
    _flatten(
        "langfuse.trace.metadata",
        {k: v for k, v in trace_metadata(span).items() if span.is_root or k not in metadata},
        out,
    )
    # The root's input and output are the trace's too: converted once, sent twice.
    input_text = None if span.input is None else text_value(span.input)
    output_text = None if span.output is None else text_value(span.output)
    if span.is_root:
        if input_text is not None:
            out["langfuse.trace.input"] = input_text
        if output_text is not None:
            out["langfuse.trace.output"] = output_text

    # -- the observation ---------------------------------------------------------------
    if input_text is not None:
        out["langfuse.observation.input"] = input_text
    if output_text is not None:
        out["langfuse.observation.output"] = output_text
    _flatten("langfuse.observation.metadata", metadata, out)
    level = Level.ERROR if span.error is not None else span.level
    if level is not Level.DEFAULT:
        out["langfuse.observation.level"] = _LEVELS[level]
    message = status_message(span)
    if message:
        out["langfuse.observation.status_message"] = message
    if span.model:
        out["langfuse.observation.model.name"] = span.model
    parameters = {k: v for k, v in span.parameters.items() if v is not None}
    if parameters:
        # A parameter set to None was not sent to the model: Langfuse would show "null".
        out["langfuse.observation.model.parameters"] = json_string(parameters)
    if span.usage is not None:
        usage = usage_details(span.usage)
        if usage:
            out["langfuse.observation.usage_details"] = json_string(usage)
    if span.cost is not None:
        cost = cost_details(span.cost)
        if cost:
            out["langfuse.observation.cost_details"] = json_string(cost)
    if span.completion_start_time is not None:
        out["langfuse.observation.completion_start_time"] = ns_to_iso(span.completion_start_time)
    if span.prompt is not None:
        version = _prompt_version(span.prompt.version)
        if span.prompt.name and version is not None:
            out["langfuse.observation.prompt.name"] = span.prompt.name
            out["langfuse.observation.prompt.version"] = version
    return out
