"""What Langfuse's server makes of OTLP spans: the stand-in's model of its ingestion.

Each function mirrors a named part of Langfuse's own code (repository
``langfuse/langfuse``), so that a test against `obshub_langfuse.testing.LangfuseStandIn`
fails where Langfuse would store something other than what was recorded:

- ``packages/shared/src/server/otel/OtelIngestionProcessor.ts`` (``OTEL`` below):
  ``createObservationEvent`` / ``processToEvent`` (one observation per span; the
  legacy path and the direct "v4" path chosen by ``x-langfuse-ingestion-version: 4``),
  ``processSpan`` / ``createTraceEvent`` / ``hasTraceUpdates`` (the trace events of
  the legacy path), ``extractInputAndOutput``, ``extractMetadata``,
  ``extractName``, ``extractModelName``, ``isAiSdkAgentOperation``, ``extractPublic``.
- ``packages/shared/src/server/otel/ObservationTypeMapper.ts`` (``TYPES``):
  ``ObservationTypeMapperRegistry``.
- ``worker/src/services/IngestionService/index.ts`` (``INGESTION``): how trace
  events are merged into one trace record (``mergeAndWrite`` for traces,
  ``mergeTraceRecords``, ``mapTraceEventsToRecords``, ``immutableEntityKeys``) and
  ``worker/src/services/IngestionService/utils.ts``: ``overwriteObject``,
  ``convertRecordValuesToString``.
- ``packages/shared/src/utils/json.ts``: ``deepParseJson`` (how the UI shows a
  stored string).
- ``packages/shared/src/server/ingestion/types.ts`` (``SCHEMA``): the ingestion
  event schema every legacy-path observation is parsed with
  (``createIngestionEventSchema``): ``span-create`` (``CreateSpanBody``) has no
  model, model parameters, usage, cost, completion start time or prompt, and
  ``event-create`` (``CreateEventEvent``) has no end time either; the other
  observation types use ``CreateGenerationBody``, which has them all.

Only the parts that obshub's requests reach are modelled (no Vercel AI SDK,
OpenInference, Logfire ... branches).

Checked against the real thing: Langfuse's own ``OtelIngestionProcessor``
(``processToIngestionEvents`` with the ingestion schema, and ``processToEvent``)
and ``IngestionService`` trace merge (langfuse/langfuse at commit 6275144,
August 2026), run on the plugin's requests for realistic traces (those of
``tests/test_fidelity.py`` and more: batch and realtime, a child delivered
before its root), derive the same observations and trace records as this
module, field by field. Not modelled: the direct path's enrichment
(``createEventRecord``: model price lookup, tokenisation, prompt lookup) and
Langfuse's Redis cache of seen traces (``seen`` below stands in for it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs

from obshub.testing.otlp import attribute_map

__all__ = [
    "SERVER_METADATA_KEYS",
    "Observation",
    "Trace",
    "TraceEvent",
    "TraceRecord",
    "assemble_trace",
    "derive_observation",
    "display",
    "has_trace_updates",
    "js_attribute_map",
    "js_stringify",
    "merge_trace",
    "stored_text",
    "trace_event",
]

_STATUS_ERROR = 2
_ENVIRONMENT = re.compile(r"^[a-z0-9_-]{1,40}$")
#: TYPES: the ``LangfuseObservationTypeDirectMapping`` table (exact, lowercase keys).
_DIRECT_TYPES: Mapping[str, str] = {
    "span": "SPAN",
    "generation": "GENERATION",
    "event": "EVENT",
    "embedding": "EMBEDDING",
    "agent": "AGENT",
    "tool": "TOOL",
    "chain": "CHAIN",
    "retriever": "RETRIEVER",
    "guardrail": "GUARDRAIL",
    "evaluator": "EVALUATOR",
}
#: TYPES: ``OTel_GenAI_Operation``.
_OPERATION_TYPES: Mapping[str, str] = {
    "chat": "GENERATION",
    "completion": "GENERATION",
    "text_completion": "GENERATION",
    "generate_content": "GENERATION",
    "generate": "GENERATION",
    "embeddings": "EMBEDDING",
    "invoke_agent": "AGENT",
    "create_agent": "AGENT",
    "execute_tool": "TOOL",
}
#: TYPES: ``ModelBased`` fallback keys.
_MODEL_TYPE_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "model",
)
#: OTEL ``extractModelName``.
_MODEL_KEYS = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
    "llm.response.model",
    "llm.model_name",
    "model",
)
#: OTEL ``parseObservationLevel`` (OBSERVATION_LEVEL_ALIASES).
_LEVEL_ALIASES: Mapping[str, str] = {
    "DEBUG": "DEBUG",
    "TRACE": "DEBUG",
    "VERBOSE": "DEBUG",
    "DEFAULT": "DEFAULT",
    "INFO": "DEFAULT",
    "LOG": "DEFAULT",
    "NOTICE": "DEFAULT",
    "OK": "DEFAULT",
    "SUCCESS": "DEFAULT",
    "WARNING": "WARNING",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "FATAL": "ERROR",
    "CRITICAL": "ERROR",
}
#: OTEL ``extractInputAndOutput``: attribute keys never copied to ``metadata.attributes``
#: (the subset obshub could send; the server's list is longer).
_IO_KEYS = frozenset(
    {
        "langfuse.trace.input",
        "langfuse.trace.output",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "input",
        "output",
        "input.value",
        "output.value",
        "gen_ai.system_instructions",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
_IO_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "langfuse.trace.metadata",
    "langfuse.observation.metadata",
    "ai.telemetry.metadata",
)
#: OTEL ``hasTraceUpdates``: exact keys (the prefix ``langfuse.trace.metadata`` counts too).
_TRACE_UPDATE_KEYS = (
    "langfuse.trace.name",
    "langfuse.trace.input",
    "langfuse.trace.output",
    "langfuse.trace.metadata",
    "user.id",
    "session.id",
    "langfuse.trace.public",
    "langfuse.trace.tags",
    "langfuse.user.id",
    "langfuse.session.id",
    "langfuse.observation.metadata.langfuse_user_id",
    "langfuse.observation.metadata.langfuse_session_id",
    "langfuse.observation.metadata.langfuse_tags",
    "langfuse.trace.metadata.langfuse_session_id",
    "langfuse.trace.metadata.langfuse_user_id",
    "langfuse.trace.metadata.langfuse_tags",
    "ai.telemetry.metadata.sessionId",
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.tags",
    "tag.tags",
)
#: INGESTION ``immutableEntityKeys[TableName.Traces]`` (of the fields modelled here).
_TRACE_IMMUTABLE = frozenset({"id", "timestamp", "environment"})
_NUMBER_LITERAL = re.compile(r"^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$")


# -- JavaScript values ----------------------------------------------------------------------


def js_stringify(value: Any) -> str:
    """``JSON.stringify(value)`` as Node writes it (compact; ``1.0`` is ``1``)."""

    def normalise(node: Any) -> Any:
        if isinstance(node, float) and math.isfinite(node) and node.is_integer():
            return int(node)
        if isinstance(node, Mapping):
            return {str(k): normalise(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [normalise(v) for v in node]
        return node

    return json.dumps(normalise(value), ensure_ascii=False, separators=(",", ":"))


#: The largest integer a JavaScript number holds exactly (``Number.MAX_SAFE_INTEGER``).
MAX_SAFE_INTEGER = 2**53 - 1


def _js_number(value: Any) -> Any:
    # OTEL ``convertOtelIntValue``: an int64 attribute becomes a JavaScript number
    # (a double), so an integer beyond 2**53 - 1 is rounded to the nearest double.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        return int(float(value))
    if isinstance(value, list):
        return [_js_number(item) for item in value]
    return value


def js_attribute_map(repeated: Any) -> dict[str, Any]:
    """OTLP attributes as Langfuse reads them (OTEL ``convertValueToPlainJavascript``)."""
    return {key: _js_number(value) for key, value in attribute_map(repeated).items()}


def stored_text(value: Any) -> str | None:
    """INGESTION ``stringify``: how an input or output is stored (a string as is)."""
    if value is None:
        return None
    return value if isinstance(value, str) else js_stringify(value)


def _record_values_to_string(record: Mapping[str, Any]) -> dict[str, str]:
    """INGESTION ``convertRecordValuesToString``: metadata as Langfuse stores it."""
    return {k: v if isinstance(v, str) else js_stringify(v) for k, v in record.items()}


def display(value: Any) -> Any:
    """A stored string as Langfuse's UI shows it (``deepParseJson``, one level).

    JSON text is parsed; a bare number literal stays the string it is; other
    text is shown as is.
    """
    if not isinstance(value, str) or _NUMBER_LITERAL.match(value):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _truthy(value: Any) -> bool:
    # JavaScript truthiness of an attribute value.
    if value is None:
        return False
    if isinstance(value, (str, list)):
        return len(value) > 0 if isinstance(value, str) else True
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    return True


def _js_string(value: Any) -> str:
    return value if isinstance(value, str) else js_stringify(value)


def _ns_to_iso(ns: int) -> str:
    millis = ns // 1_000_000
    moment = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def _iso_to_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


# -- records -----------------------------------------------------------------------------


@attrs.frozen
class Observation:
    """One span as Langfuse stores it (types in Langfuse's upper case, e.g. ``GENERATION``).

    Times are UTC datetimes at millisecond precision, as Langfuse keeps them.

    - ``stored_input`` / ``stored_output`` are the strings Langfuse stores
      (a string is stored as sent; JSON text stays JSON text);
      ``input`` / ``output`` are the same as the UI shows them (JSON parsed).
    - ``metadata`` is the observation's own metadata (``langfuse.observation.metadata*``),
      values as the UI shows them; ``stored_metadata`` is the whole metadata
      map of the legacy path, every value a string as Langfuse stores it
      (with the ``attributes``, ``resourceAttributes`` and ``scope`` keys the
      server adds); ``direct_metadata`` is the metadata the direct (v4) path
      writes, where the trace metadata of the span is merged in.
    - ``copied_attributes`` is what the server copies into
      ``metadata.attributes`` (every attribute but input, output and metadata,
      values as strings) for an instrumentation scope not named ``langfuse-sdk*``.
    - ``model``, ``usage_details`` and ``cost_details`` are None where the
      server skips them (a span with ``gen_ai.operation.name`` ``invoke_agent``).
    - The legacy path's ingestion schema (SCHEMA) drops what its event type
      has no field for: a ``SPAN`` has no ``model``, ``model_parameters``,
      ``usage_details``, ``cost_details``, ``completion_start_time`` or
      prompt, an ``EVENT`` none of those and no ``end_time`` (these fields are
      None here even when the span sent them; the direct path keeps them).
    - ``model_parameters`` values are strings or numbers: anything else is
      JSON text (OTEL ``sanitizeModelParams``: ``true`` becomes ``"true"``,
      a list ``'["\\n"]'``).
    - ``trace_*`` fields are this span's trace-level attributes;
      ``attributes``, ``resource_attributes`` and ``events`` are the raw
      OpenTelemetry data, for anything not derived here (Langfuse drops the
      span events it does not read, such as ``exception``).
    """

    id: str
    trace_id: str
    parent_observation_id: str | None
    type: str
    name: str
    start_time: datetime
    end_time: datetime | None
    trace_name: str | None
    session_id: str | None
    user_id: str | None
    tags: tuple[str, ...]
    public: bool | None
    environment: str
    release: str | None
    version: str | None
    level: str
    status_message: str | None
    input: Any
    output: Any
    stored_input: str | None
    stored_output: str | None
    metadata: Mapping[str, Any]
    stored_metadata: Mapping[str, str]
    direct_metadata: Mapping[str, Any]
    copied_attributes: Mapping[str, str]
    model: str | None
    model_parameters: Mapping[str, Any] | None
    usage_details: Mapping[str, int] | None
    cost_details: Mapping[str, float] | None
    completion_start_time: datetime | None
    prompt_name: str | None
    prompt_version: int | None
    trace_input: Any
    trace_output: Any
    trace_metadata: Mapping[str, Any]
    events: tuple[Mapping[str, Any], ...]
    attributes: Mapping[str, Any]
    resource_attributes: Mapping[str, Any]
    scope_name: str
    scope_version: str


@attrs.frozen
class TraceEvent:
    """One ``trace-create`` event of the legacy path (OTEL ``createTraceEvent``).

    ``body`` keys absent from the mapping were ``undefined`` in the server.
    """

    timestamp: str
    body: Mapping[str, Any]


#: A trace record as the legacy path stores it (INGESTION ``TraceRecordInsertType``).
TraceRecord = dict[str, Any]


@attrs.frozen
class Trace:
    """A trace as Langfuse's legacy path stores it, with its observations.

    Built from the trace events every span produced, merged by Langfuse's rules
    (`merge_trace`): ``timestamp`` and ``environment`` come from the first
    record, ``input`` / ``output`` from the latest event that has one, other
    fields from the latest span (by start time) that sends them; tags are the
    union. ``stored_*`` are the strings Langfuse stores; ``input``, ``output``
    and ``metadata`` (the application's keys only) as the UI shows them.
    """

    id: str
    timestamp: datetime | None
    name: str | None
    session_id: str | None
    user_id: str | None
    tags: tuple[str, ...]
    public: bool
    environment: str
    release: str | None
    version: str | None
    input: Any
    output: Any
    metadata: Mapping[str, Any]
    stored_input: str | None
    stored_output: str | None
    stored_metadata: Mapping[str, str]
    observations: tuple[Observation, ...]

    @property
    def root(self) -> Observation | None:
        """The observation without a parent, if it arrived."""
        for observation in self.observations:
            if observation.parent_observation_id is None:
                return observation
        return None


# -- one span ---------------------------------------------------------------------------


def _observation_type(attributes: Mapping[str, Any]) -> str:
    """TYPES ``ObservationTypeMapperRegistry.mapToObservationType``: the mappers obshub can reach.

    (``PythonSDKv330Override`` needs the scope ``langfuse-sdk``; the Genkit,
    Vercel AI SDK, OpenInference, Flue and LiveKit mappers need attributes
    obshub never sends.)
    """
    given = attributes.get("langfuse.observation.type")
    if isinstance(given, str) and given in _DIRECT_TYPES:
        return _DIRECT_TYPES[given]
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in _OPERATION_TYPES:
        return _OPERATION_TYPES[operation]
    if _truthy(attributes.get("gen_ai.tool.name")) or _truthy(
        attributes.get("gen_ai.tool.call.id")
    ):
        return "TOOL"
    if any(_truthy(attributes.get(key)) for key in _MODEL_TYPE_KEYS):
        return "GENERATION"
    return "SPAN"


def _parse_metadata_attribute(value: Any) -> dict[str, Any]:
    """OTEL ``parseMetadataAttribute``: a whole-object metadata attribute."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return dict(value) if isinstance(value, Mapping) else {}


def _extract_metadata(attributes: Mapping[str, Any], domain: str) -> dict[str, Any]:
    """OTEL ``extractMetadata``: ``langfuse.<domain>.metadata`` (whole, then per key)."""
    prefix = f"langfuse.{domain}.metadata"
    primary = attributes.get(prefix)
    top = _parse_metadata_attribute(
        primary if _truthy(primary) else attributes.get("langfuse.metadata")
    )
    keyed: dict[str, Any] = {}
    for key, value in attributes.items():
        for each in (prefix, "langfuse.metadata", "ai.telemetry.metadata"):
            if key.startswith(f"{each}.") and len(key) > len(each) + 1:
                keyed[key[len(each) + 1 :]] = value
    return {**top, **keyed}


def _filtered_attributes(attributes: Mapping[str, Any]) -> dict[str, str]:
    """OTEL ``extractInputAndOutput``'s ``filteredAttributes`` (values as strings)."""
    return {
        key: _js_string(value)
        for key, value in attributes.items()
        if key not in _IO_KEYS and not key.startswith(_IO_PREFIXES)
    }


def _first_truthy(attributes: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if _truthy(value):
            return _js_string(value)
    return None


def _environment(attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    """OTEL ``extractEnvironment`` (``normalizeEnvironment``: invalid values become ``default``)."""
    for key in ("langfuse.environment", "deployment.environment.name", "deployment.environment"):
        for source in (attributes, resource):
            value = source.get(key)
            if _truthy(value):
                text = str(value)
                valid = _ENVIRONMENT.match(text) and not text.startswith("langfuse")
                return text if valid else "default"
    return "default"


def _tags(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """OTEL ``extractTags``."""
    value: Any = None
    for key in (
        "langfuse.trace.tags",
        "langfuse.tags",
        "langfuse.observation.metadata.langfuse_tags",
        "langfuse.trace.metadata.langfuse_tags",
        "ai.telemetry.metadata.tags",
        "tag.tags",
    ):
        value = attributes.get(key)
        if _truthy(value):
            break
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(tag) for tag in value)
    if isinstance(value, str):
        if value.strip().startswith("["):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return tuple(str(tag) for tag in parsed)
        if "," in value:
            return tuple(tag.strip() for tag in value.split(","))
        return (value,)
    return ()


def _public(attributes: Mapping[str, Any]) -> bool | None:
    """OTEL ``extractPublic``."""
    value = attributes.get("langfuse.trace.public", attributes.get("langfuse.public"))
    if value is None:
        return None
    return value is True or value == "true"


def _json_object(value: Any) -> dict[str, Any] | None:
    """OTEL ``parseJsonObjectAttribute``: None when absent or not JSON, ``{}`` when no object."""
    if not _truthy(value):
        return None
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else {}


def _usage(attributes: Mapping[str, Any]) -> dict[str, int] | None:
    given = _json_object(attributes.get("langfuse.observation.usage_details"))
    if given is not None:
        return {str(k): v for k, v in given.items()}
    usage: dict[str, int] = {}
    for key, name in (
        ("gen_ai.usage.input_tokens", "input"),
        ("gen_ai.usage.output_tokens", "output"),
        ("gen_ai.usage.total_tokens", "total"),
    ):
        value = attributes.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            usage[name] = value
    return usage or None


def _cost(attributes: Mapping[str, Any]) -> dict[str, float] | None:
    """OTEL ``extractCostDetails``."""
    given = _json_object(attributes.get("langfuse.observation.cost_details"))
    if given is not None:
        return {str(k): v for k, v in given.items()}
    total = attributes.get("gen_ai.usage.cost")
    if total is not None and total != "":
        return {"total": total}
    return None


def _level(attributes: Mapping[str, Any], status_code: int) -> str:
    given = attributes.get("langfuse.observation.level")
    if isinstance(given, str) and given.strip().upper() in _LEVEL_ALIASES:
        return _LEVEL_ALIASES[given.strip().upper()]
    return "ERROR" if status_code == _STATUS_ERROR else "DEFAULT"


def _is_agent_operation(attributes: Mapping[str, Any]) -> bool:
    """OTEL ``isAiSdkAgentOperation``: model, usage and cost are skipped for these."""
    return attributes.get("gen_ai.operation.name") in ("invoke_agent", "agent_step")


def _name(span_name: str, attributes: Mapping[str, Any]) -> str:
    """OTEL ``extractName`` (the GenAI tool name wins over the span name)."""
    tool = attributes.get("gen_ai.tool.name")
    if _truthy(tool):
        return _js_string(tool)
    return span_name


def _input_output(attributes: Mapping[str, Any], domain: str) -> tuple[Any, Any]:
    """OTEL ``extractInputAndOutput``: the Langfuse branch, then ``input`` / ``output``."""
    trace_input = attributes.get("langfuse.trace.input")
    trace_output = attributes.get("langfuse.trace.output")
    given_input = (
        trace_input
        if domain == "trace" and _truthy(trace_input)
        else attributes.get("langfuse.observation.input")
    )
    given_output = (
        trace_output
        if domain == "trace" and _truthy(trace_output)
        else attributes.get("langfuse.observation.output")
    )
    if given_input is not None or given_output is not None:
        return given_input, given_output
    fallback_input, fallback_output = attributes.get("input"), attributes.get("output")
    if _truthy(fallback_input) or _truthy(fallback_output):
        return fallback_input, fallback_output
    return None, None


def _scope_metadata(
    scope_name: str, scope_version: str, scope_attributes: Mapping[str, Any]
) -> Any:
    scope: dict[str, Any] = {"name": scope_name}
    if scope_version:
        scope["version"] = scope_version
    scope["attributes"] = dict(scope_attributes)
    return scope


def derive_observation(span: Any, resource: Mapping[str, Any], scope: Any) -> Observation:
    """OTEL ``createObservationEvent`` (legacy) and ``processToEvent`` (direct) for one span."""
    attributes = js_attribute_map(span.attributes)
    scope_attributes = js_attribute_map(scope.attributes)
    scope_name, scope_version = scope.name, scope.version
    is_sdk_scope = scope_name.startswith("langfuse-sdk")
    observation_type = _observation_type(attributes)
    agent_operation = _is_agent_operation(attributes)
    span_metadata = _extract_metadata(attributes, "observation")
    trace_metadata = _extract_metadata(attributes, "trace")
    resource_trace_metadata = _extract_metadata(resource, "trace")
    copied = {} if is_sdk_scope else _filtered_attributes(attributes)
    scope_metadata = _scope_metadata(scope_name, scope_version, scope_attributes)
    legacy_metadata: dict[str, Any] = {**resource_trace_metadata, **span_metadata}
    if not is_sdk_scope:
        legacy_metadata["attributes"] = copied
    legacy_metadata["resourceAttributes"] = dict(resource)
    legacy_metadata["scope"] = scope_metadata
    direct_metadata: dict[str, Any] = {} if is_sdk_scope else {"attributes": copied}
    direct_metadata.update(
        {
            "resourceAttributes": dict(resource),
            "scope": scope_metadata,
            **span_metadata,
            **trace_metadata,
        }
    )
    given_input, given_output = _input_output(attributes, "observation")
    stored_input, stored_output = stored_text(given_input), stored_text(given_output)
    parameters = attributes.get("langfuse.observation.model.parameters")
    try:
        parsed_parameters = json.loads(parameters) if isinstance(parameters, str) else None
    except ValueError:
        parsed_parameters = None
    can_link_prompt = observation_type == "GENERATION"
    # SCHEMA: a span-create event keeps no model data, an event-create none and no end time.
    keeps_model_data = observation_type not in ("SPAN", "EVENT")
    model_data = keeps_model_data and not agent_operation
    model_parameters = (
        _sanitize_model_parameters(parsed_parameters)
        if keeps_model_data and isinstance(parsed_parameters, dict)
        else None
    )
    prompt_version = attributes.get("langfuse.observation.prompt.version")
    status = span.status
    status_message = attributes.get("langfuse.observation.status_message")
    if status_message is None:
        status_message = status.message or None
    return Observation(
        id=span.span_id.hex(),
        trace_id=span.trace_id.hex(),
        parent_observation_id=span.parent_span_id.hex() if span.parent_span_id else None,
        type=observation_type,
        name=_name(span.name, attributes),
        start_time=_iso_to_datetime(_ns_to_iso(span.start_time_unix_nano)),  # type: ignore[arg-type]
        end_time=_iso_to_datetime(_ns_to_iso(span.end_time_unix_nano))
        if span.end_time_unix_nano and observation_type != "EVENT"
        else None,
        trace_name=_optional_text(attributes.get("langfuse.trace.name")),
        session_id=_first_truthy(
            attributes,
            ("langfuse.session.id", "session.id", "gen_ai.conversation.id"),
        ),
        user_id=_first_truthy(attributes, ("langfuse.user.id", "user.id")),
        tags=_tags(attributes),
        public=_public(attributes),
        environment=_environment(attributes, resource),
        release=_optional_text(
            attributes.get("langfuse.release", resource.get("langfuse.release"))
        ),
        version=_optional_text(attributes.get("langfuse.version", resource.get("service.version"))),
        level=_level(attributes, status.code),
        status_message=_optional_text(status_message),
        input=display(stored_input),
        output=display(stored_output),
        stored_input=stored_input,
        stored_output=stored_output,
        metadata={k: display(v) for k, v in span_metadata.items()},
        stored_metadata=_record_values_to_string(legacy_metadata),
        direct_metadata=direct_metadata,
        copied_attributes=copied,
        model=_first_truthy(attributes, _MODEL_KEYS) if model_data else None,
        model_parameters=model_parameters or None,
        usage_details=_usage(attributes) if model_data else None,
        cost_details=_cost(attributes) if model_data else None,
        completion_start_time=_iso_to_datetime(
            attributes.get("langfuse.observation.completion_start_time")
        )
        if keeps_model_data
        else None,
        prompt_name=_optional_text(attributes.get("langfuse.observation.prompt.name"))
        if can_link_prompt
        else None,
        prompt_version=prompt_version
        if can_link_prompt and isinstance(prompt_version, int)
        else None,
        trace_input=display(stored_text(attributes.get("langfuse.trace.input"))),
        trace_output=display(stored_text(attributes.get("langfuse.trace.output"))),
        trace_metadata={k: display(v) for k, v in trace_metadata.items()},
        events=tuple(
            {"name": e.name, "time_unix_nano": e.time_unix_nano, **js_attribute_map(e.attributes)}
            for e in span.events
        ),
        attributes=attributes,
        resource_attributes=dict(resource),
        scope_name=scope_name,
        scope_version=scope_version,
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None else _js_string(value)


def _sanitize_model_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """OTEL ``sanitizeModelParams``: strings and numbers stay, anything else becomes JSON text."""
    return {
        str(key): value
        if isinstance(value, str)
        or (isinstance(value, (int, float)) and not isinstance(value, bool))
        else js_stringify(value)
        for key, value in parameters.items()
    }


# -- the trace (legacy path) --------------------------------------------------------------


def has_trace_updates(attributes: Mapping[str, Any]) -> bool:
    """OTEL ``hasTraceUpdates``."""
    if any(_truthy(attributes.get(key)) for key in _TRACE_UPDATE_KEYS):
        return True
    return any(key.startswith("langfuse.trace.metadata") for key in attributes)


def trace_event(
    span: Any, resource: Mapping[str, Any], scope: Any, seen: set[str]
) -> TraceEvent | None:
    """OTEL ``processSpan`` + ``createTraceEvent``: the trace event one span produces, if any.

    ``seen`` holds the trace ids Langfuse already knows (its Redis cache);
    a span of an unseen trace makes at least a shallow event (id, timestamp,
    environment).
    """
    attributes = js_attribute_map(span.attributes)
    trace_id = span.trace_id.hex()
    is_root = not span.parent_span_id or str(attributes.get("langfuse.internal.as_root")) in (
        "true",
        "True",
    )
    updates = has_trace_updates(attributes)
    if not (is_root or updates or trace_id not in seen):
        return None
    seen.add(trace_id)
    start = _ns_to_iso(span.start_time_unix_nano)
    environment = _environment(attributes, resource)
    body: dict[str, Any] = {"id": trace_id, "timestamp": start, "environment": environment}
    scope_attributes = js_attribute_map(scope.attributes)
    scope_metadata = _scope_metadata(scope.name, scope.version, scope_attributes)
    resource_trace_metadata = _extract_metadata(resource, "trace")
    common: dict[str, Any] = {
        "version": attributes.get("langfuse.version", resource.get("service.version")),
        "release": attributes.get("langfuse.release", resource.get("langfuse.release")),
        "tags": list(_tags(attributes)),
        "environment": environment,
    }
    for key, value in (
        ("userId", _first_truthy(attributes, ("langfuse.user.id", "user.id"))),
        (
            "sessionId",
            _first_truthy(
                attributes, ("langfuse.session.id", "session.id", "gen_ai.conversation.id")
            ),
        ),
        ("public", _public(attributes)),
    ):
        if value is not None:
            common[key] = value
    if is_root:
        trace_input, trace_output = _input_output(attributes, "trace")
        metadata: dict[str, Any] = {
            **resource_trace_metadata,
            **_extract_metadata(attributes, "trace"),
            **_extract_metadata(attributes, "observation"),
        }
        if not scope.name.startswith("langfuse-sdk"):
            metadata["attributes"] = _filtered_attributes(attributes)
        metadata["resourceAttributes"] = dict(resource)
        metadata["scope"] = scope_metadata
        name = attributes.get("langfuse.trace.name")
        body.update(common)
        body["name"] = name if name is not None else _name(span.name, attributes)
        body["metadata"] = metadata
        body["input"] = trace_input
        body["output"] = trace_output
    elif updates:
        body.update(common)
        if "langfuse.trace.name" in attributes:
            body["name"] = attributes["langfuse.trace.name"]
        body["metadata"] = {
            **resource_trace_metadata,
            **_extract_metadata(attributes, "trace"),
            "resourceAttributes": dict(resource),
            "scope": scope_metadata,
        }
        for key, attribute in (
            ("input", "langfuse.trace.input"),
            ("output", "langfuse.trace.output"),
        ):
            if attribute in attributes:
                body[key] = attributes[attribute]
    body = {k: v for k, v in body.items() if v is not None or k in ("version", "release")}
    return TraceEvent(timestamp=start, body=body)


def _event_record(event: TraceEvent) -> TraceRecord:
    """INGESTION ``mapTraceEventsToRecords`` for one event (absent keys are ``undefined``)."""
    body = event.body
    record: TraceRecord = {"id": body["id"], "timestamp": body.get("timestamp", event.timestamp)}
    for field, key in (
        ("name", "name"),
        ("user_id", "userId"),
        ("release", "release"),
        ("version", "version"),
        ("environment", "environment"),
        ("session_id", "sessionId"),
    ):
        if key in body:
            record[field] = body[key]
    metadata = body.get("metadata")
    record["metadata"] = dict(metadata) if metadata else {}
    record["public"] = body.get("public") if body.get("public") is not None else False
    record["tags"] = list(body.get("tags") or [])
    return record


def _deep_merge(a: Any, b: Any) -> Any:
    """lodash ``merge`` of two metadata objects (plain objects merge key by key)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = dict(a)
        for key, value in b.items():
            out[key] = _deep_merge(out[key], value) if key in out else value
        return out
    return a if b is None else b


def _overwrite(a: TraceRecord, b: TraceRecord) -> TraceRecord:
    """UTILS ``overwriteObject`` with the trace table's immutable keys."""
    result = dict(a)
    for key, value in b.items():
        if key in ("metadata", "tags"):
            continue
        if key in _TRACE_IMMUTABLE and result.get(key) is not None:
            continue
        if isinstance(value, (Mapping, list)) and len(value) == 0:
            continue
        result[key] = value
    a_meta, b_meta = a.get("metadata"), b.get("metadata")
    if not a_meta and b_meta:
        result["metadata"] = b_meta
    elif not b_meta and a_meta:
        result["metadata"] = a_meta
    else:
        result["metadata"] = _deep_merge(a_meta or {}, b_meta or {})
    result["tags"] = sorted(set(a.get("tags") or ()) | set(b.get("tags") or ()))
    return result


def merge_trace(stored: TraceRecord | None, events: Sequence[TraceEvent]) -> TraceRecord:
    """INGESTION ``mergeAndWrite`` for a trace: the stored record, then every event by time.

    Langfuse re-reads all events of the trace each time one arrives and merges
    them over the record it stored before (which wins for the immutable keys).
    """
    ordered = sorted(events, key=lambda e: _iso_to_datetime(e.timestamp) or datetime.min)
    reversed_bodies = [e.body for e in reversed(ordered)]
    final_input = next((b["input"] for b in reversed_bodies if _truthy(b.get("input"))), None)
    final_output = next((b["output"] for b in reversed_bodies if _truthy(b.get("output"))), None)
    records = [*([stored] if stored is not None else []), *(_event_record(e) for e in ordered)]
    merged: TraceRecord = {"id": records[0]["id"]}
    for record in records:
        merged = _overwrite(merged, record)
    merged["metadata"] = _record_values_to_string(merged.get("metadata") or {})
    merged["input"] = (
        stored_text(final_input) if final_input is not None else (stored or {}).get("input")
    )
    merged["output"] = (
        stored_text(final_output) if final_output is not None else (stored or {}).get("output")
    )
    return merged


#: Keys the server adds to trace metadata (not the application's).
SERVER_METADATA_KEYS = frozenset({"attributes", "resourceAttributes", "scope"})


def assemble_trace(
    record: TraceRecord | None, trace_id: str, observations: Sequence[Observation]
) -> Trace:
    """A `Trace` from the stored record (or, before any, from the observations only)."""
    record = record or {"id": trace_id, "metadata": {}, "tags": []}
    stored_metadata: Mapping[str, str] = record.get("metadata") or {}
    timestamp = record.get("timestamp")
    return Trace(
        id=trace_id,
        timestamp=_iso_to_datetime(timestamp) if timestamp else None,
        name=_optional_text(record.get("name")),
        session_id=record.get("session_id"),
        user_id=record.get("user_id"),
        tags=tuple(record.get("tags") or ()),
        public=bool(record.get("public")),
        environment=record.get("environment") or "default",
        release=_optional_text(record.get("release")),
        version=_optional_text(record.get("version")),
        input=display(record.get("input")),
        output=display(record.get("output")),
        metadata={
            k: display(v) for k, v in stored_metadata.items() if k not in SERVER_METADATA_KEYS
        },
        stored_input=record.get("input"),
        stored_output=record.get("output"),
        stored_metadata=dict(stored_metadata),
        observations=tuple(observations),
    )
