"""JSON-safe conversion of whatever an application records: never raises, marks what it changes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from obshub.serialization import Limits, to_jsonable


def assert_strict_json(value: Any) -> None:
    json.dumps(value, allow_nan=False)


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_plain_json_values_come_back_equal() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": False}}
    assert to_jsonable(value) == value


def test_a_cycle_is_replaced_by_a_marker() -> None:
    data: dict[str, Any] = {"name": "loop"}
    data["self"] = data
    items: list[Any] = [1]
    items.append(items)
    assert to_jsonable(data) == {"name": "loop", "self": "<cycle>"}
    assert to_jsonable(items) == [1, "<cycle>"]


def test_the_same_object_twice_is_not_mistaken_for_a_cycle() -> None:
    shared = {"k": 1}
    assert to_jsonable([shared, shared]) == [{"k": 1}, {"k": 1}]


def test_nan_and_infinities_become_strings() -> None:
    result = to_jsonable([math.nan, math.inf, -math.inf, 1.5])
    assert result == ["NaN", "Infinity", "-Infinity", 1.5]
    assert_strict_json(result)


def test_utf8_bytes_become_text_other_bytes_base64_and_large_bytes_a_summary() -> None:
    assert to_jsonable(b"hello") == "hello"
    assert to_jsonable(bytearray(b"\xff\x00")) == "base64:/wA="
    assert to_jsonable(b"x" * 5000, Limits(max_bytes=4096)) == "<5000 bytes>"


def test_dates_and_times_become_iso_8601_and_durations_seconds() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert to_jsonable(when) == "2026-01-02T03:04:05+00:00"
    assert to_jsonable(dt.date(2026, 1, 2)) == "2026-01-02"
    assert to_jsonable(dt.timedelta(minutes=1, milliseconds=500)) == 60.5


def test_sets_become_sorted_lists_even_of_mixed_types() -> None:
    assert to_jsonable({3, 1, 2}) == [1, 2, 3]
    mixed = to_jsonable(frozenset({1, "a"}))
    assert sorted(map(str, mixed)) == ["1", "a"]
    assert_strict_json(mixed)


def test_an_object_whose_repr_raises_becomes_an_unrepresentable_marker() -> None:
    assert to_jsonable({"obj": ReprRaises()}) == {"obj": "<unrepresentable ReprRaises>"}


def test_an_unknown_object_becomes_its_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing 42>"

    assert to_jsonable(Thing()) == "<Thing 42>"


def test_a_huge_string_is_truncated_with_a_marker_saying_how_much_was_cut() -> None:
    result = to_jsonable("x" * 250, Limits(max_string=100))
    assert result == "x" * 100 + "...[truncated 150 chars]"


def test_long_lists_and_dicts_are_cut_with_a_marker() -> None:
    limits = Limits(max_items=3)
    assert to_jsonable(list(range(10)), limits) == [0, 1, 2, "...[7 more items]"]
    assert to_jsonable({str(i): i for i in range(5)}, limits) == {
        "0": 0,
        "1": 1,
        "2": 2,
        "...": "[2 more items]",
    }


def test_deep_nesting_stops_at_the_depth_limit_with_a_marker() -> None:
    value: Any = "bottom"
    for _ in range(10):
        value = [value]
    result = to_jsonable(value, Limits(max_depth=3))
    assert result == [[["<max depth 3 reached>"]]]


def test_dict_keys_become_strings() -> None:
    assert to_jsonable({1: "a", None: "b", (1, 2): "c"}) == {"1": "a", "None": "b", "(1, 2)": "c"}


def test_dataclasses_attrs_classes_and_pydantic_style_models_become_dicts() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    @attrs.define
    class Message:
        role: str
        content: str

    class Model:
        model_fields: dict[str, Any] = {"a": None}  # noqa: RUF012 - mimics pydantic

        def model_dump(self) -> dict[str, Any]:
            return {"a": 1}

    assert to_jsonable(Point(1, 2)) == {"x": 1, "y": 2}
    assert to_jsonable(Message("user", "hi")) == {"role": "user", "content": "hi"}
    assert to_jsonable(Model()) == {"a": 1}


def test_enums_uuids_paths_decimals_and_complex_numbers_become_json_values() -> None:
    class Color(enum.Enum):
        RED = "red"

    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert to_jsonable(Color.RED) == "red"
    assert to_jsonable(ident) == str(ident)
    assert to_jsonable(PurePosixPath("/tmp/x")) == "/tmp/x"
    assert to_jsonable(decimal.Decimal("1.25")) == 1.25
    assert to_jsonable(decimal.Decimal("NaN")) == "NaN"
    assert to_jsonable(1 + 2j) == "(1+2j)"
    assert to_jsonable((1, "a")) == [1, "a"]


def test_a_mapping_that_fails_while_being_read_gives_a_marker_instead_of_raising() -> None:
    class Broken(Mapping[str, int]):
        def __getitem__(self, key: str) -> int:
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("cannot iterate")

        def __len__(self) -> int:
            return 1

    result = to_jsonable({"broken": Broken()})
    assert isinstance(result, str)
    assert "unserializable" in result


def test_str_and_int_subclasses_become_plain_values() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    result = to_jsonable({"n": Name("bob"), "c": Count(3)})
    assert result == {"n": "bob", "c": 3}
    assert type(result["n"]) is str
    assert type(result["c"]) is int


_hostile_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included
    | st.text(max_size=30)
    | st.binary(max_size=30)
    | st.datetimes()
    | st.builds(ReprRaises)
    | st.builds(object)
)
_hostile = st.recursive(
    _hostile_leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=4)
    ),
    max_leaves=20,
)


@given(_hostile)
def test_any_value_becomes_strict_json(value: Any) -> None:
    assert_strict_json(to_jsonable(value))


@given(_hostile)
def test_converting_twice_changes_nothing_more(value: Any) -> None:
    once = to_jsonable(value)
    assert to_jsonable(once) == once


# -- end to end: whatever the application records, exporters get strict JSON -------------


class Node:
    def __init__(self) -> None:
        self.me = self

    def __repr__(self) -> str:
        return f"Node({self.me!r})"  # recursive repr: RecursionError


def test_an_exporter_receives_strict_json_whatever_hostile_values_were_recorded(
    hub_factory: Any,
) -> None:
    hub, memory = hub_factory.memory()
    loop: dict[str, Any] = {}
    loop["loop"] = loop
    hostile = {
        "cycle": loop,
        "bytes": b"\x00\xff" * 10,
        "nan": math.nan,
        "inf": -math.inf,
        "when": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        "set": {"b", "a"},
        "repr_raises": ReprRaises(),
        "recursive_repr": Node(),
        "huge": "y" * 300_000,
        "tuple_keys": {(1, 2): "v"},
        "object": object(),
    }
    with hub.span(
        "hostile",
        input=hostile,
        metadata=hostile,
        attributes={"a": hostile},
        parameters={"temperature": math.nan, "stop": {"x"}},
        model=ReprRaises(),
        prompt={"name": "p", "version": math.inf},
        usage={"input": math.nan, "output": 3, "audio": math.inf, "details": {"x": object()}},
        cost={"input": math.inf, "total": 0.5},
        status_message=b"\xff",
        tags=[b"raw", 3.5],
    ) as span:
        span.update(output=hostile)
        span.event("note", input=hostile)
    assert hub.flush(timeout=5)
    assert len(memory.events) == 4  # started, updated, the event, ended
    for event in memory.events:
        text = json.dumps(event.to_dict(), allow_nan=False)
        assert "<cycle>" in text
        assert "...[truncated 200000 chars]" in text
        assert "<unrepresentable ReprRaises>" in text
    ended = memory.span("hostile")
    assert ended.input["nan"] == "NaN"
    assert ended.input["huge"].startswith("y" * 100_000)
    assert ended.parameters == {"temperature": "NaN", "stop": ["x"]}
    assert ended.output["set"] == ["a", "b"]
