"""The semantic conventions obshub speaks: OpenTelemetry GenAI and OpenInference.

`genai_attributes` derives the OpenTelemetry GenAI attributes (``gen_ai.*``,
``error.type``) of a span, `openinference_attributes` the OpenInference ones
(``openinference.span.kind``, ``llm.*``, ``retrieval.documents.*``, ...).
Both read only the span; content (messages, tool arguments and results,
documents) is added only when ``content`` is true, so ``include_content =
false`` keeps it out of every convention.

Chat messages are recognised in the shapes applications and provider SDKs
use: a list of ``{"role": ..., "content": ...}`` dicts (content a string or a
list of parts), a dict with such a list under ``"messages"``, and for output
a message dict, a list of them, or an OpenAI-style ``{"choices": [...]}``.
Tool calls inside messages may be OpenAI-shaped
(``{"id", "function": {"name", "arguments"}}``) or flat
(``{"id", "name", "arguments"}``). Retrieved documents are a list of strings
or of dicts with ``content`` / ``page_content`` / ``text``, optionally ``id``,
``score`` and ``metadata`` (or a dict holding that list under
``"documents"``).
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping, Sequence
from typing import Any

from obshub.plugin import json_string
from obshub.spans import Span, SpanType

#: The conventions the encoder can write.
CONVENTIONS = ("genai", "openinference")

#: ``gen_ai.operation.name`` per span type (types not listed get none).
GENAI_OPERATIONS: Mapping[SpanType, str] = types.MappingProxyType(
    {
        SpanType.MODEL_GENERATION: "chat",
        SpanType.EMBEDDING: "embeddings",
        SpanType.AGENT_RUN: "invoke_agent",
        SpanType.TOOL_CALL: "execute_tool",
        SpanType.MCP_TOOL_CALL: "execute_tool",
        SpanType.RETRIEVAL: "retrieval",
    }
)

#: ``openinference.span.kind`` per span type.
OPENINFERENCE_KINDS: Mapping[SpanType, str] = types.MappingProxyType(
    {
        SpanType.AGENT_RUN: "AGENT",
        SpanType.WORKFLOW_RUN: "CHAIN",
        SpanType.WORKFLOW_STEP: "CHAIN",
        SpanType.MODEL_GENERATION: "LLM",
        SpanType.MODEL_STEP: "LLM",
        SpanType.TOOL_CALL: "TOOL",
        SpanType.MCP_TOOL_CALL: "TOOL",
        SpanType.EMBEDDING: "EMBEDDING",
        SpanType.RETRIEVAL: "RETRIEVER",
        SpanType.GUARDRAIL: "GUARDRAIL",
        SpanType.EVALUATOR: "EVALUATOR",
        SpanType.GENERIC: "CHAIN",
    }
)

#: Model parameters that have a ``gen_ai.request.*`` attribute.
GENAI_PARAMETERS: Mapping[str, str] = types.MappingProxyType(
    {
        "temperature": "gen_ai.request.temperature",
        "max_tokens": "gen_ai.request.max_tokens",
        "top_p": "gen_ai.request.top_p",
        "top_k": "gen_ai.request.top_k",
        "frequency_penalty": "gen_ai.request.frequency_penalty",
        "presence_penalty": "gen_ai.request.presence_penalty",
        "seed": "gen_ai.request.seed",
        "stop": "gen_ai.request.stop_sequences",
    }
)

#: Where the cost the application recorded goes, per convention.
COST_ATTRIBUTES: Mapping[str, Mapping[str, str]] = types.MappingProxyType(
    {
        "genai": types.MappingProxyType(
            {
                "input": "gen_ai.usage.input_cost",
                "output": "gen_ai.usage.output_cost",
                "total": "gen_ai.usage.cost",
            }
        ),
        "openinference": types.MappingProxyType(
            {"input": "llm.cost.prompt", "output": "llm.cost.completion", "total": "llm.cost.total"}
        ),
    }
)

_TOOL_TYPES = frozenset({SpanType.TOOL_CALL, SpanType.MCP_TOOL_CALL})
_LLM_TYPES = frozenset({SpanType.MODEL_GENERATION, SpanType.MODEL_STEP})
_DOC_TEXT_KEYS = ("content", "page_content", "text", "document")
# Bounds: a hostile or huge input never turns into millions of attributes.
_MAX_MESSAGES = 200
_MAX_DOCUMENTS = 100
_MAX_TOOL_CALLS = 50


# -- reading the application's shapes ------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json_string(value)


def _is_message(item: Any) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("role"), str)


def input_messages(value: Any) -> list[Mapping[str, Any]] | None:
    """The chat messages of an input, or None when it is not a message list."""
    if isinstance(value, Mapping) and isinstance(value.get("messages"), Sequence):
        value = value["messages"]
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and value
        and all(_is_message(item) for item in value)
    ):
        return list(value[:_MAX_MESSAGES])
    return None


def output_messages(value: Any) -> list[Mapping[str, Any]] | None:
    """The chat messages of an output (a message, a list, or OpenAI ``choices``)."""
    if isinstance(value, Mapping) and isinstance(value.get("choices"), Sequence):
        found: list[Mapping[str, Any]] = []
        for choice in value["choices"][:_MAX_MESSAGES]:
            if isinstance(choice, Mapping) and _is_message(choice.get("message")):
                message = dict(choice["message"])
                if choice.get("finish_reason") and "finish_reason" not in message:
                    message["finish_reason"] = choice["finish_reason"]
                found.append(message)
        return found or None
    if _is_message(value):
        return [value]
    return input_messages(value)


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = message.get("tool_calls")
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        return []
    out: list[dict[str, Any]] = []
    for call in calls[:_MAX_TOOL_CALLS]:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        source = function if isinstance(function, Mapping) else call
        out.append(
            {"id": call.get("id"), "name": source.get("name"), "arguments": source.get("arguments")}
        )
    return out


def _content_parts(content: Any) -> list[str]:
    """The text pieces of a message's content (a string or a list of parts)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, Sequence):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text", part.get("content"))
                texts.append(text if isinstance(text, str) else json_string(part))
        return texts
    return [json_string(content)]


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def documents(value: Any) -> list[dict[str, Any]] | None:
    """The retrieved documents of an output, or None when it holds none."""
    if isinstance(value, Mapping) and isinstance(value.get("documents"), Sequence):
        value = value["documents"]
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return None
    out: list[dict[str, Any]] = []
    for item in value[:_MAX_DOCUMENTS]:
        if isinstance(item, str):
            out.append({"content": item})
            continue
        if not isinstance(item, Mapping):
            return None
        text = next((item[k] for k in _DOC_TEXT_KEYS if item.get(k) is not None), None)
        if text is None:
            return None
        doc: dict[str, Any] = {"content": _text(text)}
        if item.get("id") is not None:
            doc["id"] = str(item["id"])
        score = item.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool):
            doc["score"] = float(score)
        if isinstance(item.get("metadata"), Mapping) and item["metadata"]:
            doc["metadata"] = item["metadata"]
        out.append(doc)
    return out


# -- OpenTelemetry GenAI ----------------------------------------------------------------


def _genai_message(message: Mapping[str, Any]) -> dict[str, Any]:
    role = str(message["role"])
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": message.get("tool_call_id"),
                "response": message.get("content"),
            }
        )
    else:
        parts.extend(
            {"type": "text", "content": text} for text in _content_parts(message.get("content"))
        )
    for call in _tool_calls(message):
        parts.append(
            {
                "type": "tool_call",
                "id": call["id"],
                "name": call["name"],
                "arguments": _arguments(call["arguments"]),
            }
        )
    out: dict[str, Any] = {"role": role, "parts": parts}
    if isinstance(message.get("name"), str):
        out["name"] = message["name"]
    return out


def _genai_content(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if span.type in _LLM_TYPES:
        messages = input_messages(span.input)
        if messages is not None:
            system = [m for m in messages if m["role"] in ("system", "developer")]
            rest = [m for m in messages if m["role"] not in ("system", "developer")]
            if system:
                out["gen_ai.system_instructions"] = json_string(
                    [
                        {"type": "text", "content": text}
                        for m in system
                        for text in _content_parts(m.get("content"))
                    ]
                )
            out["gen_ai.input.messages"] = json_string([_genai_message(m) for m in rest])
        elif isinstance(span.input, str):
            out["gen_ai.input.messages"] = json_string(
                [{"role": "user", "parts": [{"type": "text", "content": span.input}]}]
            )
        replies = output_messages(span.output)
        if replies is not None:
            converted = []
            for message in replies:
                item = _genai_message(message)
                item["finish_reason"] = str(message.get("finish_reason") or "stop")
                converted.append(item)
            out["gen_ai.output.messages"] = json_string(converted)
        elif isinstance(span.output, str):
            out["gen_ai.output.messages"] = json_string(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": span.output}],
                        "finish_reason": "stop",
                    }
                ]
            )
    elif span.type in _TOOL_TYPES:
        if span.input is not None:
            out["gen_ai.tool.call.arguments"] = _text(span.input)
        if span.output is not None:
            out["gen_ai.tool.call.result"] = _text(span.output)
    elif span.type is SpanType.RETRIEVAL:
        if span.input is not None:
            out["gen_ai.retrieval.query.text"] = _text(span.input)
        docs = documents(span.output)
        if docs is not None:
            out["gen_ai.retrieval.documents"] = json_string(docs)
    return out


def genai_attributes(span: Span, *, content: bool = True) -> dict[str, Any]:
    """The OpenTelemetry GenAI attributes of ``span`` (None values included)."""
    out: dict[str, Any] = {"obshub.span.type": span.type.value}
    operation = GENAI_OPERATIONS.get(span.type)
    if operation is not None:
        out["gen_ai.operation.name"] = operation
    if span.type is SpanType.AGENT_RUN:
        out["gen_ai.agent.name"] = span.name
    if span.type in _TOOL_TYPES:
        out["gen_ai.tool.name"] = span.name
        out["gen_ai.tool.type"] = "extension" if span.type is SpanType.MCP_TOOL_CALL else "function"
        if isinstance(span.metadata.get("tool_call_id"), str):
            out["gen_ai.tool.call.id"] = span.metadata["tool_call_id"]
    if span.model:
        out["gen_ai.request.model"] = span.model
    if span.provider:
        out["gen_ai.system"] = span.provider
        out["gen_ai.provider.name"] = span.provider
    for name, key in GENAI_PARAMETERS.items():
        value = span.parameters.get(name)
        if value is None:
            continue
        if name == "stop" and isinstance(value, str):
            value = [value]
        out[key] = value
    usage = span.usage
    if usage is not None:
        out["gen_ai.usage.input_tokens"] = usage.input
        out["gen_ai.usage.output_tokens"] = usage.output
        out["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input
        out["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write
        out["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning
    cost = span.cost
    if cost is not None:
        names = COST_ATTRIBUTES["genai"]
        out[names["input"]] = cost.input
        out[names["output"]] = cost.output
        out[names["total"]] = _total_cost(span)
    if span.session_id:
        out["session.id"] = span.session_id
        out["gen_ai.conversation.id"] = span.session_id
    if span.user_id:
        out["user.id"] = span.user_id
    if span.error is not None:
        out["error.type"] = span.error.type
    if content:
        out.update(_genai_content(span))
    return out


def _total_cost(span: Span) -> float | None:
    cost = span.cost
    if cost is None:
        return None
    if cost.total is not None:
        return cost.total
    if cost.input is None and cost.output is None:
        return None
    return (cost.input or 0.0) + (cost.output or 0.0)


# -- OpenInference ----------------------------------------------------------------------


def _oi_messages(prefix: str, messages: list[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, message in enumerate(messages):
        base = f"{prefix}.{index}.message"
        out[f"{base}.role"] = str(message["role"])
        content = message.get("content")
        if content is not None:
            out[f"{base}.content"] = "\n".join(_content_parts(content))
        if isinstance(message.get("tool_call_id"), str):
            out[f"{base}.tool_call_id"] = message["tool_call_id"]
        if isinstance(message.get("name"), str):
            out[f"{base}.name"] = message["name"]
        for number, call in enumerate(_tool_calls(message)):
            call_base = f"{base}.tool_calls.{number}.tool_call"
            if call["id"] is not None:
                out[f"{call_base}.id"] = str(call["id"])
            if call["name"] is not None:
                out[f"{call_base}.function.name"] = str(call["name"])
            if call["arguments"] is not None:
                out[f"{call_base}.function.arguments"] = _text(call["arguments"])
    return out


def _oi_content(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if span.type in _LLM_TYPES:
        messages = input_messages(span.input)
        if messages is not None:
            out.update(_oi_messages("llm.input_messages", messages))
        replies = output_messages(span.output)
        if replies is not None:
            out.update(_oi_messages("llm.output_messages", replies))
        elif isinstance(span.output, str):
            out.update(
                _oi_messages("llm.output_messages", [{"role": "assistant", "content": span.output}])
            )
    elif span.type is SpanType.RETRIEVAL:
        for index, doc in enumerate(documents(span.output) or ()):
            base = f"retrieval.documents.{index}.document"
            out[f"{base}.content"] = doc["content"]
            out[f"{base}.id"] = doc.get("id")
            out[f"{base}.score"] = doc.get("score")
            if "metadata" in doc:
                out[f"{base}.metadata"] = json_string(doc["metadata"])
    elif span.type is SpanType.EMBEDDING:
        texts = span.input
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(texts, Sequence) and all(isinstance(t, str) for t in texts):
            for index, text in enumerate(texts[:_MAX_DOCUMENTS]):
                out[f"embedding.embeddings.{index}.embedding.text"] = text
    return out


def openinference_attributes(span: Span, *, content: bool = True) -> dict[str, Any]:
    """The OpenInference attributes of ``span`` (None values included)."""
    out: dict[str, Any] = {"openinference.span.kind": OPENINFERENCE_KINDS[span.type]}
    if span.type is SpanType.EMBEDDING:
        out["embedding.model_name"] = span.model
    elif span.model:
        out["llm.model_name"] = span.model
    if span.provider:
        out["llm.provider"] = span.provider.lower()
        out["llm.system"] = span.provider.lower()
    if span.parameters:
        out["llm.invocation_parameters"] = json_string(dict(span.parameters))
    if span.type in _TOOL_TYPES:
        out["tool.name"] = span.name
        if isinstance(span.metadata.get("description"), str):
            out["tool.description"] = span.metadata["description"]
    if span.type is SpanType.AGENT_RUN:
        out["agent.name"] = span.name
    usage = span.usage
    if usage is not None:
        out["llm.token_count.prompt"] = usage.input
        out["llm.token_count.completion"] = usage.output
        out["llm.token_count.total"] = usage.total_tokens()
        out["llm.token_count.prompt_details.cache_read"] = usage.cached_input
        out["llm.token_count.prompt_details.cache_write"] = usage.cache_write
        out["llm.token_count.completion_details.reasoning"] = usage.reasoning
    cost = span.cost
    if cost is not None:
        names = COST_ATTRIBUTES["openinference"]
        out[names["input"]] = cost.input
        out[names["output"]] = cost.output
        out[names["total"]] = _total_cost(span)
    if span.session_id:
        out["session.id"] = span.session_id
    if span.user_id:
        out["user.id"] = span.user_id
    if content:
        out.update(_oi_content(span))
    return out
