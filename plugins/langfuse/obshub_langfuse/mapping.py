"""How obshub spans become Langfuse observations.

Langfuse reads a span's ``langfuse.*`` OpenTelemetry attributes (see its OTel
integration); `OBSERVATION_TYPES` is the one table from obshub span types
to Langfuse observation types, and `langfuse_attributes` gives every
``langfuse.*`` attribute of one span. The generic ones (``session.id``,
``user.id``, ``gen_ai.*``) come from `obshub.otlp`.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any

import attrs

from obshub.otlp import AttrValue, json_string
from obshub.spans import Cost, Level, Span, SpanType, Usage, ns_to_iso

__all__ = [
    "EVENT_OBSERVATION_TYPE",
    "OBSERVATION_TYPES",
    "TraceOptions",
    "cost_details",
    "langfuse_attributes",
    "normalise_environment",
    "observation_type",
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


def observation_type(span: Span) -> str:
    """The Langfuse observation type of ``span``."""
    if span.is_event:
        return EVENT_OBSERVATION_TYPE
    return OBSERVATION_TYPES[span.type]


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


def _flatten(prefix: str, values: Mapping[str, Any], out: dict[str, AttrValue]) -> None:
    for key, value in values.items():
        out[f"{prefix}.{key}"] = json_string(value)


def langfuse_attributes(span: Span, options: TraceOptions) -> dict[str, AttrValue]:
    """Every ``langfuse.*`` attribute of ``span``.

    Trace-level values (trace name, tags, environment, release, version) go
    on every span, because Langfuse filters and aggregates them per
    observation; trace input, output and metadata go on the root span only.
    Structured values are JSON strings; values that are None are left out.
    """
    out: dict[str, AttrValue] = {"langfuse.observation.type": observation_type(span)}

    # -- trace level, on every span ---------------------------------------------------
    trace_name = span.trace_name or (span.name if span.is_root else None)
    if trace_name:
        out["langfuse.trace.name"] = trace_name
    if span.tags:
        out["langfuse.trace.tags"] = list(span.tags)
    if options.environment:
        out["langfuse.environment"] = options.environment
    if options.release:
        out["langfuse.release"] = options.release
    if options.version:
        out["langfuse.version"] = options.version
    if span.is_root:
        if span.input is not None:
            out["langfuse.trace.input"] = json_string(span.input)
        if span.output is not None:
            out["langfuse.trace.output"] = json_string(span.output)
        _flatten("langfuse.trace.metadata", span.metadata, out)

    # -- the observation ---------------------------------------------------------------
    if span.input is not None:
        out["langfuse.observation.input"] = json_string(span.input)
    if span.output is not None:
        out["langfuse.observation.output"] = json_string(span.output)
    _flatten("langfuse.observation.metadata", span.metadata, out)
    level = Level.ERROR if span.error is not None else span.level
    out["langfuse.observation.level"] = _LEVELS[level]
    status_message = span.status_message or (span.error.message if span.error else None)
    if status_message:
        out["langfuse.observation.status_message"] = status_message
    if span.model:
        out["langfuse.observation.model.name"] = span.model
    if span.parameters:
        out["langfuse.observation.model.parameters"] = json_string(dict(span.parameters))
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
