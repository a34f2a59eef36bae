"""The GenAI and OpenInference attributes of every span type, and the ``conventions`` key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.encoding import CONVENTIONS, OPENINFERENCE_KINDS, span_attributes
from obshub_otlp.testing import OtlpReceiver

import obshub
from obshub.spans import Cost, Span, SpanError, SpanType, Usage, new_span_id, new_trace_id

MakeHub = Callable[..., obshub.Hub]

CHAT = [
    {"role": "system", "content": "You are a support bot."},
    {"role": "user", "content": "Where is my order 42?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order": 42}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
]
DOCS = [
    {"id": "kb-1", "content": "Orders ship in 2 days.", "score": 0.91, "metadata": {"src": "faq"}},
    {"id": "kb-2", "page_content": "Refunds take 5 days.", "score": 0.5},
]


def make_span(type_: SpanType, **fields: Any) -> Span:
    return Span(
        trace_id=new_trace_id(),
        span_id=new_span_id(),
        name=fields.pop("name", "s"),
        type=type_,
        **fields,
    )


def test_a_generation_sends_messages_system_instructions_and_cached_tokens() -> None:
    span = make_span(
        SpanType.MODEL_GENERATION,
        model="gpt-4o-mini",
        provider="openai",
        input=CHAT,
        output={"role": "assistant", "content": "It shipped yesterday."},
        usage=Usage(input=1200, output=80, cached_input=1000, cache_write=100, reasoning=30),
        cost=Cost(input=0.0001, output=0.00004),
    )
    out = span_attributes(span)
    assert out["gen_ai.operation.name"] == "chat"
    assert out["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert out["gen_ai.usage.cache_creation.input_tokens"] == 100
    assert out["gen_ai.usage.reasoning.output_tokens"] == 30
    assert out["gen_ai.usage.cost"] == pytest.approx(0.00014)
    assert json.loads(str(out["gen_ai.system_instructions"])) == [
        {"type": "text", "content": "You are a support bot."}
    ]
    messages = json.loads(str(out["gen_ai.input.messages"]))
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "lookup_order", "arguments": {"order": 42}}
    ]
    assert messages[2]["parts"] == [
        {"type": "tool_call_response", "id": "call_1", "response": "shipped"}
    ]
    assert json.loads(str(out["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "It shipped yesterday."}],
            "finish_reason": "stop",
        }
    ]
    assert not any(key.startswith(("llm.", "openinference.")) for key in out)


def test_openinference_flattens_messages_tokens_and_cost() -> None:
    span = make_span(
        SpanType.MODEL_GENERATION,
        model="gpt-4o-mini",
        provider="OpenAI",
        input={"model": "gpt-4o-mini", "messages": CHAT},
        output={
            "choices": [
                {"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
            ]
        },
        usage=Usage(input=1200, output=80, cached_input=1000, reasoning=30),
        cost=Cost(total=0.00014),
        parameters={"temperature": 0.2},
        session_id="sess-1",
        user_id="u-7",
    )
    out = span_attributes(span, "openinference")
    assert out["openinference.span.kind"] == "LLM"
    assert out["llm.model_name"] == "gpt-4o-mini"
    assert out["llm.provider"] == "openai"
    assert json.loads(str(out["llm.invocation_parameters"])) == {"temperature": 0.2}
    assert out["llm.input_messages.0.message.role"] == "system"
    assert out["llm.input_messages.1.message.content"] == "Where is my order 42?"
    call = "llm.input_messages.2.message.tool_calls.0.tool_call"
    assert out[f"{call}.function.name"] == "lookup_order"
    assert out[f"{call}.function.arguments"] == '{"order": 42}'
    assert out["llm.input_messages.3.message.tool_call_id"] == "call_1"
    assert out["llm.output_messages.0.message.content"] == "ok"
    assert out["llm.token_count.prompt"] == 1200
    assert out["llm.token_count.total"] == 1280
    assert out["llm.token_count.prompt_details.cache_read"] == 1000
    assert out["llm.token_count.completion_details.reasoning"] == 30
    assert "llm.token_count.prompt_details.cache_write" not in out
    assert out["llm.cost.total"] == pytest.approx(0.00014)
    assert out["session.id"] == "sess-1"
    assert out["user.id"] == "u-7"
    assert not any(key.startswith("gen_ai.") for key in out)


def test_a_retrieval_sends_its_documents_in_both_conventions() -> None:
    span = make_span(SpanType.RETRIEVAL, input="shipping time", output=DOCS)
    out = span_attributes(span, ["genai", "openinference"])
    assert out["gen_ai.operation.name"] == "retrieval"
    assert out["gen_ai.retrieval.query.text"] == "shipping time"
    assert json.loads(str(out["gen_ai.retrieval.documents"]))[1] == {
        "content": "Refunds take 5 days.",
        "id": "kb-2",
        "score": 0.5,
    }
    assert out["openinference.span.kind"] == "RETRIEVER"
    assert out["retrieval.documents.0.document.id"] == "kb-1"
    assert out["retrieval.documents.0.document.content"] == "Orders ship in 2 days."
    assert out["retrieval.documents.0.document.score"] == 0.91
    assert json.loads(str(out["retrieval.documents.0.document.metadata"])) == {"src": "faq"}
    assert out["retrieval.documents.1.document.content"] == "Refunds take 5 days."


def test_tools_agents_and_embeddings() -> None:
    tool = span_attributes(
        make_span(SpanType.TOOL_CALL, name="lookup_order", input={"order": 42}, output="shipped"),
        ["genai", "openinference"],
    )
    assert tool["gen_ai.tool.name"] == "lookup_order"
    assert tool["gen_ai.tool.type"] == "function"
    assert json.loads(str(tool["gen_ai.tool.call.arguments"])) == {"order": 42}
    assert tool["gen_ai.tool.call.result"] == "shipped"
    assert tool["openinference.span.kind"] == "TOOL"
    assert tool["tool.name"] == "lookup_order"
    mcp = span_attributes(make_span(SpanType.MCP_TOOL_CALL, name="fs.read"))
    assert mcp["gen_ai.tool.type"] == "extension"
    agent = span_attributes(make_span(SpanType.AGENT_RUN, name="support"), CONVENTIONS)
    assert agent["gen_ai.operation.name"] == "invoke_agent"
    assert agent["gen_ai.agent.name"] == "support"
    assert agent["openinference.span.kind"] == "AGENT"
    embedding = span_attributes(
        make_span(SpanType.EMBEDDING, model="text-embedding-3-small", input=["a", "b"]),
        CONVENTIONS,
    )
    assert embedding["gen_ai.operation.name"] == "embeddings"
    assert embedding["embedding.model_name"] == "text-embedding-3-small"
    assert embedding["embedding.embeddings.1.embedding.text"] == "b"


def test_every_span_type_has_an_openinference_kind() -> None:
    assert set(OPENINFERENCE_KINDS) == set(SpanType)
    kinds = {
        span_attributes(make_span(t), "openinference")["openinference.span.kind"] for t in SpanType
    }
    assert kinds == {
        "LLM",
        "TOOL",
        "AGENT",
        "CHAIN",
        "RETRIEVER",
        "EMBEDDING",
        "GUARDRAIL",
        "EVALUATOR",
    }


def test_errors_carry_error_type() -> None:
    span = make_span(SpanType.TOOL_CALL, error=SpanError(message="boom", type="TimeoutError"))
    assert span_attributes(span)["error.type"] == "TimeoutError"


def test_without_content_no_message_argument_or_document_is_sent() -> None:
    for span in (
        make_span(SpanType.MODEL_GENERATION, input=CHAT, output="ok", usage=Usage(input=3)),
        make_span(SpanType.TOOL_CALL, input={"order": 42}, output="shipped"),
        make_span(SpanType.RETRIEVAL, input="q", output=DOCS),
    ):
        out = span_attributes(span, CONVENTIONS, include_content=False)
        leaked = [
            key
            for key in out
            if "messages" in key
            or "documents" in key
            or key.startswith(
                ("gen_ai.tool.call.", "gen_ai.retrieval.query", "gen_ai.system_instr")
            )
        ]
        assert leaked == []


def test_shapes_that_are_not_messages_or_documents_stay_plain() -> None:
    span = make_span(SpanType.MODEL_GENERATION, input={"prompt": "hi"}, output=[1, 2])
    out = span_attributes(span, CONVENTIONS)
    assert "gen_ai.input.messages" not in out
    assert not any(key.startswith("llm.input_messages") for key in out)
    retrieval = make_span(SpanType.RETRIEVAL, output=[{"no": "text"}])
    assert "gen_ai.retrieval.documents" not in span_attributes(retrieval, CONVENTIONS)


def test_unknown_conventions_are_refused() -> None:
    with pytest.raises(obshub.ConfigError, match="conventions"):
        OtlpExporter(conventions="zipkin")
    with pytest.raises(obshub.ConfigError, match="conventions"):
        OtlpExporter(conventions=[])
    with pytest.raises(ValueError, match="unknown convention"):
        span_attributes(make_span(SpanType.GENERIC), "zipkin")


def test_the_conventions_key_reaches_the_receiver(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(conventions=["genai", "openinference"])
    with hub.span("search", type="retrieval") as span:
        span.update(output=DOCS)
    assert hub.flush(5)
    attributes = receiver.span("search").attributes
    assert attributes["openinference.span.kind"] == "RETRIEVER"
    assert attributes["gen_ai.operation.name"] == "retrieval"
    assert attributes["retrieval.documents.1.document.id"] == "kb-2"


def test_the_default_is_genai_only(make_hub: MakeHub, receiver: OtlpReceiver) -> None:
    hub = make_hub()
    with hub.span("agent", type="agent_run"):
        pass
    assert hub.flush(5)
    attributes = receiver.span("agent").attributes
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert "openinference.span.kind" not in attributes


def test_check_details_name_the_conventions(receiver: OtlpReceiver) -> None:
    exporter = OtlpExporter(endpoint=receiver.url, conventions="openinference")
    assert exporter.conventions == ("openinference",)
    assert exporter.check().details["conventions"] == ["openinference"]
