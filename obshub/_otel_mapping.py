"""OpenTelemetry span attributes into obshub span fields (`obshub.otel`, worker side).

Three conventions are read, whichever an instrumentation writes (several may
be present on one span): the OpenTelemetry GenAI semantic conventions
(``gen_ai.*``), OpenInference (``openinference.span.kind``, ``llm.*``,
``input.value`` ...) and OpenLLMetry (``traceloop.*``, ``llm.usage.*`` and the
indexed ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``). A span none of
them describes becomes a ``generic`` span; every attribute not turned into a
field is kept in ``attributes``.

Pure functions over plain values: no OpenTelemetry import, so this runs (and
is tested) without the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from obshub.spans import SpanType

__all__ = ["Converted", "OtelEvent", "convert"]

#: (name, timestamp in ns, attributes) of a span event.
OtelEvent = tuple[str, int, Mapping[str, Any]]
#: (name, type, fields) of the obshub span.
Converted = tuple[str, SpanType, dict[str, Any]]

_GENAI_OPERATIONS = {
    "chat": SpanType.MODEL_GENERATION,
    "text_completion": SpanType.MODEL_GENERATION,
    "generate_content": SpanType.MODEL_GENERATION,
    "completion": SpanType.MODEL_GENERATION,
    "embeddings": SpanType.EMBEDDING,
    "embedding": SpanType.EMBEDDING,
    "execute_tool": SpanType.TOOL_CALL,
    "invoke_agent": SpanType.AGENT_RUN,
    "create_agent": SpanType.AGENT_RUN,
}
_OPENINFERENCE_KINDS = {
    "LLM": SpanType.MODEL_GENERATION,
    "EMBEDDING": SpanType.EMBEDDING,
    "TOOL": SpanType.TOOL_CALL,
    "AGENT": SpanType.AGENT_RUN,
    "CHAIN": SpanType.WORKFLOW_STEP,
    "RETRIEVER": SpanType.RETRIEVAL,
    "RERANKER": SpanType.RETRIEVAL,
    "GUARDRAIL": SpanType.GUARDRAIL,
    "EVALUATOR": SpanType.EVALUATOR,
}
_TRACELOOP_KINDS = {
    "workflow": SpanType.WORKFLOW_RUN,
    "task": SpanType.WORKFLOW_STEP,
    "agent": SpanType.AGENT_RUN,
    "tool": SpanType.TOOL_CALL,
}
_TRACELOOP_REQUEST_TYPES = {
    "chat": SpanType.MODEL_GENERATION,
    "completion": SpanType.MODEL_GENERATION,
    "embedding": SpanType.EMBEDDING,
}
#: gen_ai.request.<key> -> parameters key
_PARAMETERS = (
    "temperature",
    "max_tokens",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "stop_sequences",
    "seed",
    "choice.count",
    "encoding_formats",
    "reasoning_effort",
)
#: attribute name -> parameters key
_PARAMETER_NAMES = {
    **{f"gen_ai.request.{key}": key for key in _PARAMETERS},
    **{f"llm.request.{key}": key for key in _PARAMETERS},
}
#: usage key -> attribute names, first present wins
_USAGE = {
    "input": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
    ),
    "output": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
    ),
    "total": ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total"),
    "cached_input": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
        "gen_ai.usage.cached_tokens",
    ),
    "cache_write": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
        "llm.token_count.prompt_details.cache_write",
    ),
    "reasoning": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
        "llm.usage.reasoning_tokens",
    ),
}
#: Span events that mark the first streamed token.
#: (OpenInference's first-token event; OpenLLMetry's per-chunk event, whose first is it.)
_FIRST_TOKEN_EVENTS = (
    "first token stream event",
    "gen_ai.content.completion.chunk",
    "gen_ai.first_token",
)
_TTFT_SECONDS = (
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.server.time_to_first_token",
    "llm.response.time_to_first_token",
)


class _Reader:
    """Reads attributes and remembers which were used (the rest stay in ``attributes``)."""

    __slots__ = ("attrs", "used")

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        # A plain dict: OpenTelemetry's attribute mappings are Python-level
        # Mappings, where every lookup of an absent key raises and catches KeyError.
        self.attrs = attrs if type(attrs) is dict else dict(attrs)
        self.used: set[str] = set()

    def get(self, *keys: str) -> Any:
        for key in keys:
            value = self.attrs.get(key)
            if value is not None:
                self.used.add(key)
                return value
        return None

    def indexed(self, prefix: str) -> list[Any]:
        """``prefix.N.rest`` attributes as a list (by N) of nested dicts."""
        items: dict[int, dict[str, Any]] = {}
        for key, value in self.attrs.items():
            if not key.startswith(prefix):
                continue
            index, _, rest = key[len(prefix) :].partition(".")
            if not index.isdigit():
                continue
            self.used.add(key)
            _put(items.setdefault(int(index), {}), rest, value)
        return [_lists(items[i]) for i in sorted(items)]

    def rest(self) -> dict[str, Any]:
        used = self.used
        return {k: _plain(v) for k, v in self.attrs.items() if k not in used}


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".") if path else ["value"]
    for part in parts[:-1]:
        nested = target.get(part)
        if not isinstance(nested, dict):
            nested = target[part] = {}
        target = nested
    target[parts[-1]] = _plain(value)


def _lists(node: Any) -> Any:
    """Dicts keyed only by digits become lists, recursively."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _json(value: Any) -> Any:
    """A JSON-looking string decoded; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def convert(
    name: str,
    attributes: Mapping[str, Any],
    events: Iterable[OtelEvent] = (),
    start_time: int = 0,
) -> Converted:
    """The obshub span (name, type, fields) an OpenTelemetry span describes."""
    r = _Reader(attributes)
    fields: dict[str, Any] = {}
    span_type = _span_type(r)
    _identity(r, fields, span_type)
    if span_type in (SpanType.MODEL_GENERATION, SpanType.EMBEDDING) or r.get(
        "gen_ai.request.model", "llm.model_name"
    ):
        _generation(r, fields)
    _io(r, fields, span_type)
    _context(r, fields)
    _streaming(r, fields, events, start_time)
    rest = r.rest()
    if rest:
        fields["attributes"] = rest
    return name, span_type, fields


def _span_type(r: _Reader) -> SpanType:
    kind = r.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in _OPENINFERENCE_KINDS:
        return _OPENINFERENCE_KINDS[kind.upper()]
    operation = r.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in _GENAI_OPERATIONS:
        return _GENAI_OPERATIONS[operation]
    kind = r.get("traceloop.span.kind")
    if isinstance(kind, str) and kind in _TRACELOOP_KINDS:
        return _TRACELOOP_KINDS[kind]
    request = r.get("llm.request.type")
    if isinstance(request, str) and request in _TRACELOOP_REQUEST_TYPES:
        return _TRACELOOP_REQUEST_TYPES[request]
    return SpanType.GENERIC


def _identity(r: _Reader, fields: dict[str, Any], span_type: SpanType) -> None:
    if span_type is SpanType.TOOL_CALL:
        tool = r.get("gen_ai.tool.name", "tool.name")
        if tool is not None:
            fields["metadata"] = {"tool_name": tool}
        call_id = r.get("gen_ai.tool.call.id", "tool_call.id")
        if call_id is not None:
            fields.setdefault("metadata", {})["tool_call_id"] = call_id


def _generation(r: _Reader, fields: dict[str, Any]) -> None:
    model = r.get(
        "gen_ai.response.model", "llm.model_name", "gen_ai.request.model", "embedding.model_name"
    )
    r.get("gen_ai.request.model")  # the response model says more; the request's is not kept
    if model is not None:
        fields["model"] = str(model)
    provider = r.get("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
    r.get("gen_ai.system", "llm.system")
    if provider is not None:
        fields["provider"] = str(provider)
    parameters: dict[str, Any] = {}
    invocation = _json(r.get("llm.invocation_parameters", "embedding.invocation_parameters"))
    if isinstance(invocation, dict):
        # The model is a field of its own, not a parameter.
        parameters.update({k: v for k, v in invocation.items() if k != "model"})
    for name, value in r.attrs.items():
        key = _PARAMETER_NAMES.get(name)
        if key is not None and value is not None and key not in parameters:
            r.used.add(name)
            parameters[key] = _plain(value)
    if parameters:
        fields["parameters"] = parameters
    usage: dict[str, int] = {}
    for key, names in _USAGE.items():
        value = _int(r.get(*names))
        if value is not None:
            usage[key] = value
    if usage:
        fields["usage"] = usage
    response: dict[str, Any] = {}
    for key in ("id", "finish_reasons"):
        value = r.get(f"gen_ai.response.{key}")
        if value is not None:
            response[f"response_{key}"] = _plain(value)
    if response:
        fields["metadata"] = {**fields.get("metadata", {}), **response}


def _io(r: _Reader, fields: dict[str, Any], span_type: SpanType) -> None:
    inputs = _messages(r, "input")
    outputs = _messages(r, "output")
    system = _json(r.get("gen_ai.system_instructions"))
    if system is not None:
        inputs = [{"role": "system", "parts": system}, *(inputs or [])]
    if span_type is SpanType.TOOL_CALL:
        args = r.get("gen_ai.tool.call.arguments", "tool.parameters")
        if args is not None and inputs is None:
            inputs = _json(args)
        result = r.get("gen_ai.tool.call.result")
        if result is not None and outputs is None:
            outputs = _json(result)
    if span_type is SpanType.EMBEDDING:
        embedded = r.indexed("embedding.embeddings.")
        texts = [e.get("embedding", {}).get("text") for e in embedded if isinstance(e, dict)]
        if inputs is None and any(t is not None for t in texts):
            inputs = [t for t in texts if t is not None]
        if outputs is None and embedded:
            outputs = {"embeddings": len(embedded)}
    if span_type is SpanType.RETRIEVAL:
        documents = [d.get("document", d) for d in r.indexed("retrieval.documents.")]
        if documents and outputs is None:
            outputs = documents
    value_in = r.get("input.value", "traceloop.entity.input")
    value_out = r.get("output.value", "traceloop.entity.output")
    r.get("input.mime_type", "output.mime_type")
    r.get("output.mime_type")
    if inputs is None and value_in is not None:
        inputs = _json(value_in)
    if outputs is None and value_out is not None:
        outputs = _json(value_out)
    if inputs is not None:
        fields["input"] = inputs
    if outputs is not None:
        fields["output"] = (
            outputs[0] if isinstance(outputs, list) and len(outputs) == 1 else outputs
        )


def _messages(r: _Reader, side: str) -> Any:
    """Chat messages of one side, from whichever convention carries them."""
    value = _json(r.get(f"gen_ai.{side}.messages"))
    if value is not None:
        return value
    prefix = "llm.input_messages." if side == "input" else "llm.output_messages."
    found = r.indexed(prefix)
    if found:
        return [_openinference_message(m.get("message", m)) for m in found]
    prefix = "gen_ai.prompt." if side == "input" else "gen_ai.completion."
    found = r.indexed(prefix)
    if found:
        return [_traceloop_message(m) for m in found]
    return None


def _openinference_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key == "tool_calls" and isinstance(value, list):
            out["tool_calls"] = [_tool_call(c.get("tool_call", c)) for c in value]
        elif key == "contents" and isinstance(value, list):
            out["content"] = [c.get("message_content", c) for c in value]
        else:
            out[key] = value
    return out


def _tool_call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    function = call.get("function")
    if not isinstance(function, dict):
        function = call
    out = {"name": function.get("name"), "arguments": function.get("arguments")}
    if "id" in call:
        out["id"] = call["id"]
    if isinstance(out["arguments"], str):
        out["arguments"] = _json(out["arguments"])
    return out


def _traceloop_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    out = dict(message)
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [_tool_call(c) for c in out["tool_calls"]]
    if isinstance(out.get("content"), str):
        out["content"] = _json(out["content"])
    return out


def _context(r: _Reader, fields: dict[str, Any]) -> None:
    session = r.get(
        "session.id", "gen_ai.conversation.id", "traceloop.association.properties.session_id"
    )
    if session is not None:
        fields["session_id"] = str(session)
    user = r.get("user.id", "traceloop.association.properties.user_id", "gen_ai.user.id")
    if user is not None:
        fields["user_id"] = str(user)
    tags = r.get("tag.tags")
    if tags is not None:
        fields["tags"] = [str(t) for t in (tags if isinstance(tags, (list, tuple)) else [tags])]
    metadata = _json(r.get("metadata"))
    if isinstance(metadata, dict):
        fields["metadata"] = {**fields.get("metadata", {}), **metadata}
    entity = r.get("traceloop.entity.name")
    if entity is not None:
        fields["metadata"] = {**fields.get("metadata", {}), "entity": entity}
    agent = r.get("gen_ai.agent.name")
    if agent is not None:
        fields["metadata"] = {**fields.get("metadata", {}), "agent_name": agent}


def _streaming(
    r: _Reader, fields: dict[str, Any], events: Iterable[OtelEvent], start_time: int
) -> None:
    for event_name, timestamp, _attrs in events:
        if event_name.lower() in _FIRST_TOKEN_EVENTS:
            fields["completion_start_time"] = timestamp
            return
    seconds = r.get(*_TTFT_SECONDS)
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and start_time:
        fields["completion_start_time"] = start_time + int(seconds * 1e9)
