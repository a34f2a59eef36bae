"""What a receiver sees: resource, GenAI attributes, content, errors, parents."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from obshub_otlp.testing import OtlpReceiver

import obshub

MakeHub = Callable[..., obshub.Hub]


def test_the_resource_names_the_service_and_the_sdk(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    resource = receiver.span("agent").resource
    assert resource["service.name"] == "support-bot"
    assert resource["telemetry.sdk.name"] == "obshub"
    assert resource["telemetry.sdk.language"] == "python"


def test_resource_attributes_are_added_to_every_span(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(
        resource_attributes={
            "deployment.environment.name": "staging",
            "service.version": "1.4.2",
            "host.cores": 8,
            "feature.flags": ["a", "b"],
        }
    )
    with hub.span("agent"), hub.span("tool", type="tool_call"):
        pass
    assert hub.flush(5)
    for span in receiver.spans():
        assert span.resource["deployment.environment.name"] == "staging"
        assert span.resource["service.version"] == "1.4.2"
        assert span.resource["host.cores"] == 8
        assert span.resource["feature.flags"] == ["a", "b"]
        assert span.resource["service.name"] == "support-bot"


def test_otel_resource_attributes_are_merged_and_the_table_wins(
    make_hub: MakeHub, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=api-7f9c,team=ai%20platform,region=eu"
    )
    hub = make_hub(resource_attributes={"region": "us"})
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    resource = receiver.span("agent").resource
    assert resource["k8s.pod.name"] == "api-7f9c"
    assert resource["team"] == "ai platform"
    assert resource["region"] == "us"


def test_service_name_in_the_environment_does_not_override_the_config(
    make_hub: MakeHub, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env")
    hub = make_hub()
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert receiver.span("agent").resource["service.name"] == "support-bot"


def test_service_name_in_the_environment_names_an_unnamed_service(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obshub_otlp import OtlpExporter

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env")
    hub = obshub.Hub(exporters=[OtlpExporter(endpoint=receiver.url)])
    try:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    assert receiver.span("agent").resource["service.name"] == "from-env"


def test_service_name_in_the_exporter_table_wins_for_that_exporter(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(resource_attributes={"service.name": "support-bot-eu"})
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert receiver.span("agent").resource["service.name"] == "support-bot-eu"


def test_a_generation_carries_the_genai_semantic_conventions(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    with hub.span(
        "gpt-4o",
        type="model_generation",
        model="gpt-4o",
        provider="openai",
        parameters={"temperature": 0.2, "max_tokens": 256},
        session_id="s-42",
        user_id="u-7",
    ) as gen:
        gen.update(usage={"input": 812, "output": 95})
    assert hub.flush(5)
    attributes = receiver.span("gpt-4o").attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert attributes["gen_ai.usage.input_tokens"] == 812
    assert attributes["gen_ai.usage.output_tokens"] == 95
    assert attributes["gen_ai.conversation.id"] == "s-42"
    assert attributes["session.id"] == "s-42"
    assert attributes["user.id"] == "u-7"
    assert attributes["obshub.span.type"] == "model_generation"


def test_agents_and_tools_are_named_by_the_conventions(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    with hub.span("support-agent", type="agent_run"), hub.span("search_docs", type="tool_call"):
        pass
    assert hub.flush(5)
    agent, tool = receiver.span("support-agent"), receiver.span("search_docs")
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "support-agent"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "search_docs"
    assert tool.parent_span_id == agent.span_id
    assert tool.trace_id == agent.trace_id
    assert agent.parent_span_id is None


def test_input_output_metadata_and_tags_travel_as_content_attributes(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    with hub.span(
        "agent", input="Where is my order?", metadata={"ticket": 12}, tags=["beta", "eu"]
    ) as agent:
        agent.update(output={"answer": "On its way", "confidence": 0.9})
    assert hub.flush(5)
    attributes = receiver.span("agent").attributes
    assert attributes["input.value"] == "Where is my order?"
    assert attributes["input.mime_type"] == "text/plain"
    assert attributes["output.value"] == '{"answer":"On its way","confidence":0.9}'
    assert attributes["output.mime_type"] == "application/json"
    assert attributes["metadata"] == '{"ticket":12}'
    assert attributes["tag.tags"] == ["beta", "eu"]


def test_include_content_false_leaves_the_content_out(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub(include_content=False)
    with hub.span("agent", type="agent_run", input="secret prompt", metadata={"k": 1}) as agent:
        agent.update(output="secret answer")
    assert hub.flush(5)
    attributes = receiver.span("agent").attributes
    assert not {"input.value", "output.value", "metadata"} & attributes.keys()
    assert attributes["gen_ai.operation.name"] == "invoke_agent"


def test_attributes_set_by_the_application_are_not_overwritten(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    with hub.span("agent", input="raw", attributes={"input.value": "summarised"}):
        pass
    assert hub.flush(5)
    assert receiver.span("agent").attributes["input.value"] == "summarised"


def test_an_exception_sets_error_status_and_an_exception_event(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    hub = make_hub()
    with pytest.raises(RuntimeError), hub.span("tool", type="tool_call"):
        raise RuntimeError("index unavailable")
    assert hub.flush(5)
    span = receiver.span("tool")
    assert span.status_code == 2
    assert span.status_message == "index unavailable"
    (event,) = span.events
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "RuntimeError"
    assert event["attributes"]["exception.message"] == "index unavailable"
