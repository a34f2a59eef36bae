"""Read-only span values: what the exporters of a config share, none of them can change."""

from __future__ import annotations

import copy
import json
import pickle
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import obshub
from obshub._processors import Redactor
from obshub._serialization import to_jsonable
from obshub.spans import (
    FrozenDict,
    FrozenList,
    Score,
    Span,
    SpanEvent,
    Usage,
    freeze,
    item_record,
    thaw,
)
from obshub.testing import make_event, make_score, make_span

VALUE = {"messages": [{"role": "user", "content": "hi"}], "pair": (1, [2]), "n": 1.5, "x": None}

EDITS: dict[str, Callable[[Any], Any]] = {
    "setitem": lambda v: v.__setitem__("k", 1),
    "delitem": lambda v: v.__delitem__("messages"),
    "pop": lambda v: v.pop("messages"),
    "popitem": lambda v: v.popitem(),
    "clear": lambda v: v.clear(),
    "update": lambda v: v.update(k=1),
    "setdefault": lambda v: v.setdefault("k", 1),
    "ior": lambda v: v.__ior__({"k": 1}),
    "list append": lambda v: v["messages"].append(1),
    "list extend": lambda v: v["messages"].extend([1]),
    "list insert": lambda v: v["messages"].insert(0, 1),
    "list setitem": lambda v: v["messages"].__setitem__(0, 1),
    "list delitem": lambda v: v["messages"].__delitem__(0),
    "list pop": lambda v: v["messages"].pop(),
    "list remove": lambda v: v["messages"].remove(v["messages"][0]),
    "list clear": lambda v: v["messages"].clear(),
    "list sort": lambda v: v["messages"].sort(),
    "list reverse": lambda v: v["messages"].reverse(),
    "list iadd": lambda v: v["messages"].__iadd__([1]),
    "list imul": lambda v: v["messages"].__imul__(2),
    "nested dict": lambda v: v["messages"][0].__setitem__("role", "admin"),
    "in a tuple": lambda v: v["pair"][1].append(3),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_every_change_to_a_frozen_value_raises_type_error_and_changes_nothing(
    edit: Callable[[Any], Any],
) -> None:
    frozen = freeze(VALUE)
    before = json.dumps(frozen)
    with pytest.raises(TypeError, match="read-only"):
        edit(frozen)
    assert json.dumps(frozen) == before


def test_a_frozen_value_reads_encodes_and_compares_like_the_plain_one() -> None:
    frozen = freeze(VALUE)
    assert isinstance(frozen, dict)
    assert isinstance(frozen["messages"], list)
    assert frozen == VALUE
    assert repr(frozen) == repr(VALUE)
    assert json.dumps(frozen, sort_keys=True) == json.dumps(VALUE, sort_keys=True)
    assert freeze(frozen) is frozen, "a frozen value is not copied again"


def test_copies_of_a_frozen_value_are_plain_and_mutable() -> None:
    frozen = freeze(VALUE)
    for shallow in (dict(frozen), frozen.copy(), copy.copy(frozen), {**frozen}):
        assert type(shallow) is dict
        shallow["k"] = 1
    deep = thaw(frozen)
    deep["messages"][0]["role"] = "admin"
    assert type(deep["messages"]) is list
    assert frozen["messages"][0]["role"] == "user"
    assert type(copy.deepcopy(frozen)["messages"][0]) is dict
    assert type(list(frozen["messages"])) is list


def test_pickling_keeps_a_frozen_value_read_only() -> None:
    again = pickle.loads(pickle.dumps(freeze(VALUE)))
    assert type(again) is FrozenDict
    assert type(again["messages"][0]) is FrozenDict
    assert again == VALUE


def test_a_span_freezes_its_values_however_it_is_built() -> None:
    plain = make_span(input={"a": [1]}, output=[{"b": 2}], metadata={"c": {"d": 1}})
    evolved = attrs.evolve(plain, parameters={"stop": ["x"]}, attributes={"e": [1]})
    rebuilt = SpanEvent.from_dict(json.loads(json.dumps(make_event(span=evolved).to_dict())))
    for span in (plain, evolved, rebuilt.span):
        assert type(span.input) is FrozenDict
        assert type(span.input["a"]) is FrozenList
        assert type(span.output) is FrozenList
        assert type(span.output[0]) is FrozenDict
        assert type(span.metadata["c"]) is FrozenDict
    assert type(evolved.parameters["stop"]) is FrozenList
    assert type(evolved.attributes["e"]) is FrozenList
    usage = obshub.Usage.coerce({"input": 1, "audio": 2})
    assert type(usage.details) is FrozenDict
    assert type(make_score(metadata={"r": [1]}).metadata["r"]) is FrozenList


def test_to_dict_is_new_each_call_and_its_span_values_are_read_only() -> None:
    event = make_event(input={"password": "pw"}, metadata={"labels": ["a"]})
    first = event.to_dict()
    first["span"]["name"] = "changed"
    first["span"]["tags"].append("x")
    assert event.to_dict()["span"]["name"] == "span"
    with pytest.raises(TypeError):
        first["span"]["input"]["password"] = "***"
    with pytest.raises(TypeError):
        item_record(event)["span"]["metadata"]["labels"].append("b")


def test_the_frozen_conversion_is_the_plain_one_made_read_only() -> None:
    class Point:
        def __init__(self) -> None:
            self.x = 1

    value = {
        "s": {3, 1},
        "t": (1, 2),
        "nested": [{"k": b"bytes"}],
        5: Point(),
        "big": list(range(3)),
    }
    plain = to_jsonable(value)
    frozen = to_jsonable(value, frozen=True)
    assert frozen == plain
    assert json.dumps(frozen) == json.dumps(plain)
    assert type(frozen) is FrozenDict
    assert type(frozen["nested"][0]) is FrozenDict
    assert type(plain) is dict
    assert type(plain["nested"]) is list


def test_the_redactor_builds_read_only_values() -> None:
    span = Redactor().process(make_span(input={"password": "pw", "items": [{"token": "t"}]}))
    assert span.input == {"password": "[REDACTED]", "items": [{"token": "[REDACTED]"}]}
    assert type(span.input["items"][0]) is FrozenDict


def test_spans_recorded_through_a_hub_reach_exporters_read_only(
    obshub_memory: Any,
) -> None:
    hub, memory = obshub_memory
    with hub.span("login", input={"password": "pw"}, metadata={"labels": ["a"]}) as live:
        live.update(output=[{"ok": True}])
    assert hub.flush(5.0)
    (span,) = memory.spans()
    assert type(span.input) is FrozenDict
    assert type(span.metadata["labels"]) is FrozenList
    assert type(span.output[0]) is FrozenDict


@pytest.mark.parametrize("cls", [Span, Usage, Score], ids=lambda c: c.__name__)
def test_every_container_field_of_the_value_classes_is_frozen(cls: type) -> None:
    """A new dict-like field on Span, Usage or Score must be read-only too (converter=freeze)."""
    containers = [
        field
        for field in attrs.fields(cls)
        if re.search(r"\b(Mapping|dict|list|Sequence|Any)\b", str(field.type))
    ]
    assert containers
    unfrozen = [field.name for field in containers if field.converter is not freeze]
    assert not unfrozen, f"{cls.__name__} fields shared by every exporter but mutable: {unfrozen}"
