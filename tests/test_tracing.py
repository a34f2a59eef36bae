"""Recording spans: context managers, nesting, asyncio, threads, the decorator, errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest

import obshub
from obshub import EventKind, Level, SpanType, Usage

WAIT = 5.0


@pytest.fixture
def recorded(hub_factory: Any) -> tuple[obshub.Hub, obshub.MemoryExporter]:
    return hub_factory.memory()


def delivered(hub: obshub.Hub, memory: obshub.MemoryExporter) -> dict[str, obshub.Span]:
    """Flush and return the ended spans by name."""
    assert hub.flush(timeout=WAIT)
    return {s.name: s for s in memory.spans()}


def flushed_spans(hub: obshub.Hub, memory: obshub.MemoryExporter) -> list[obshub.Span]:
    assert hub.flush(timeout=WAIT)
    return memory.spans()


def only_span(hub: obshub.Hub, memory: obshub.MemoryExporter) -> obshub.Span:
    (span,) = flushed_spans(hub, memory)
    return span


class AgentError(Exception):
    pass


# -- the context manager ----------------------------------------------------------


def test_a_with_block_records_one_ended_span_with_its_fields(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("support-agent", type="agent_run", input="why?", metadata={"team": "a"}) as agent:
        agent.update(output="because")
    span = delivered(hub, memory)["support-agent"]
    assert span.type is SpanType.AGENT_RUN
    assert (span.input, span.output, span.metadata) == ("why?", "because", {"team": "a"})
    assert span.trace_id == agent.trace_id
    assert span.span_id == agent.span_id
    assert span.is_root
    assert span.end_time is not None
    assert span.end_time >= span.start_time
    assert span.level is Level.DEFAULT
    assert span.error is None


def test_a_live_span_exposes_w3c_shaped_ids(recorded: Any) -> None:
    hub, _ = recorded
    with hub.span("x") as span:
        assert len(span.trace_id) == 32
        assert len(span.span_id) == 16
        int(span.trace_id, 16)
        int(span.span_id, 16)


def test_model_generation_fields_arrive_as_first_class_values(recorded: Any) -> None:
    hub, memory = recorded
    first_token = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with hub.span(
        "gpt-4o",
        type=SpanType.MODEL_GENERATION,
        model="gpt-4o",
        provider="openai",
        parameters={"temperature": 0.2},
        prompt={"name": "support", "version": 3},
    ) as gen:
        gen.update(
            usage={"input": 812, "output": 95, "cached_input": 512},
            cost=obshub.Cost(total=0.01),
            completion_start_time=first_token,
        )
    span = delivered(hub, memory)["gpt-4o"]
    assert (span.model, span.provider) == ("gpt-4o", "openai")
    assert span.parameters == {"temperature": 0.2}
    assert span.usage == Usage(input=812, output=95, cached_input=512)
    assert span.cost is not None
    assert span.cost.total == 0.01
    assert span.prompt == obshub.Prompt(name="support", version=3)
    assert span.completion_start_time == int(first_token.timestamp()) * 1_000_000_000


def test_a_span_ended_by_hand_is_delivered_once_even_if_ended_twice(recorded: Any) -> None:
    hub, memory = recorded
    span = hub.span("manual")
    span.end(end_time=span.start_time + 1_000)
    span.end()
    assert hub.flush(timeout=WAIT)
    assert [s.duration_ns for s in memory.spans()] == [1_000]
    assert span.ended
    assert not span.is_recording


def test_an_explicit_start_time_is_kept(recorded: Any) -> None:
    hub, memory = recorded
    started = 1_767_323_045_000_000_000
    with hub.span("backfilled", start_time=started):
        pass
    span = delivered(hub, memory)["backfilled"]
    assert span.start_time == started
    assert span.duration_ns is not None
    assert span.duration_ns > 0


def test_an_exporter_wanting_every_kind_sees_started_updated_then_ended(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("step") as span:
        span.update(output=1)
    assert hub.flush(timeout=WAIT)
    assert [e.kind for e in memory.events] == [
        EventKind.STARTED,
        EventKind.UPDATED,
        EventKind.ENDED,
    ]
    assert memory.events[1].span.output == 1
    assert memory.events[1].span.end_time is None


# -- nesting -----------------------------------------------------------------------


def test_spans_opened_in_called_functions_become_children_of_the_open_span(
    recorded: Any,
) -> None:
    hub, memory = recorded

    def retrieve() -> None:
        with hub.span("retrieve", type="retrieval"):
            pass

    def generate() -> None:
        with hub.span("generate", type="model_generation"):
            retrieve()

    with hub.span("agent", type="agent_run") as agent:
        generate()
        retrieve_again = hub.span("sibling")
        retrieve_again.end()
    spans = delivered(hub, memory)
    assert spans["generate"].parent_span_id == agent.span_id
    assert spans["retrieve"].parent_span_id == spans["generate"].span_id
    assert spans["sibling"].parent_span_id == agent.span_id
    assert {s.trace_id for s in spans.values()} == {agent.trace_id}


def test_the_current_span_is_the_innermost_open_one_and_none_outside(recorded: Any) -> None:
    hub, _ = recorded
    assert obshub.current_span() is None
    with hub.span("outer") as outer:
        assert obshub.current_span() is outer
        with hub.span("inner") as inner:
            assert obshub.current_span() is inner
        assert obshub.current_span() is outer
    assert obshub.current_span() is None


def test_the_current_span_is_restored_when_an_exception_leaves_the_block(recorded: Any) -> None:
    hub, _ = recorded
    with hub.span("outer") as outer:
        with pytest.raises(AgentError), hub.span("inner"):
            raise AgentError
        assert obshub.current_span() is outer
    assert obshub.current_span() is None


def test_a_span_after_the_root_closed_starts_a_new_trace(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("first") as first:
        pass
    with hub.span("second") as second:
        pass
    spans = delivered(hub, memory)
    assert first.trace_id != second.trace_id
    assert spans["second"].is_root


def test_an_explicit_parent_wins_over_the_current_span(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("a") as a, hub.span("b"), hub.span("c", parent=a):
        pass
    spans = delivered(hub, memory)
    assert spans["c"].parent_span_id == a.span_id


def test_spans_in_asyncio_tasks_nest_under_the_span_that_created_the_tasks(
    recorded: Any,
) -> None:
    hub, memory = recorded

    async def tool(name: str) -> str:
        with hub.span(name, type="tool_call"):
            await asyncio.sleep(0)
            with hub.span(f"{name}-inner"):
                await asyncio.sleep(0)
        return name

    async def main() -> str:
        with hub.span("agent", type="agent_run") as agent:
            await asyncio.gather(tool("search"), tool("fetch"))
            task = asyncio.create_task(tool("later"))
            await task
        return agent.span_id

    agent_id = asyncio.run(main())
    spans = delivered(hub, memory)
    for name in ("search", "fetch", "later"):
        assert spans[name].parent_span_id == agent_id
        assert spans[f"{name}-inner"].parent_span_id == spans[name].span_id
    assert len({s.trace_id for s in spans.values()}) == 1


def test_concurrent_tasks_do_not_see_each_others_spans(recorded: Any) -> None:
    hub, memory = recorded

    async def main() -> None:
        ready = asyncio.Event()  # set once both tasks have their span open
        count = 0

        async def worker(name: str) -> None:
            nonlocal count
            with hub.span(name):
                count += 1
                if count == 2:
                    ready.set()
                await ready.wait()
                with hub.span(f"{name}-child"):
                    pass

        with hub.span("root"):
            await asyncio.gather(worker("a"), worker("b"))

    asyncio.run(main())
    spans = delivered(hub, memory)
    assert spans["a-child"].parent_span_id == spans["a"].span_id
    assert spans["b-child"].parent_span_id == spans["b"].span_id


def test_threads_started_with_bind_context_nest_under_the_calling_span(recorded: Any) -> None:
    hub, memory = recorded

    def work(name: str) -> None:
        with hub.span(name):
            pass

    with hub.span("agent") as agent:
        bound = threading.Thread(target=obshub.bind_context(work), args=("bound",))
        unbound = threading.Thread(target=work, args=("unbound",))
        bound.start()
        unbound.start()
        bound.join()
        unbound.join()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(obshub.bind_context(work), ["pool-1", "pool-2"]))
    spans = delivered(hub, memory)
    for name in ("bound", "pool-1", "pool-2"):
        assert spans[name].parent_span_id == agent.span_id
        assert spans[name].trace_id == agent.trace_id
    assert spans["unbound"].is_root
    assert spans["unbound"].trace_id != agent.trace_id


def test_a_span_opened_in_a_bound_thread_does_not_leak_into_the_caller(recorded: Any) -> None:
    hub, _ = recorded
    seen: list[Any] = []

    def work() -> None:
        hub.span("left-open").__enter__()
        seen.append(obshub.current_span())

    with hub.span("agent") as agent:
        thread = threading.Thread(target=obshub.bind_context(work))
        thread.start()
        thread.join()
        assert obshub.current_span() is agent
    assert seen[0].name == "left-open"


# -- errors -------------------------------------------------------------------------


def test_an_exception_marks_the_span_as_error_and_propagates_unchanged(recorded: Any) -> None:
    hub, memory = recorded
    error = AgentError("model refused")
    with pytest.raises(AgentError) as raised, hub.span("agent"):
        raise error
    assert raised.value is error
    span = delivered(hub, memory)["agent"]
    assert span.level is Level.ERROR
    assert span.error is not None
    assert span.error.message == "model refused"
    assert span.error.type.endswith("AgentError")
    assert "." in span.error.type  # qualified with its module
    assert span.error.stack is not None
    assert "model refused" in span.error.stack
    assert span.status_message == "model refused"


def test_a_builtin_exception_type_is_named_without_a_module(recorded: Any) -> None:
    hub, memory = recorded
    with pytest.raises(KeyError), hub.span("lookup"):
        raise KeyError("missing")
    span = delivered(hub, memory)["lookup"]
    assert span.error is not None
    assert span.error.type == "KeyError"


def test_an_exception_keeps_a_status_message_set_before(recorded: Any) -> None:
    hub, memory = recorded
    with pytest.raises(ValueError, match="x"), hub.span("s", status_message="retries exhausted"):
        raise ValueError("x")
    span = delivered(hub, memory)["s"]
    assert span.status_message == "retries exhausted"
    assert span.level is Level.ERROR


def test_an_exception_whose_str_raises_is_still_recorded(recorded: Any) -> None:
    hub, memory = recorded

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(Unprintable), hub.span("s"):
        raise Unprintable
    span = delivered(hub, memory)["s"]
    assert span.level is Level.ERROR
    assert span.error is not None
    assert "Unprintable" in span.error.message


def test_an_error_in_a_child_does_not_mark_the_parent_when_it_is_handled(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("agent"):
        try:
            with hub.span("tool"):
                raise ValueError("tool failed")
        except ValueError:
            pass
    spans = delivered(hub, memory)
    assert spans["tool"].level is Level.ERROR
    assert spans["agent"].level is Level.DEFAULT
    assert spans["agent"].error is None


# -- update semantics -----------------------------------------------------------------


def test_update_merges_metadata_attributes_and_parameters_and_replaces_the_rest(
    recorded: Any,
) -> None:
    hub, memory = recorded
    with hub.span(
        "s",
        output="draft",
        metadata={"a": 1, "b": 1},
        attributes={"x": 1},
        parameters={"temperature": 0.1},
    ) as span:
        span.update(output="final", metadata={"b": 2, "c": 3}, attributes={"y": 2})
        span.update(parameters={"max_tokens": 10}, model="m1")
        span.update(model="m2")
    got = delivered(hub, memory)["s"]
    assert got.output == "final"
    assert got.metadata == {"a": 1, "b": 2, "c": 3}
    assert got.attributes == {"x": 1, "y": 2}
    assert got.parameters == {"temperature": 0.1, "max_tokens": 10}
    assert got.model == "m2"


def test_update_can_rename_a_span_and_set_its_level(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("draft-name") as span:
        span.update(name="final-name", level="WARNING", status_message="slow")
    got = delivered(hub, memory)["final-name"]
    assert got.level is Level.WARNING
    assert got.status_message == "slow"


def test_updates_after_the_span_ended_are_ignored(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("s", output="before") as span:
        pass
    assert span.update(output="after") is span
    assert delivered(hub, memory)["s"].output == "before"


def test_the_recorded_input_does_not_change_when_the_caller_later_appends_to_it(
    recorded: Any,
) -> None:
    hub, memory = recorded
    messages = [{"role": "user", "content": "hi"}]
    with hub.span("gen", input=messages) as gen:
        messages.append({"role": "assistant", "content": "hello"})
        gen.update(output=messages)
        messages.append({"role": "user", "content": "again"})
    got = delivered(hub, memory)["gen"]
    assert len(got.input) == 1
    assert len(got.output) == 2


def test_metadata_given_as_none_means_no_metadata(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("s", metadata=None, attributes=None, parameters=None):
        pass
    got = delivered(hub, memory)["s"]
    assert got.metadata == {}
    assert got.attributes == {}
    assert got.parameters == {}


def test_metadata_that_is_not_a_dict_is_kept_under_value(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("s", metadata=["a", "b"]):
        pass
    assert delivered(hub, memory)["s"].metadata == {"value": ["a", "b"]}


# -- trace-level fields and event spans --------------------------------------------------


def test_session_user_and_tags_appear_on_every_span_of_the_trace(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("agent", session_id="s-42", tags=["beta"]) as agent:
        with hub.span("tool") as tool:
            tool.update(user_id="u-7", tags=["beta", "eu"])
        agent.event("cache-hit")
    spans = delivered(hub, memory)
    assert set(spans) == {"agent", "tool", "cache-hit"}
    for span in spans.values():
        assert span.session_id == "s-42"
        assert span.user_id == "u-7"
        assert span.tags == ("beta", "eu")


def test_a_numeric_session_id_becomes_text_and_a_single_tag_may_be_a_string(
    recorded: Any,
) -> None:
    hub, memory = recorded
    with hub.span("s", session_id=42, user_id=7, tags="solo"):
        pass
    got = delivered(hub, memory)["s"]
    assert (got.session_id, got.user_id, got.tags) == ("42", "7", ("solo",))


def test_an_event_under_a_span_is_delivered_once_as_an_ended_event_span(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("agent") as agent:
        agent.event("cache-hit", metadata={"key": "faq-12"}, type="retrieval")
    assert hub.flush(timeout=WAIT)
    events = [e for e in memory.events if e.span.name == "cache-hit"]
    assert [e.kind for e in events] == [EventKind.ENDED]
    event = events[0].span
    assert event.is_event
    assert event.parent_span_id == agent.span_id
    assert event.metadata == {"key": "faq-12"}
    assert event.type is SpanType.RETRIEVAL
    assert event.start_time == event.end_time


def test_hub_event_attaches_to_the_current_span_or_starts_its_own_trace(
    recorded: Any,
) -> None:
    hub, memory = recorded
    with hub.span("agent") as agent:
        hub.event("inside", input="i")
    hub.event("alone", session_id="s-1")
    assert hub.flush(timeout=WAIT)
    by_name: dict[str, list[obshub.SpanEvent]] = {}
    for e in memory.events:
        by_name.setdefault(e.span.name, []).append(e)
    assert [e.kind for e in by_name["inside"]] == [EventKind.ENDED]
    assert [e.kind for e in by_name["alone"]] == [EventKind.ENDED]
    inside, alone = by_name["inside"][0].span, by_name["alone"][0].span
    assert inside.parent_span_id == agent.span_id
    assert inside.is_event
    assert alone.is_event
    assert alone.is_root
    assert alone.trace_id != agent.trace_id
    assert alone.session_id == "s-1"


# -- recording never raises ----------------------------------------------------------


@pytest.mark.parametrize(
    "bad_usage",
    ["lots", {"input": "812"}, {"input": object()}, 12, ["input", 1]],
    ids=["text", "text-count", "object-count", "number", "list"],
)
def test_a_bad_usage_value_is_ignored_and_the_span_still_arrives(
    recorded: Any, bad_usage: object
) -> None:
    hub, memory = recorded
    with hub.span("gen", type="model_generation", usage=bad_usage, output="ok") as gen:
        gen.update(usage=bad_usage)
    got = delivered(hub, memory)["gen"]
    assert got.usage is None
    assert got.output == "ok"


def test_an_unknown_field_is_ignored_and_the_span_still_arrives(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("s", colour="blue", output="ok") as span:
        span.update(flavour="lemon")
    got = delivered(hub, memory)["s"]
    assert got.output == "ok"
    assert "colour" not in got.metadata


@pytest.mark.parametrize(
    "weird_type",
    ["not-a-type", 42, None, ["tool_call"], {"k": "v"}],
    ids=["unknown-text", "number", "none", "list", "dict"],
)
def test_a_weird_span_type_records_a_generic_span(recorded: Any, weird_type: object) -> None:
    hub, memory = recorded
    with hub.span("s", type=weird_type) as span:  # type: ignore[arg-type]
        span.event("e", type=weird_type)
        with hub.span("child"):
            pass
    spans = delivered(hub, memory)
    assert set(spans) == {"s", "e", "child"}
    assert spans["s"].type is SpanType.GENERIC
    assert spans["e"].type is SpanType.GENERIC
    assert spans["child"].parent_span_id == spans["s"].span_id


def test_a_type_given_by_its_text_value_is_understood(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("s", type="mcp_tool_call"):
        pass
    assert delivered(hub, memory)["s"].type is SpanType.MCP_TOOL_CALL


@pytest.mark.parametrize(
    "fields",
    [
        {"level": "catastrophic"},
        {"level": ["error"]},
        {"completion_start_time": "soon"},
        {"completion_start_time": float("nan")},
        {"prompt": {"no-name": 1}},
        {"cost": "cheap"},
        {"cost": {"total": float("nan")}},
    ],
    ids=["level", "level-list", "cst-text", "cst-nan", "prompt", "cost", "cost-nan"],
)
def test_an_invalid_field_value_is_dropped_and_the_span_still_arrives(
    recorded: Any, fields: dict[str, Any]
) -> None:
    hub, memory = recorded
    with hub.span("s", output="ok", **fields) as span:
        span.update(**fields)
    got = delivered(hub, memory)["s"]
    assert got.output == "ok"
    assert got.level is Level.DEFAULT
    assert got.completion_start_time is None
    assert got.prompt is None
    assert got.cost is None


def test_tags_that_are_not_a_list_are_kept_as_one_tag(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("s", tags=5):
        pass
    assert delivered(hub, memory)["s"].tags == ("5",)


def test_recording_on_a_hub_with_no_config_does_nothing_and_raises_nothing(
    hub_factory: Any,
) -> None:
    hub = hub_factory()
    with hub.span("s", usage="bad") as span:
        span.update(output=object())
        span.event("e")
        span.score("quality", 1)
    assert not span.is_recording
    assert hub.flush(timeout=WAIT)
    assert hub.stats() == {}


# -- the decorator -----------------------------------------------------------------------


def test_observe_records_a_call_named_after_the_function_with_arguments_and_result(
    recorded: Any,
) -> None:
    hub, memory = recorded

    @hub.observe(type="tool_call")
    def search_docs(query: str, limit: int = 3) -> list[str]:
        return [query] * limit

    assert search_docs("refund", limit=2) == ["refund", "refund"]
    assert search_docs.__name__ == "search_docs"
    span = only_span(hub, memory)
    assert span.name.endswith("search_docs")
    assert span.type is SpanType.TOOL_CALL
    assert span.input == {"query": "refund", "limit": 2}
    assert span.output == ["refund", "refund"]


def test_observe_without_parentheses_and_with_a_name_and_fields(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe
    def plain(x: int) -> int:
        return x + 1

    @hub.observe(name="renamed", capture_input=False, capture_output=False, tags=["t"])
    def secret(x: int) -> int:
        return x * 2

    assert plain(1) == 2
    assert secret(2) == 4
    spans = delivered(hub, memory)
    got = spans["renamed"]
    assert got.input is None
    assert got.output is None
    assert got.tags == ("t",)
    (plain_name,) = [n for n in spans if n != "renamed"]
    assert plain_name.endswith("plain")


def test_observe_on_a_method_does_not_record_self(recorded: Any) -> None:
    hub, memory = recorded

    class Agent:
        @hub.observe
        def run(self, question: str) -> str:
            return question.upper()

    assert Agent().run("hi") == "HI"
    span = only_span(hub, memory)
    assert span.input == {"question": "hi"}
    assert span.name.endswith("Agent.run")


def test_observe_records_star_args_and_keyword_arguments(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe
    def combine(first: str, *rest: str, sep: str = "-", **extra: Any) -> str:
        return sep.join((first, *rest))

    assert combine("a", "b", "c", sep="+", flag=True) == "a+b+c"
    span = only_span(hub, memory)
    assert span.input == {"first": "a", "rest": ["b", "c"], "sep": "+", "extra": {"flag": True}}


def test_observe_nests_calls_inside_an_open_span(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe
    def inner() -> None:
        pass

    @hub.observe
    def outer() -> None:
        inner()

    with hub.span("root") as root:
        outer()
    spans = {s.name.rsplit(".", 1)[-1]: s for s in delivered(hub, memory).values()}
    assert spans["outer"].parent_span_id == root.span_id
    assert spans["inner"].parent_span_id == spans["outer"].span_id


def test_observe_marks_the_span_as_error_and_reraises_the_same_exception(recorded: Any) -> None:
    hub, memory = recorded
    error = AgentError("tool down")

    @hub.observe
    def call_tool() -> None:
        raise error

    with pytest.raises(AgentError) as raised:
        call_tool()
    assert raised.value is error
    span = only_span(hub, memory)
    assert span.level is Level.ERROR
    assert span.error is not None
    assert span.error.message == "tool down"
    assert span.output is None


def test_observe_records_async_functions_and_their_results(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe(type="model_generation")
    async def generate(prompt: str) -> str:
        await asyncio.sleep(0)
        return prompt[::-1]

    @hub.observe
    async def fail() -> None:
        await asyncio.sleep(0)
        raise AgentError("async boom")

    async def main() -> str:
        with hub.span("agent"):
            results = await asyncio.gather(generate("abc"), generate("xyz"))
            with pytest.raises(AgentError):
                await fail()
        return ",".join(results)

    assert asyncio.run(main()) == "cba,zyx"
    assert asyncio.iscoroutinefunction(generate)
    spans = flushed_spans(hub, memory)
    agent = next(s for s in spans if s.name == "agent")
    gens = [s for s in spans if s.type is SpanType.MODEL_GENERATION]
    assert sorted(s.output for s in gens) == ["cba", "zyx"]
    assert all(s.parent_span_id == agent.span_id for s in gens)
    failed = next(s for s in spans if s.name.endswith("fail"))
    assert failed.level is Level.ERROR
    assert failed.error is not None
    assert failed.error.message == "async boom"


# -- generators ----------------------------------------------------------------------------


def test_an_observed_generator_records_one_span_lasting_until_exhausted(recorded: Any) -> None:
    hub, memory = recorded
    opened_inside: list[Any] = []

    @hub.observe(type="model_generation")
    def stream(n: int) -> Iterator[str]:
        for i in range(n):
            opened_inside.append(obshub.current_span())
            yield f"tok{i} "

    with hub.span("root") as root:
        chunks = []
        for chunk in stream(3):
            chunks.append(chunk)
            assert obshub.current_span() is root  # the consumer is not inside it
    assert chunks == ["tok0 ", "tok1 ", "tok2 "]
    spans = delivered(hub, memory)
    span = next(s for s in spans.values() if s.name.endswith("stream"))
    assert span.output == "tok0 tok1 tok2 "
    assert span.input == {"n": 3}
    assert span.parent_span_id == root.span_id
    assert {s.span_id for s in opened_inside} == {span.span_id}


def test_an_observed_generator_of_non_strings_records_the_items(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe
    def numbers() -> Iterator[int]:
        yield from (1, 2, 3)

    assert list(numbers()) == [1, 2, 3]
    span = only_span(hub, memory)
    assert span.output == [1, 2, 3]


def test_an_observed_generator_closed_early_ends_its_span_without_error(recorded: Any) -> None:
    hub, memory = recorded
    cleaned_up = threading.Event()

    @hub.observe
    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            cleaned_up.set()

    for item in endless():
        if item == 2:
            break
    assert cleaned_up.is_set()
    span = only_span(hub, memory)
    assert span.output == [0, 1, 2]
    assert span.level is Level.DEFAULT
    assert span.error is None


def test_an_exception_inside_an_observed_generator_marks_the_span_and_propagates(
    recorded: Any,
) -> None:
    hub, memory = recorded
    error = AgentError("stream broke")

    @hub.observe
    def broken() -> Iterator[str]:
        yield "partial"
        raise error

    received: list[str] = []
    with pytest.raises(AgentError) as raised:
        received.extend(broken())
    assert raised.value is error
    assert received == ["partial"]
    span = only_span(hub, memory)
    assert span.level is Level.ERROR
    assert span.output == "partial"


def test_send_and_throw_reach_the_observed_generator(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe
    def echo() -> Iterator[str]:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError as exc:
                received = yield f"handled {exc}"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("a") == "got a"
    assert gen.throw(ValueError("oops")) == "handled oops"
    assert gen.send("b") == "got b"
    with pytest.raises(KeyError):
        gen.throw(KeyError("fatal"))
    span = only_span(hub, memory)
    assert span.output == "readygot ahandled oopsgot b"
    assert span.level is Level.ERROR
    assert span.error is not None
    assert span.error.type == "KeyError"


def test_an_observed_generator_keeps_its_return_value_for_yield_from(recorded: Any) -> None:
    hub, _ = recorded

    @hub.observe
    def inner() -> Iterator[int]:
        yield 1
        return "done"

    def outer() -> Iterator[int]:
        result = yield from inner()
        yield result  # type: ignore[misc]

    assert list(outer()) == [1, "done"]


def test_an_observed_async_generator_records_one_span_with_the_joined_chunks(
    recorded: Any,
) -> None:
    hub, memory = recorded

    @hub.observe(type="model_generation")
    async def stream(words: list[str]) -> AsyncIterator[str]:
        for word in words:
            await asyncio.sleep(0)
            with hub.span(f"inner-{word}"):
                pass
            yield word

    async def main() -> list[str]:
        with hub.span("root"):
            return [chunk async for chunk in stream(["a", "b", "c"])]

    assert asyncio.run(main()) == ["a", "b", "c"]
    spans = delivered(hub, memory)
    gen = next(s for s in spans.values() if s.name.endswith("stream"))
    assert gen.output == "abc"
    assert gen.parent_span_id == spans["root"].span_id
    assert spans["inner-b"].parent_span_id == gen.span_id


def test_an_observed_async_generator_closed_early_ends_its_span(recorded: Any) -> None:
    hub, memory = recorded

    @hub.observe
    async def endless(done: asyncio.Event) -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            done.set()

    async def main() -> bool:
        done = asyncio.Event()
        agen = endless(done)
        async for item in agen:
            if item == 1:
                break
        await agen.aclose()
        return done.is_set()

    assert asyncio.run(main())
    span = only_span(hub, memory)
    assert span.output == [0, 1]
    assert span.error is None


def test_an_observed_async_generator_passes_asend_and_athrow_and_records_errors(
    recorded: Any,
) -> None:
    hub, memory = recorded

    @hub.observe
    async def echo() -> AsyncIterator[str]:
        received = yield "ready"
        while True:
            try:
                received = yield f"got {received}"
            except ValueError:
                received = yield "handled"

    async def main() -> list[str]:
        agen = echo()
        out = [await agen.__anext__(), await agen.asend("x")]
        out.append(await agen.athrow(ValueError("v")))
        with pytest.raises(AgentError):
            await agen.athrow(AgentError("fatal"))
        return out

    assert asyncio.run(main()) == ["ready", "got x", "handled"]
    span = only_span(hub, memory)
    assert span.level is Level.ERROR
    assert span.error is not None
    assert span.error.message == "fatal"


def test_the_module_level_observe_uses_the_hub_configured_when_the_function_runs(
    hub_factory: Any,
) -> None:
    @obshub.observe(name="late-bound")
    def work() -> int:
        return 7

    hub, memory = hub_factory.memory()
    previous = obshub.hub.set_global_hub(hub)
    try:
        assert work() == 7
    finally:
        obshub.hub._global_hub = previous
    assert hub.flush(WAIT)
    assert memory.span("late-bound").output == 7


def test_output_given_at_start_is_copied_so_later_mutation_is_not_recorded(
    recorded: tuple[obshub.Hub, obshub.MemoryExporter],
) -> None:
    hub, memory = recorded
    chunks = ["partial"]
    with hub.span("stream", output=chunks):
        chunks.append("appended after")
    assert only_span(hub, memory).output == ["partial"]


def test_observe_names_a_nested_function_after_itself_not_its_locals_path(
    recorded: tuple[obshub.Hub, obshub.MemoryExporter],
) -> None:
    hub, memory = recorded

    @hub.observe
    def helper() -> int:
        return 1

    helper()
    assert only_span(hub, memory).name == "helper"


def test_an_unprintable_session_id_does_not_lose_the_span(
    recorded: tuple[obshub.Hub, obshub.MemoryExporter],
) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    hub, memory = recorded
    with hub.span("kept", session_id=Unprintable(), tags=[Unprintable()]):
        pass
    span = only_span(hub, memory)
    assert span.session_id == "<unprintable Unprintable>"
    assert span.tags == ("<unprintable Unprintable>",)


def test_each_bad_field_is_named_in_its_own_warning(
    recorded: tuple[obshub.Hub, obshub.MemoryExporter],
) -> None:
    from structlog.testing import capture_logs

    hub, memory = recorded
    with capture_logs() as logs:
        with hub.span("typos", usge={"input": 1}, modle="gpt-4o"):
            pass
        only_span(hub, memory)
    named = {e["field"] for e in logs if e["event"] == "invalid_span_field"}
    assert named == {"usge", "modle"}


def test_every_settable_field_has_a_normaliser_on_the_worker() -> None:
    from obshub.pipeline import _NORMALISERS
    from obshub.tracing import SETTABLE_FIELDS, TRACE_FIELDS

    # Trace-level fields live on the trace; "error" is set by record_exception().
    assert set(_NORMALISERS) == (SETTABLE_FIELDS - TRACE_FIELDS) | {"error"}


def test_the_roots_metadata_and_attributes_are_every_spans_trace_metadata(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("agent", metadata={"tenant": "acme"}, attributes={"team": "support"}) as agent:
        agent.update(metadata={"plan": "pro"})
        with hub.span("tool", metadata={"step": 1}):
            pass
        agent.event("cache-hit")
    spans = delivered(hub, memory)
    for span in spans.values():
        assert span.trace_metadata == {"tenant": "acme", "plan": "pro"}
        assert span.trace_attributes == {"team": "support"}
    assert spans["tool"].metadata == {"step": 1}
    assert spans["agent"].trace_metadata == spans["agent"].metadata


def test_a_child_does_not_see_root_metadata_set_after_it_was_delivered(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("agent", metadata={"tenant": "acme"}) as agent:
        with hub.span("early"):
            pass
        assert hub.flush(timeout=WAIT)
        agent.update(metadata={"late": True})
    spans = delivered(hub, memory)
    assert spans["early"].trace_metadata == {"tenant": "acme"}
    assert spans["agent"].trace_metadata == {"tenant": "acme", "late": True}


def test_trace_metadata_survives_a_round_trip_through_a_dict(recorded: Any) -> None:
    hub, memory = recorded
    with hub.span("agent", metadata={"tenant": "acme"}), hub.span("tool"):
        pass
    tool = delivered(hub, memory)["tool"]
    assert obshub.Span.from_dict(tool.to_dict()) == tool
    assert obshub.Span.from_dict({**tool.to_dict(), "trace_metadata": None}).trace_metadata == {}
