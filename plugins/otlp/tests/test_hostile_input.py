"""Hostile values never reach the caller as exceptions and always export as valid OTLP.

A property test: spans are recorded with arbitrary nested input, output,
metadata (and other fields) — odd dict keys, bytes, NaN, huge strings, lone
surrogates, datetimes, objects whose ``__repr__`` raises, cycles added after
the value was built, containers mutated after recording — through a hub whose
exporter encodes each batch with :func:`obshub_otlp.encoding.encode_spans`, serialises
it and parses the bytes back with ``ExportTraceServiceRequest.FromString``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from obshub_otlp.encoding import encode_spans

import obshub

pb = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

WAIT = 10.0


def backend_attributes(event: obshub.SpanEvent) -> dict[str, object]:
    """What a backend adds per span (as Langfuse's exporter does): the recorded values."""
    span = event.span
    extra: dict[str, object] = {
        "test.input": span.input,
        "test.output": span.output,
        "test.metadata": span.metadata,
        "test.tags": list(span.tags),
    }
    extra.update({f"test.metadata.{key}": value for key, value in span.metadata.items()})
    return extra


class OtlpRoundTrip(obshub.Exporter):
    """Encodes each batch to OTLP protobuf bytes (with backend attributes) and parses them back."""

    name = "otlp-round-trip"

    def __init__(self, **common: Any) -> None:
        common.setdefault("realtime", True)
        common.setdefault("retry", {"max_attempts": 1})
        super().__init__(**common)
        self.lock = threading.Lock()
        self.span_ids: list[str] = []
        self.problems: list[str] = []

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        data = encode_spans(events, extra_attributes=backend_attributes).SerializeToString()
        request = pb.ExportTraceServiceRequest.FromString(data)
        spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        with self.lock:
            if len(spans) != len(events):
                self.problems.append(f"{len(events)} events became {len(spans)} spans")
            for span, event in zip(spans, events, strict=False):
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    self.problems.append(f"bad ids {span.trace_id!r} {span.span_id!r}")
                if span.span_id.hex() != event.span.span_id:
                    self.problems.append(f"span id {span.span_id.hex()} != {event.span.span_id}")
                if not span.start_time_unix_nano or not span.end_time_unix_nano:
                    self.problems.append(f"span {span.span_id.hex()} without times")
            self.span_ids.extend(s.span_id.hex() for s in spans)


# -- hostile values ------------------------------------------------------------------


class Unprintable:
    """Neither ``repr()`` nor ``str()`` works; hashable, so it can be a dict key."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # for hypothesis' reports
        printer.text("Unprintable()")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


class Treacherous:
    """Every introspection hook raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name}")

    def __repr__(self) -> str:
        raise ValueError("repr")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # for hypothesis' reports
        printer.text("Treacherous()")

    def __len__(self) -> int:
        raise TypeError("len")

    def __iter__(self) -> Any:
        raise TypeError("iter")

    def __bool__(self) -> bool:
        raise TypeError("bool")

    def __eq__(self, other: object) -> bool:
        raise TypeError("eq")

    __hash__ = object.__hash__


class Color(enum.Enum):
    RED = "red"
    WEIRD = float("nan")


class StrSubclass(str):
    def __str__(self) -> str:
        raise RuntimeError("str of a str subclass")


class LyingDict(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("items")


surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=4)
odd_text = st.one_of(
    st.text(max_size=30),
    st.just(""),
    surrogates,
    st.text(st.sampled_from("\x00\n\t\u202e\ufeff\U0001f600é"), max_size=10),
)
huge_text = st.integers(min_value=100_000, max_value=400_000).map(lambda n: "x" * n)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200),
    floats,
    odd_text,
    huge_text,
    st.binary(max_size=40),
    st.integers(min_value=5000, max_value=6000).map(lambda n: b"\xfe" * n),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.uuids(),
    st.complex_numbers(allow_nan=True),
    st.sampled_from(list(Color)),
    st.builds(Unprintable),
    st.builds(Treacherous),
    st.builds(object),
    st.builds(StrSubclass, st.text(max_size=5)),
    st.just(Ellipsis),
    st.just(int),
    st.just(print),
)
odd_keys = st.one_of(
    odd_text,
    st.integers(),
    floats,
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.frozensets(st.integers(), max_size=3),
    st.datetimes(),
    st.builds(Unprintable),
    st.builds(Treacherous),
)
hashables = st.one_of(st.integers(), odd_text, st.binary(max_size=8), st.builds(Unprintable))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(odd_keys, children, max_size=4),
        st.tuples(children, children),
        st.sets(hashables, max_size=3),
        st.frozensets(hashables, max_size=3),
        st.dictionaries(odd_text, children, max_size=3).map(LyingDict),
    )


values = st.recursive(leaves, _containers, max_leaves=12)


def add_cycles(value: Any, root: Any, budget: list[int], seen: set[int]) -> None:
    """Make mutable containers inside ``value`` refer back to ``root`` (a few times)."""
    if budget[0] <= 0 or id(value) in seen:
        return
    seen.add(id(value))
    if type(value) is list:
        for item in list(value):
            add_cycles(item, root, budget, seen)
        budget[0] -= 1
        value.append(root)
    elif type(value) is dict:
        for item in list(value.values()):
            add_cycles(item, root, budget, seen)
        budget[0] -= 1
        value["cycle"] = root


def mutate(value: Any, seen: set[int]) -> None:
    """Change nested containers after they were recorded (the app keeps using them)."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if type(value) is list:
        for item in list(value):
            mutate(item, seen)
        value.append("appended later")
        value.clear()
    elif type(value) is dict:
        for item in list(value.values()):
            mutate(item, seen)
        value["added later"] = 1
        value.clear()


span_fields = st.fixed_dictionaries(
    {
        "input": values,
        "output": values,
        "metadata": st.one_of(st.dictionaries(odd_keys, values, max_size=4), values),
    },
    optional={
        "attributes": st.one_of(st.dictionaries(odd_keys, values, max_size=4), values),
        "parameters": st.one_of(st.dictionaries(odd_keys, values, max_size=4), values),
        "tags": st.one_of(st.lists(values, max_size=4), values),
        "usage": st.one_of(st.dictionaries(odd_text, values, max_size=4), values),
        "cost": st.one_of(st.dictionaries(odd_text, values, max_size=4), values),
        "session_id": values,
        "user_id": values,
        "model": values,
        "level": values,
        "status_message": values,
        "completion_start_time": values,
        "prompt": values,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    spans=st.lists(st.tuples(odd_text, span_fields, values), min_size=1, max_size=4),
    cyclic=st.booleans(),
    nested=st.booleans(),
)
def test_hostile_values_never_raise_and_always_export_as_valid_otlp(
    spans: list[tuple[Any, dict[str, Any], Any]], cyclic: bool, nested: bool
) -> None:
    exporter = OtlpRoundTrip()
    hub = obshub.Hub(exporters=[exporter], service_name="hostile")
    try:
        recorded: list[str] = []
        if cyclic:
            for _, fields, update in spans:
                for value in (*fields.values(), update):
                    add_cycles(value, value, [3], set())

        def record_all() -> None:
            for name, fields, update in spans:
                with hub.span(name, **fields) as span:
                    span.update(output=update, metadata=update)
                    span.event(name, metadata=fields["metadata"], input=update)
                    recorded.append(span.span_id)
                hub.event("loose", input=update, metadata=fields["metadata"])

        if nested:
            with hub.span("root", type="agent_run") as root:
                recorded.append(root.span_id)
                record_all()
        else:
            record_all()
        seen: set[int] = set()
        for _, fields, update in spans:
            for value in (*fields.values(), update):
                mutate(value, seen)
        assert hub.flush(WAIT), hub.stats()
        (stats,) = hub.stats().values()
        # Each span, its event, each loose event (and the root): exported, none failed.
        assert stats.exported == 3 * len(spans) + (1 if nested else 0)
        assert (stats.failed, stats.dropped) == (0, 0)
        with exporter.lock:
            assert exporter.problems == []
            assert set(recorded) <= set(exporter.span_ids)
            assert len(exporter.span_ids) == stats.exported
    finally:
        assert hub.shutdown(timeout=WAIT)


def test_a_value_that_fails_every_way_is_marked_not_raised() -> None:
    exporter = OtlpRoundTrip()
    hub = obshub.Hub(exporters=[exporter])
    try:
        cycle: dict[Any, Any] = {Unprintable(): Treacherous(), b"\xff": math.nan}
        cycle["me"] = [cycle, {cycle.__hash__: cycle}]
        with hub.span(
            "treacherous",
            type=Treacherous(),  # type: ignore[arg-type]
            input=cycle,
            output=LyingDict(a=1),
            metadata=Treacherous(),
            tags=Treacherous(),
            usage={"input": math.nan, "output": "many", "total": -1},
            completion_start_time=dt.datetime.max,
            level="nonsense",
            parameters={"temperature": decimal.Decimal("NaN")},
        ) as span:
            span.update(session_id=Unprintable(), user_id=b"\xff", name=Unprintable())
            span.event("inner", type=Treacherous(), metadata=cycle)
        hub.event("loose", type=Treacherous(), input=Treacherous())
        assert hub.flush(WAIT), hub.stats()
        with exporter.lock:
            assert exporter.problems == []
            assert span.span_id in exporter.span_ids
    finally:
        assert hub.shutdown(timeout=WAIT)


def _exported(**span_fields: Any) -> obshub.ChannelStats:
    exporter = OtlpRoundTrip()
    hub = obshub.Hub(exporters=[exporter])
    try:
        name = span_fields.pop("name", "span")
        with hub.span(name, **span_fields):
            pass
        hub.flush(WAIT)
        (stats,) = hub.stats().values()
        return stats
    finally:
        hub.shutdown(timeout=WAIT)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "\ud800"},
        {"input": "\udfff"},
        {"metadata": {"k": ["\ud83d"]}},
        {"model": "gpt-\udc00"},
        {"session_id": "\ud800"},
    ],
    ids=["name", "input", "metadata", "model", "session_id"],
)
def test_lone_surrogates_export_as_valid_otlp(fields: dict[str, Any]) -> None:
    # Text without a UTF-8 form (e.g. from surrogateescape decoding) must not fail the batch.
    stats = _exported(**fields)
    assert (stats.exported, stats.failed) == (1, 0)


def test_a_span_name_whose_str_raises_is_marked_not_lost() -> None:
    stats = _exported(name=Unprintable())
    assert (stats.exported, stats.failed) == (1, 0)
