"""The direct protobuf encoder writes exactly what the message classes would.

`encode_spans_protobuf` writes the OTLP wire format itself; every test here
compares its bytes with ``reference_encode_spans(...).SerializeToString()``
(the message-object encoder obshub used before, kept in
``obshub_otlp._reference``) byte for byte, and decodes them with
opentelemetry-proto's ``ExportTraceServiceRequest.FromString``.
"""

from __future__ import annotations

import enum
import gzip
import math
import random
from collections.abc import Mapping
from typing import Any

import pytest
from obshub_otlp import _encoding, wire
from obshub_otlp._reference import reference_encode_spans
from obshub_otlp.encoding import encode_spans, encode_spans_parts, encode_spans_protobuf
from obshub_otlp.mapping import content_attributes
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

import obshub
from obshub.spans import (
    Cost,
    EventKind,
    Level,
    Prompt,
    Span,
    SpanError,
    SpanEvent,
    SpanType,
    Usage,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


class Mode(str, enum.Enum):
    FAST = "fast"


class Rank(enum.IntEnum):
    FIRST = 1


class Text(str):
    """A str subclass, as some libraries hand out."""


def event_of(span: Span, service: str = "svc", kind: EventKind = EventKind.ENDED) -> SpanEvent:
    return SpanEvent(kind=kind, span=span, config_name="c", service_name=service)


def make_span(n: int = 1, **fields: Any) -> Span:
    values: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": f"{n:016x}",
        "name": f"span-{n}",
        "start_time": 1_767_225_600_000_000_000 + n,
        "end_time": 1_767_225_600_500_000_000 + n,
    }
    values.update(fields)
    return Span(**values)


def assert_same(events: list[SpanEvent], **options: Any) -> bytes:
    """The direct bytes equal the reference's, whole and in parts; returns them."""
    direct = encode_spans_protobuf(events, **options)
    reference = reference_encode_spans(events, **options)
    assert direct == reference.SerializeToString()
    assert b"".join(encode_spans_parts(events, **options)) == direct
    decoded = ExportTraceServiceRequest.FromString(direct)
    assert decoded == reference
    assert encode_spans(events, **options) == reference
    return direct


def only_span(data: bytes) -> Any:
    request = ExportTraceServiceRequest.FromString(data)
    (resource_spans,) = request.resource_spans
    (scope_spans,) = resource_spans.scope_spans
    (span,) = scope_spans.spans
    return span


def attribute(span: Any, key: str) -> AnyValue:
    for kv in span.attributes:
        if kv.key == key:
            value: AnyValue = kv.value
            return value
    raise KeyError(key)


# -- spans ------------------------------------------------------------------------------


@pytest.mark.parametrize("span_type", list(SpanType))
@pytest.mark.parametrize("conventions", [True, False, "openinference", ["genai", "openinference"]])
def test_every_span_type_encodes_as_the_message_classes_do(
    span_type: SpanType, conventions: Any
) -> None:
    span = make_span(
        type=span_type,
        parent_span_id="00f067aa0ba902b7",
        input=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is 2 + 2?"},
        ],
        output={"role": "assistant", "content": "4", "finish_reason": "stop"},
        model="gpt-4o",
        provider="openai",
        parameters={"temperature": 0.2, "max_tokens": 512, "stop": ["\n"]},
        usage=Usage(input=812, output=95, cached_input=200),
        cost=Cost(input=0.001, output=0.002, total=0.003),
        prompt=Prompt(name="support", version=3),
        session_id="s-1",
        user_id="u-1",
        tags=("a", "b"),
        metadata={"team": "search", "nested": {"k": [1, 2]}},
        attributes={"app.flag": True},
        completion_start_time=1_767_225_600_100_000_000,
    )
    for options in ({}, {"include_content": False}):
        assert_same([event_of(span)], conventions=conventions, **options)
    assert_same(
        [event_of(span)],
        conventions=conventions,
        extra_attributes=lambda e: content_attributes(e.span),
        resource_attributes={"deployment.environment": "test", "host.cpus": 2},
    )


@pytest.mark.parametrize("conventions", [True, False])
def test_errors_and_levels_give_the_same_status_and_exception_event(conventions: bool) -> None:
    spans = [
        make_span(1, error=SpanError(message="card declined", type="ValueError", stack="tb...")),
        make_span(2, error=SpanError(message="", type="KeyError")),
        make_span(3, error=SpanError(message="", type="")),
        make_span(4, level=Level.ERROR),
        make_span(5, level=Level.ERROR, status_message="bad input"),
        make_span(6, level=Level.WARNING, status_message="slow"),
        make_span(7, error=SpanError(message="m", type="T"), end_time=None),
        make_span(8, error=SpanError(message="m", type="T"), start_time=0, end_time=None),
    ]
    data = assert_same([event_of(s) for s in spans], conventions=conventions)
    request = ExportTraceServiceRequest.FromString(data)
    first = request.resource_spans[0].scope_spans[0].spans[0]
    assert (first.status.code, first.status.message) == (2, "card declined")
    assert [e.name for e in first.events] == (["exception"] if conventions else [])


def test_a_root_span_leaves_out_the_parent_and_empty_names_and_zero_times() -> None:
    spans = [
        make_span(1, parent_span_id=None),
        make_span(2, parent_span_id=""),
        make_span(3, name=""),
        make_span(4, start_time=0, end_time=0),
        make_span(5, end_time=None),
        make_span(6, start_time=2**64 - 1, end_time=2**63),
    ]
    data = assert_same([event_of(s) for s in spans])
    request = ExportTraceServiceRequest.FromString(data)
    first = request.resource_spans[0].scope_spans[0].spans[0]
    assert first.parent_span_id == b""


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "ünïcødé 漢字 🙂 e\u0301",
        "x" * 125,
        "x" * 126,
        "x" * 127,
        "x" * 128,
        "x" * 16383,
        "x" * 16384,
        "é" * 70,
        "🙂" * 5000,
        0,
        1,
        -1,
        127,
        128,
        16384,
        2**31,
        -(2**31),
        2**63 - 1,
        -(2**63),
        2**63,
        -(2**63) - 1,
        2**100,
        0.0,
        -0.0,
        1.5,
        -2.25e-300,
        1e308,
        math.inf,
        -math.inf,
        True,
        False,
        [],
        (),
        ["a", "b", ""],
        [1, -2, 2**63 - 1],
        [1.5, 2.5],
        [True, False],
        [1, "a"],
        [1, 2.5],
        [True, 1],
        [None],
        [2**64],
        [[1, 2], [3]],
        [{"a": 1}],
        ("a", "b"),
        {"a": 1, "b": [1, {"c": None}], "d": "é"},
        {},
        Colour.RED,
        Colour.BLUE,
        Mode.FAST,
        Rank.FIRST,
        [Mode.FAST, "x"],
        [Rank.FIRST, 2],
        [Colour.RED],
        Text("sub"),
        [Text("a"), "b"],
    ],
    ids=repr,
)
def test_every_kind_of_attribute_value_matches(value: Any) -> None:
    # Set directly on the span (not through a hub), as an exporter's hook may return it.
    span = make_span(attributes={"v": value})
    assert_same([event_of(span)], conventions=False)
    assert_same([event_of(make_span())], extra_attributes=lambda e: {"v": value, "w": None})


def test_nan_keeps_its_bits() -> None:
    data = assert_same([event_of(make_span())], extra_attributes=lambda e: {"v": math.nan})
    assert math.isnan(attribute(only_span(data), "v").double_value)


@pytest.mark.parametrize("key_size", [0, 1, 100, 118, 119, 120, 121, 122, 123, 124, 200, 20000])
@pytest.mark.parametrize("value_size", [0, 1, 2, 3, 4, 5, 6, 7, 120, 125, 126, 200])
def test_lengths_around_the_one_byte_limits_match(key_size: int, value_size: int) -> None:
    extra = {"k" * key_size: "v" * value_size, "n": value_size}
    assert_same([event_of(make_span())], extra_attributes=lambda e: extra, conventions=False)


def test_huge_texts_match() -> None:
    big = "lorem ipsum dolor sit amet " * 40_000  # ~1 MB
    wide = "漢字🙂" * 50_000
    span = make_span(type=SpanType.MODEL_GENERATION, input=big, output=wide)
    data = assert_same([event_of(span)], extra_attributes=lambda e: content_attributes(e.span))
    assert attribute(only_span(data), "input.value").string_value == big


def test_one_large_text_under_several_keys_matches() -> None:
    big = "ü" * 3000
    other = "".join(["ü"] * 3000)  # equal, another object
    extra = {"a": big, "b": "short", "c": big, "d": other, "e": big[:1023], "f": big[:1024]}
    data = assert_same([event_of(make_span())], extra_attributes=lambda e: extra)
    span = only_span(data)
    assert [attribute(span, k).string_value for k in "acd"] == [big] * 3


def test_text_without_a_utf8_form_is_cleaned_as_before() -> None:
    lone = "bad \ud800 text"
    span = make_span(
        name=lone,
        input=lone,
        attributes={"k": lone},
        error=SpanError(message=lone, type="E", stack=lone),
        session_id=lone,
    )
    data = assert_same([event_of(span)])
    assert only_span(data).name == "bad \ufffd text"


def test_services_group_in_order_of_first_appearance() -> None:
    events = [
        event_of(make_span(1), service="b"),
        event_of(make_span(2), service="a"),
        event_of(make_span(3), service="b"),
        event_of(make_span(4), service="ü"),
    ]
    data = assert_same(events, resource_attributes={"service.name": "override", "k": None})
    request = ExportTraceServiceRequest.FromString(data)
    assert [len(rs.scope_spans[0].spans) for rs in request.resource_spans] == [2, 1, 1]
    assert assert_same([]) == b""


def test_extra_attributes_win_over_derived_ones() -> None:
    span = make_span(type=SpanType.MODEL_GENERATION, model="m", attributes={"app": 1})
    data = assert_same(
        [event_of(span)], extra_attributes=lambda e: {"gen_ai.request.model": "x", "app": None}
    )
    assert attribute(only_span(data), "gen_ai.request.model").string_value == "x"


def test_a_cached_span_is_copied_as_it_was_encoded() -> None:
    event = event_of(make_span(type=SpanType.TOOL_CALL, input={"q": 1}))
    object.__setattr__(event, "_shared", {})
    first = encode_spans_protobuf([event], cache_key="k")
    cache = event.shared_cache()
    assert cache is not None
    assert isinstance(cache["k"], bytes)
    assert encode_spans_protobuf([event], cache_key="k") == first
    assert first == reference_encode_spans([event]).SerializeToString()


def test_out_of_range_times_fail_as_the_message_classes_do() -> None:
    event = event_of(make_span(start_time=-1))
    with pytest.raises(ValueError, match=r"(?i)out of range"):
        encode_spans_protobuf([event])
    with pytest.raises(ValueError, match=r"(?i)out of range"):
        reference_encode_spans([event])


# -- generated inputs ---------------------------------------------------------------------

_ALPHABET = 'abcXYZ 09_.-\n\t"\\/é漢🙂\x00\x7f\u2028'


def _text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 5, 40, 120, 126, 127, 300, 5000])
    return "".join(rng.choice(_ALPHABET) for _ in range(size))


def _value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 2 else 8)
    if choice == 0:
        return _text(rng)
    if choice == 1:
        return rng.randint(-(2**64), 2**64)
    if choice == 2:
        return rng.choice([0, -1, 1, 2**63 - 1, -(2**63), 300, -300])
    if choice == 3:
        return rng.uniform(-1e6, 1e6)
    if choice == 4:
        return rng.random() < 0.5
    if choice == 5:
        return None
    if choice == 6:
        return rng.choice([Colour.RED, Mode.FAST, Rank.FIRST, Text("t")])
    if choice == 7:
        kind = rng.choice([_text, lambda r: r.randint(-(2**63), 2**63 - 1), lambda r: r.random()])
        return [kind(rng) for _ in range(rng.randrange(4))]
    if choice in (8, 9):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _random_span(rng: random.Random, n: int) -> Span:
    error = None
    if rng.random() < 0.3:
        stack = _text(rng) if rng.random() < 0.5 else None
        error = SpanError(message=_text(rng), type=_text(rng), stack=stack)
    return make_span(
        n,
        name=_text(rng),
        type=rng.choice(list(SpanType)),
        parent_span_id=rng.choice([None, f"{n + 1:016x}"]),
        start_time=rng.choice([0, rng.randrange(2**62)]),
        end_time=rng.choice([None, rng.randrange(2**62)]),
        input=_value(rng),
        output=_value(rng),
        metadata={_text(rng): _value(rng) for _ in range(rng.randrange(3))},
        attributes={f"a.{i}": _value(rng) for i in range(rng.randrange(6))},
        error=error,
        level=rng.choice(list(Level)),
        status_message=rng.choice([None, "", _text(rng)]),
        model=rng.choice([None, _text(rng)]),
        session_id=rng.choice([None, _text(rng)]),
        tags=tuple(_text(rng) for _ in range(rng.randrange(3))),
    )


@pytest.mark.parametrize("seed", range(8))
def test_generated_spans_match(seed: int) -> None:
    rng = random.Random(seed)
    events = [
        event_of(_random_span(rng, n), service=rng.choice(["a", "b", "é"])) for n in range(40)
    ]

    def extra(event: SpanEvent) -> Mapping[str, Any]:
        return {f"x.{i}": _value(random.Random(event.span.span_id + str(i))) for i in range(3)}

    for conventions in (True, False, ["genai", "openinference"]):
        assert_same(events, conventions=conventions, extra_attributes=extra)
    assert_same(events, include_content=False, resource_attributes={"r": _value(rng)})


def test_recorded_spans_match(obshub_hub_factory: Any) -> None:
    captured: list[SpanEvent] = []

    class Capture(obshub.Exporter):
        name = "capture"

        def export(self, events: Any) -> None:
            captured.extend(events)

    hub = obshub_hub_factory(exporters=[Capture()])
    with hub.span("agent", type="agent_run", input="q", session_id="s") as agent:
        with hub.span("gpt", type="model_generation", model="m", input=[{"role": "user"}]) as g:
            g.update(output="a", usage={"input": 3, "output": 2})
        with pytest.raises(RuntimeError), hub.span("tool", type="tool_call", input={"x": 1}):
            raise RuntimeError("boom")
        agent.update(output={"answer": "a", "score": 0.5})
    assert hub.flush(timeout=5)
    assert len(captured) == 3
    assert_same(captured)
    assert_same(captured, extra_attributes=lambda e: content_attributes(e.span))


# -- gzip ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes", [[], [0], [10] * 50, [70_000], [10, 70_000, 5, 65_535, 65_536, 1, 200_000]]
)
def test_gzip_body_is_the_gzip_of_the_joined_parts(sizes: list[int]) -> None:
    rng = random.Random(len(sizes))
    parts = [bytes(rng.randrange(7) for _ in range(size)) for size in sizes]
    body = wire.gzip_body(parts)
    assert gzip.decompress(body) == b"".join(parts)
    assert wire.gzip_body(parts) == body  # no timestamp: equal inputs, equal bytes
    assert gzip.decompress(wire.gzip_body(parts, level=9)) == b"".join(parts)


def test_the_default_gzip_level_is_the_measured_one() -> None:
    assert wire.GZIP_LEVEL == 1
    data = b"span " * 10_000
    assert wire.gzip_body([data]) == wire.gzip_body([data], level=1)


def test_varints_match_protobuf_at_every_width() -> None:
    for value in [0, 1, 127, 128, 255, 16383, 16384, 2**21 - 1, 2**21, 2**35, 2**63, 2**64 - 1]:
        signed = value - 2**64 if value >= 2**63 else value
        expected = AnyValue(int_value=signed).SerializeToString()
        assert b"\x18" + _encoding._varint(value) == expected
