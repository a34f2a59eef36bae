"""OpenTelemetry instrumentations, the real ones from PyPI, through obshub to Langfuse.

Each test drives the real ``openai`` or ``anthropic`` SDK, instrumented by the
real instrumentation package (pinned in the ``otel-test`` extra), against a
loopback server speaking the provider's HTTP API (`ProviderStandIn`), inside
an obshub agent span; `obshub.otel.SpanProcessor` bridges the instrumentation's
spans into a hub whose Langfuse exporter sends to the stand-in. The stand-in
must receive generations with model, input messages, output, usage (cached and
reasoning tokens where the instrumentation reports them) and time to first
token when streaming (where the instrumentation records it), under the agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from obshub_langfuse.testing import LangfuseStandIn
from opentelemetry.sdk.trace import TracerProvider

import obshub
import obshub.otel
from obshub.testing.server import Fault, IncomingRequest, LocalServer, Reply

ANSWER = "Paris is the capital of France."
#: Usage the OpenAI side reports: 120 in (100 cached), 40 out (16 reasoning).
OPENAI_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 40,
    "total_tokens": 160,
    "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 16, "audio_tokens": 0},
}
#: Usage the Anthropic side reports: 50 fresh in, 30 read from cache, 10 written, 25 out.
ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "output_tokens": 25,
    "cache_read_input_tokens": 30,
    "cache_creation_input_tokens": 10,
}
TOOL_ARGUMENTS = '{"city": "Paris"}'


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    lines = []
    for name, data in events:
        if name is not None:
            lines.append(f"event: {name}")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}")
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


class ProviderStandIn(LocalServer):
    """Answers ``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/messages``."""

    kind = "provider stand-in"
    thread_name = "provider-stand-in"

    @property
    def url(self) -> str:
        return self._base_url()

    def server_errors(self) -> list[str]:
        """What went wrong answering (an empty list when every request was served)."""
        with self._cond:
            return list(self._errors)

    def _answer(self, incoming: IncomingRequest, fault: Fault | None) -> Reply:
        request = json.loads(incoming.body or b"{}")
        if incoming.path.endswith("/chat/completions"):
            return self._chat(request)
        if incoming.path.endswith("/embeddings"):
            inputs = request.get("input")
            count = len(inputs) if isinstance(inputs, list) else 1
            return _json(
                {
                    "object": "list",
                    "model": request.get("model"),
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                        for i in range(count)
                    ],
                    "usage": {"prompt_tokens": 8, "total_tokens": 8},
                }
            )
        if incoming.path.endswith("/messages"):
            return self._messages(request)
        return Reply(404, b'{"error": {"message": "not found"}}')

    def _chat(self, request: dict[str, Any]) -> Reply:
        model = request.get("model", "gpt-4o")
        tools = bool(request.get("tools"))
        base = {"id": "chatcmpl-1", "created": 1_700_000_000, "model": f"{model}-2024-08-06"}
        if not request.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tools else ANSWER}
            if tools:
                message["tool_calls"] = [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS},
                    }
                ]
            choice = {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tools else "stop",
            }
            return _json(
                {**base, "object": "chat.completion", "choices": [choice], "usage": OPENAI_USAGE}
            )
        chunk = {**base, "object": "chat.completion.chunk"}
        events: list[tuple[str | None, Any]] = [
            (
                None,
                {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            )
        ]
        for piece in ("Paris is ", "the capital ", "of France."):
            events.append((None, {**chunk, "choices": [{"index": 0, "delta": {"content": piece}}]}))
        events.append(
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        )
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**chunk, "choices": [], "usage": OPENAI_USAGE}))
        events.append((None, "[DONE]"))
        return Reply(200, _sse(events), {"Content-Type": "text/event-stream"})

    def _messages(self, request: dict[str, Any]) -> Reply:
        model = request.get("model", "claude-haiku-4-5")
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        if not request.get("stream"):
            return _json(
                {**message, "content": [{"type": "text", "text": ANSWER}], "usage": ANTHROPIC_USAGE}
            )
        start_usage = {**ANTHROPIC_USAGE, "output_tokens": 1}
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": start_usage,
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        for piece in ("Paris is ", "the capital ", "of France."):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": ANTHROPIC_USAGE["output_tokens"]},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return Reply(200, _sse(events), {"Content-Type": "text/event-stream"})


def _json(payload: Any) -> Reply:
    return Reply(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})


# -- the instrumentations ------------------------------------------------------------------


def _openai_v2() -> Any:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openinference_openai() -> Any:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openllmetry_openai() -> Any:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openinference_anthropic() -> Any:
    from openinference.instrumentation.anthropic import AnthropicInstrumentor

    return AnthropicInstrumentor()


#: name -> (instrumentor factory, environment it needs to record message content,
#: what it reports: cached tokens, reasoning tokens, time to first token when streaming)
OPENAI_INSTRUMENTATIONS: dict[str, tuple[Callable[[], Any], dict[str, str], set[str]]] = {
    "opentelemetry-instrumentation-openai-v2": (
        _openai_v2,
        {
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        },
        set(),
    ),
    "openinference-instrumentation-openai": (
        _openinference_openai,
        {},
        {"cached", "reasoning", "ttft", "stream_reasoning"},
    ),
    "opentelemetry-instrumentation-openai (OpenLLMetry)": (
        _openllmetry_openai,
        {"TRACELOOP_TRACE_CONTENT": "true"},
        {"cached", "reasoning", "ttft"},
    ),
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def provider() -> Iterator[ProviderStandIn]:
    with ProviderStandIn() as stand_in:
        yield stand_in
    assert not stand_in.server_errors()


def _instrument(
    factory: Callable[[], Any], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, hub: Any
) -> Iterator[Any]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    tracer_provider = TracerProvider()
    processor = obshub.otel.SpanProcessor(hub)
    tracer_provider.add_span_processor(processor)
    instrumentor = factory()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()


def _text(value: Any) -> str:
    return json.dumps(value)


def _generations(server: LangfuseStandIn, agent_name: str) -> tuple[Any, list[Any]]:
    observations = server.observations()
    agent = next(o for o in observations if o.name == agent_name)
    return agent, [o for o in observations if o.id != agent.id]


@pytest.mark.parametrize("name", list(OPENAI_INSTRUMENTATIONS))
def test_openai_calls_arrive_as_generations_under_the_agent(
    name: str,
    provider: ProviderStandIn,
    server: LangfuseStandIn,
    make_hub: Callable[..., obshub.Hub],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factory, env, reports = OPENAI_INSTRUMENTATIONS[name]
    hub = make_hub()
    instrumented = _instrument(factory, env, monkeypatch, hub)
    next(instrumented)
    try:
        client = openai.OpenAI(api_key="sk-test", base_url=provider.url + "/v1", max_retries=0)
        with hub.span("support-agent", type="agent_run", session_id="s-42") as agent:
            client.chat.completions.create(
                model="gpt-4o",
                messages=[
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Capital of France?"},
                ],
                temperature=0.2,
            )
            stream = client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "Stream it"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == ANSWER
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS
            )
            client.embeddings.create(model="text-embedding-3-small", input=["hello"])
    finally:
        next(instrumented, None)
    assert hub.flush(timeout=10)

    agent_obs, children = _generations(server, "support-agent")
    assert agent_obs.id == agent.span_id
    assert len(children) == 4, [c.name for c in children]
    for child in children:
        assert child.trace_id == agent.trace_id
        assert child.parent_observation_id == agent.span_id
        assert child.session_id == "s-42"
    chats = [c for c in children if c.type == "GENERATION"]
    assert len(chats) == 3
    plain = next(c for c in chats if "Capital of France" in _text(c.input))
    streamed = next(c for c in chats if "Stream it" in _text(c.input))
    tool = next(c for c in chats if "Weather?" in _text(c.input))
    (embedding,) = [c for c in children if c not in chats]

    for chat in (plain, streamed, tool):
        assert chat.model == "gpt-4o-2024-08-06"
        assert chat.usage_details is not None
        assert chat.usage_details["total"] == 160
    assert "Be brief." in _text(plain.input)
    assert ANSWER in _text(plain.output)
    assert ANSWER in _text(streamed.output)
    assert "get_weather" in _text(tool.output)
    assert "Paris" in _text(tool.output)
    assert plain.model_parameters is not None
    assert float(plain.model_parameters["temperature"]) == 0.2
    assert "model" not in plain.model_parameters  # a field of its own
    if "cached" in reports:
        assert plain.usage_details == {
            **plain.usage_details,
            "input": 20,
            "input_cached_tokens": 100,
        }
        assert streamed.usage_details["input_cached_tokens"] == 100
    else:
        assert plain.usage_details["input"] == 120
    if "reasoning" in reports:
        assert plain.usage_details["output"] == 24
        assert plain.usage_details["output_reasoning_tokens"] == 16
    else:
        assert plain.usage_details["output"] == 40
    if "ttft" in reports:
        assert streamed.completion_start_time is not None
        assert streamed.start_time <= streamed.completion_start_time <= streamed.end_time
    assert embedding.model == "text-embedding-3-small"
    assert embedding.usage_details is not None
    assert embedding.usage_details["input"] == 8


def test_anthropic_messages_arrive_as_generations_under_the_agent(
    provider: ProviderStandIn,
    server: LangfuseStandIn,
    make_hub: Callable[..., obshub.Hub],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = make_hub()
    instrumented = _instrument(_openinference_anthropic, {}, monkeypatch, hub)
    next(instrumented)
    try:
        client = anthropic.Anthropic(api_key="sk-ant-test", base_url=provider.url, max_retries=0)
        messages = [{"role": "user", "content": "Capital of France?"}]
        with hub.span("support-agent", type="agent_run") as agent:
            client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=messages)
            with client.messages.stream(
                model="claude-haiku-4-5",
                max_tokens=100,
                messages=[{"role": "user", "content": "Stream it"}],
            ) as stream:
                assert "".join(stream.text_stream) == ANSWER
    finally:
        next(instrumented, None)
    assert hub.flush(timeout=10)

    agent_obs, children = _generations(server, "support-agent")
    assert agent_obs.id == agent.span_id
    assert len(children) == 2
    for child in children:
        assert child.type == "GENERATION"
        assert child.trace_id == agent.trace_id
        assert child.parent_observation_id == agent.span_id
        assert child.model == "claude-haiku-4-5"
        assert ANSWER in _text(child.output)
        # 50 fresh + 30 read from the cache + 10 written to it; 25 out
        assert child.usage_details == {
            "input": 50,
            "input_cached_tokens": 30,
            "input_cache_creation": 10,
            "output": 25,
            "total": 115,
        }
    assert any("Capital of France?" in _text(c.input) for c in children)
    assert any("Stream it" in _text(c.input) for c in children)
