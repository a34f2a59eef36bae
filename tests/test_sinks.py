"""Controls per sink: an exporter's own sampling and processors, on its worker; plugin hooks."""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest

import obshub
from obshub._config import ConfigError
from obshub._plugins import PluginRegistry
from obshub._processors import REDACTED
from obshub._sampling import Sampler, ratio_keeps

WAIT = 5.0


class Tag:
    """Adds a metadata key; records the thread it ran on."""

    def __init__(self, key: str = "tagged", value: str = "yes") -> None:
        self.key = key
        self.value = value
        self.threads: set[str] = set()

    def process(self, span: obshub.Span) -> obshub.Span:
        self.threads.add(threading.current_thread().name)
        return attrs.evolve(span, metadata={**span.metadata, self.key: self.value})


class DropNamed:
    def __init__(self, name: str) -> None:
        self.name = name

    def process(self, span: obshub.Span) -> obshub.Span | None:
        return None if span.name == self.name else span


def record(hub: obshub.Hub, count: int) -> list[str]:
    ids = []
    for i in range(count):
        with hub.span(f"t{i}") as span:
            ids.append(span.trace_id)
    return ids


def test_an_exporter_processor_changes_what_that_sink_alone_receives(hub_factory: Any) -> None:
    tag = Tag()
    plain = obshub.MemoryExporter(instance_name="plain")
    tagged = obshub.MemoryExporter(instance_name="tagged", processors=[tag])
    hub = hub_factory(exporters=[plain, tagged])
    with hub.span("work", metadata={"a": 1}):
        pass
    assert hub.flush(WAIT)
    assert plain.span("work").metadata == {"a": 1}
    assert tagged.span("work").metadata == {"a": 1, "tagged": "yes"}
    assert tag.threads
    assert not tag.threads & {threading.current_thread().name}
    assert all(name.startswith("obshub-") for name in tag.threads)


def test_exporter_redact_and_drop_leave_the_other_sinks_alone(hub_factory: Any) -> None:
    raw = obshub.MemoryExporter(instance_name="raw")
    masked = obshub.MemoryExporter(
        instance_name="masked", redact=True, processors=[DropNamed("secret-step")]
    )
    hub = hub_factory(exporters=[raw, masked])
    with hub.span("login", input={"password": "hunter2"}), hub.span("secret-step"):
        pass
    assert hub.flush(WAIT)
    assert raw.span("login").input == {"password": "hunter2"}
    assert {s.name for s in raw.spans()} == {"login", "secret-step"}
    assert masked.span("login").input == {"password": REDACTED}
    assert {s.name for s in masked.spans()} == {"login"}
    stats = {s.exporter: s for s in hub.stats().values()}
    # Dropped by its processor: handled, not lost.
    assert stats["masked"].exported == stats["raw"].exported == len(raw.events)
    assert stats["masked"].dropped == 0


def test_config_processors_run_before_exporter_processors(hub_factory: Any) -> None:
    both = obshub.MemoryExporter(processors=[Tag("order", "exporter")])
    hub = hub_factory(exporters=[both], processors=[Tag("order", "config"), Tag("c", "1")])
    with hub.span("x"):
        pass
    assert hub.flush(WAIT)
    assert both.span("x").metadata == {"order": "exporter", "c": "1"}


def test_each_sink_receives_exactly_its_ratio_share_by_trace_id(hub_factory: Any) -> None:
    everything = obshub.MemoryExporter(instance_name="all")
    ten = obshub.MemoryExporter(
        instance_name="ten", sampling={"strategy": "ratio", "probability": 0.1}
    )
    fifty = obshub.MemoryExporter(
        instance_name="fifty", sampling={"strategy": "ratio", "probability": 0.5}
    )
    hub = hub_factory(exporters=[everything, ten, fifty])
    ids = record(hub, 300)
    assert hub.flush(WAIT)
    assert [s.trace_id for s in everything.spans()] == ids
    expected_ten = [t for t in ids if ratio_keeps(t, 0.1)]
    expected_fifty = [t for t in ids if ratio_keeps(t, 0.5)]
    assert [s.trace_id for s in ten.spans()] == expected_ten
    assert [s.trace_id for s in fifty.spans()] == expected_fifty
    assert set(expected_ten) <= set(expected_fifty)  # the 10% is inside the 50%
    assert 0 < len(expected_ten) < len(expected_fifty) < len(ids)


def test_an_exporter_sampler_sees_only_what_its_config_kept(hub_factory: Any) -> None:
    memory = obshub.MemoryExporter(sampling={"strategy": "ratio", "probability": 0.5})
    hub = hub_factory(exporters=[memory], sampling={"strategy": "ratio", "probability": 0.2})
    ids = record(hub, 200)
    assert hub.flush(WAIT)
    assert [s.trace_id for s in memory.spans()] == [t for t in ids if ratio_keeps(t, 0.2)]


def test_a_callable_sampler_per_config_and_per_exporter(hub_factory: Any) -> None:
    def even(trace_id: str) -> bool:
        return int(trace_id[-1], 16) % 2 == 0

    def low(trace_id: str) -> bool:
        return trace_id[0] in "01234567"

    picky = obshub.MemoryExporter(instance_name="picky", sampling=low)
    rest = obshub.MemoryExporter(instance_name="rest")
    hub = hub_factory(exporters=[picky, rest], sampling=even)
    ids = record(hub, 100)
    assert hub.flush(WAIT)
    kept = [t for t in ids if even(t)]
    assert [s.trace_id for s in rest.spans()] == kept
    assert [s.trace_id for s in picky.spans()] == [t for t in kept if low(t)]


def test_a_raising_sampler_keeps_the_trace() -> None:
    def broken(_trace_id: str) -> bool:
        raise RuntimeError("bug")

    assert Sampler.from_config(broken).should_sample("0" * 32)


def test_scores_of_traces_a_sink_left_out_do_not_reach_it(hub_factory: Any) -> None:
    nothing = obshub.MemoryExporter(instance_name="nothing", sampling="never")
    everything = obshub.MemoryExporter(instance_name="everything")
    hub = hub_factory(exporters=[nothing, everything])
    with hub.span("t") as span:
        trace_id = span.trace_id
    hub.score(trace_id=trace_id, name="quality", value=1.0)
    assert hub.flush(WAIT)
    assert everything.wait_for_scores(1, WAIT)
    assert nothing.scores == []
    assert nothing.spans() == []


class Plugin:
    """A plugin registering a processor and a sampler by name."""

    __name__ = "acme"

    @staticmethod
    @obshub.hookimpl
    def obshub_register_processors(register: Any) -> None:
        register("tag", Tag)

    @staticmethod
    @obshub.hookimpl
    def obshub_register_samplers(register: Any) -> None:
        def first_half(cut: str = "8") -> Any:
            return lambda trace_id: trace_id[0] < cut

        register("first-half", first_half)


def test_processors_and_samplers_registered_by_name_in_a_config(hub_factory: Any) -> None:
    registry = PluginRegistry(entry_points=[], extra_plugins=[Plugin()])
    assert registry.processor_factory("tag") is Tag
    hub = hub_factory.from_config(
        {
            "configs": {
                "c": {
                    "processors": [{"type": "tag", "key": "by", "value": "config"}],
                    "exporters": {
                        "a": {"type": "memory", "processors": ["tag"]},
                        "b": {"type": "memory", "sampling": {"type": "first-half", "cut": "4"}},
                    },
                }
            }
        },
        registry=registry,
    )
    ids = record(hub, 60)
    assert hub.flush(WAIT)
    exporters = {c.exporter.instance_name: c.exporter for c in hub._channels()}
    a, b = exporters["a"], exporters["b"]
    assert isinstance(a, obshub.MemoryExporter)
    assert isinstance(b, obshub.MemoryExporter)
    assert a.spans()[0].metadata == {"by": "config", "tagged": "yes"}
    assert [s.trace_id for s in b.spans()] == [t for t in ids if t[0] < "4"]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"processors": ["nope"]}, r"exporters\.a\.processors\[0\].*unknown processor 'nope'"),
        ({"sampling": {"type": "nope"}}, r"exporters\.a\.sampling.*unknown sampler"),
        ({"redact": 3}, r"exporters\.a.*redact"),
    ],
)
def test_unknown_names_are_config_errors_naming_the_key(
    hub_factory: Any, table: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        hub_factory.from_config(
            {"configs": {"c": {"exporters": {"a": {"type": "memory", **table}}}}}
        )
