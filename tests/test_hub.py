"""The hub: named configs, routing, sampling, scores, flush, shutdown and stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

import obshub
from obshub import ConfigError, EventKind, SpanEvent, SpanType
from obshub import _hub as hub_module
from obshub._sampling import Sampler
from obshub.testing import wait_for

WAIT = 5.0


def two_configs(
    **extra: Any,
) -> tuple[dict[str, Any], obshub.MemoryExporter, obshub.MemoryExporter]:
    prod = obshub.MemoryExporter(instance_name="prod-mem")
    dev = obshub.MemoryExporter(instance_name="dev-mem")
    configs = {
        "prod": {"service_name": "bot", "exporters": [prod]},
        "dev": {"service_name": "bot-dev", "exporters": [dev]},
    }
    return {"configs": configs, **extra}, prod, dev


def names(memory: obshub.MemoryExporter) -> list[str]:
    return sorted(s.name for s in memory.spans())


# -- choosing the config of a trace -------------------------------------------------------


def test_the_first_config_is_the_default_when_none_is_named(hub_factory: Any) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source)
    assert hub.default == "prod"
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert names(prod) == ["agent"]
    assert names(dev) == []


def test_the_named_default_config_handles_traces(hub_factory: Any) -> None:
    source, prod, dev = two_configs(default="dev")
    hub = hub_factory.from_config(source)
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert names(dev) == ["agent"]
    assert names(prod) == []


def test_config_on_the_root_span_picks_the_config_and_children_follow_it(
    hub_factory: Any,
) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source)
    with hub.span("agent", config="dev"), hub.span("tool", config="prod"):
        hub.event("note")
    assert hub.flush(WAIT)
    assert names(dev) == ["agent", "note", "tool"]
    assert names(prod) == []
    assert {e.config_name for e in dev.events} == {"dev"}
    assert {e.service_name for e in dev.events} == {"bot-dev"}


def test_an_unknown_config_name_falls_back_to_the_default(hub_factory: Any) -> None:
    source, prod, _ = two_configs()
    hub = hub_factory.from_config(source)
    with hub.span("agent", config="staging"):
        pass
    assert hub.flush(WAIT)
    assert names(prod) == ["agent"]


def test_each_distinct_unknown_config_name_is_reported_once_with_the_fallback(
    hub_factory: Any,
) -> None:
    import structlog

    from obshub._logging import reset_rate_limits

    reset_rate_limits()
    source, prod, _ = two_configs()
    hub = hub_factory.from_config(source)
    with structlog.testing.capture_logs() as logs:
        for config in ("staging", "staging", "qa"):
            with hub.span("agent", config=config):
                pass
    assert hub.flush(WAIT)
    assert names(prod) == ["agent", "agent", "agent"]
    unknown = [e for e in logs if e["event"] == "unknown_config"]
    assert [e["config"] for e in unknown] == ["staging", "qa"]
    assert all(e["fallback"] == "traced with the default config 'prod'" for e in unknown)


def test_the_selector_chooses_the_config_of_each_root_span_only(hub_factory: Any) -> None:
    calls: list[tuple[str, SpanType, dict[str, Any]]] = []

    def selector(name: str, span_type: SpanType, fields: Mapping[str, Any]) -> str | None:
        calls.append((name, span_type, dict(fields)))
        return "dev" if fields.get("metadata", {}).get("env") == "dev" else None

    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source, selector=selector)
    with hub.span("dev-agent", type="agent_run", metadata={"env": "dev"}), hub.span("child"):
        pass
    with hub.span("prod-agent"):
        pass
    assert hub.flush(WAIT)
    assert names(dev) == ["child", "dev-agent"]
    assert names(prod) == ["prod-agent"]
    assert [c[0] for c in calls] == ["dev-agent", "prod-agent"]
    assert calls[0][1] is SpanType.AGENT_RUN


def test_config_on_the_root_span_wins_over_the_selector(hub_factory: Any) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source, selector=lambda *_: "dev")
    with hub.span("agent", config="prod"):
        pass
    assert hub.flush(WAIT)
    assert names(prod) == ["agent"]
    assert names(dev) == []


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param(lambda *_: 1 / 0, id="raising"),
        pytest.param(lambda *_: "nope", id="unknown-name"),
    ],
)
def test_a_broken_selector_falls_back_to_the_default_and_the_span_is_recorded(
    hub_factory: Any, selector: Any
) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source, selector=selector)
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert names(prod) == ["agent"]
    assert names(dev) == []


def test_exporters_given_as_instances_in_a_config_dict_are_used(hub_factory: Any) -> None:
    memory = obshub.MemoryExporter(realtime=True)
    hub = hub_factory.from_config(
        {"configs": {"langfuse": {"service_name": "my-service", "exporters": [memory]}}}
    )
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert memory.spans()[0].name == "agent"
    assert memory.events[0].service_name == "my-service"
    assert list(hub.stats()) == ["langfuse/memory"]


def test_hub_built_in_code_takes_configs_as_dicts(hub_factory: Any) -> None:
    hub = hub_factory(
        configs={"a": {"exporters": {"mem": {"type": "memory"}}}, "b": {}}, default="b"
    )
    assert hub.default == "b"
    assert [e.instance_name for e in hub.exporters("a")] == ["mem"]
    assert hub.exporters("b") == []


def test_an_exporter_instance_disabled_in_code_receives_nothing(hub_factory: Any) -> None:
    off = obshub.MemoryExporter(instance_name="off", enabled=False)
    on = obshub.MemoryExporter(instance_name="on")
    hub = hub_factory(exporters=[off, on])
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert names(on) == ["agent"]
    assert off.events == []
    assert "default/off" not in hub.stats()


def test_one_exporter_instance_cannot_serve_two_configs(hub_factory: Any) -> None:
    shared = obshub.MemoryExporter()
    with pytest.raises(ConfigError, match="one instance per config"):
        hub_factory(configs={"a": {"exporters": [shared]}, "b": {"exporters": [shared]}})


def test_two_exporters_with_the_same_name_in_one_config_are_rejected(hub_factory: Any) -> None:
    with pytest.raises(ConfigError, match="duplicate exporter name 'memory'"):
        hub_factory(exporters=[obshub.MemoryExporter(), obshub.MemoryExporter()])


def test_configs_and_exporters_together_are_rejected(hub_factory: Any) -> None:
    with pytest.raises(ConfigError, match="either configs= or exporters="):
        hub_factory(configs={"a": {}}, exporters=[obshub.MemoryExporter()])


def test_a_default_naming_no_config_is_rejected(hub_factory: Any) -> None:
    with pytest.raises(ConfigError, match="default"):
        hub_factory(configs={"a": {}}, default="b")


# -- sampling -----------------------------------------------------------------------------


def test_sampling_never_records_nothing_and_spans_are_not_recording(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory(sampling="never")
    with hub.span("agent") as agent:
        assert not agent.is_recording
        hub.score(name="q", value=1)
    assert hub.flush(WAIT)
    assert memory.events == []
    assert memory.scores == []


def test_sampling_always_records_every_trace(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory(sampling="always")
    for i in range(50):
        with hub.span(f"t{i}") as span:
            assert span.is_recording
    assert hub.flush(WAIT)
    assert len(memory.spans()) == 50


def test_ratio_sampling_is_decided_by_the_trace_id_for_whole_traces(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory(sampling={"strategy": "ratio", "probability": 0.5})
    sampler = Sampler(strategy="ratio", probability=0.5)
    roots = []
    for i in range(200):
        with hub.span(f"root-{i}") as root, hub.span(f"child-{i}"):
            pass
        roots.append(root)
    assert hub.flush(WAIT)
    expected = {r.trace_id for r in roots if sampler.should_sample(r.trace_id)}
    traces = memory.traces()
    assert set(traces) == expected
    assert all(len(spans) == 2 for spans in traces.values())  # never half a trace
    assert 40 < len(expected) < 160
    assert all(r.is_recording is False for r in roots)  # ended


def test_a_score_for_a_trace_that_was_not_sampled_is_not_sent(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory(sampling="never")
    with hub.span("agent") as agent:
        pass
    hub.score(trace_id=agent.trace_id, name="q", value=1)
    assert hub.flush(WAIT)
    assert memory.scores == []


# -- scores -------------------------------------------------------------------------------


def test_scores_go_to_the_config_of_the_trace_they_score(hub_factory: Any) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source)
    with hub.span("agent", config="dev") as agent:
        pass
    hub.score(trace_id=agent.trace_id, name="helpfulness", value=0.9)
    assert hub.flush(WAIT)
    assert [s.name for s in dev.scores] == ["helpfulness"]
    assert dev.scores[0].config_name == "dev"
    assert prod.scores == []


def test_a_score_without_ids_scores_the_current_trace_and_a_span_scores_itself(
    hub_factory: Any,
) -> None:
    hub, memory = hub_factory.memory()
    with hub.span("agent") as agent, hub.span("tool") as tool:
        hub.score(name="trace-level", value=True)
        tool.score("tool-level", "correct", comment="checked")
    assert hub.flush(WAIT)
    by_name = {s.name: s for s in memory.scores}
    assert by_name["trace-level"].trace_id == agent.trace_id
    assert by_name["trace-level"].span_id is None
    assert by_name["trace-level"].data_type is obshub.ScoreDataType.BOOLEAN
    assert by_name["tool-level"].span_id == tool.span_id
    assert by_name["tool-level"].comment == "checked"


def test_a_session_score_goes_to_the_default_config(hub_factory: Any) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source)
    hub.score(session_id="s-42", name="csat", value=4)
    assert hub.flush(WAIT)
    assert [(s.session_id, s.trace_id) for s in prod.scores] == [("s-42", None)]
    assert dev.scores == []


def test_a_score_with_nothing_to_attach_to_is_ignored_without_raising(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory()
    hub.score(name="orphan", value=1)
    hub.score(trace_id="0" * 32, name="bad-field", value=1, nonsense=True)
    assert hub.flush(WAIT)
    assert memory.scores == []


# -- flush, shutdown and stats ---------------------------------------------------------


def test_flush_with_nothing_recorded_returns_true_at_once(hub_factory: Any) -> None:
    hub, _ = hub_factory.memory()
    started = time.monotonic()
    assert hub.flush(timeout=WAIT)
    assert time.monotonic() - started < 1.0


def test_flush_returns_false_when_an_export_failed(hub_factory: Any) -> None:
    class Rejecting(obshub.Exporter):
        name = "rejecting"

        def export(self, events: Sequence[SpanEvent]) -> None:
            raise obshub.ExportError("400 bad request", status=400)

    hub = hub_factory(exporters=[Rejecting(realtime=True), obshub.MemoryExporter()])
    with hub.span("agent"):
        pass
    assert not hub.flush(timeout=WAIT)


def test_shutdown_is_bounded_by_its_timeout_when_an_export_hangs_forever(
    hub_factory: Any, gated_exporter: Any
) -> None:
    hung = gated_exporter(instance_name="hung")
    healthy = obshub.MemoryExporter(instance_name="healthy")
    hub = hub_factory(exporters=[hung, healthy])
    for i in range(3):
        with hub.span(f"s{i}"):
            pass
    assert hung.entered.wait(WAIT)
    started = time.monotonic()
    assert hub.shutdown(timeout=0.3) is False
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f} s"
    assert len(healthy.spans()) == 3
    stats = hub.stats()
    assert stats["default/hung"].dropped == 3  # in flight or queued, never delivered
    assert stats["default/healthy"].exported == 6


def test_shutdown_is_idempotent_and_returns_the_first_result(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory()
    with hub.span("agent"):
        pass
    assert hub.shutdown(timeout=WAIT) is True
    started = time.monotonic()
    assert hub.shutdown(timeout=WAIT) is True
    assert time.monotonic() - started < 1.0
    assert names(memory) == ["agent"]


def test_concurrent_shutdowns_shut_the_exporters_down_once(hub_factory: Any) -> None:
    class Counting(obshub.MemoryExporter):
        name = "counting"
        shutdowns = 0

        def shutdown(self) -> None:
            type(self).shutdowns += 1

    hub = hub_factory(exporters=[Counting()])
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(hub.shutdown(timeout=WAIT)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4
    assert Counting.shutdowns == 1


def test_using_the_hub_as_a_context_manager_shuts_it_down(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory()
    with hub, hub.span("agent"):
        pass
    assert names(memory) == ["agent"]
    assert hub.flush(timeout=WAIT)


def test_stats_report_each_exporter_instance_by_config_and_name(hub_factory: Any) -> None:
    source, _, _ = two_configs()
    hub = hub_factory.from_config(source)
    with hub.span("agent", config="dev"):
        pass
    assert hub.flush(WAIT)
    stats = hub.stats()
    assert set(stats) == {"prod/prod-mem", "dev/dev-mem"}
    dev_stats = stats["dev/dev-mem"]
    assert (dev_stats.config, dev_stats.exporter, dev_stats.type) == ("dev", "dev-mem", "memory")
    assert dev_stats.realtime is True
    assert (dev_stats.queued, dev_stats.exported, dev_stats.dropped) == (0, 2, 0)
    assert (dev_stats.retried, dev_stats.failed, dev_stats.spooled) == (0, 0, 0)
    assert stats["prod/prod-mem"].exported == 0


def test_hub_lists_its_configs_and_exporters(hub_factory: Any) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source)
    assert set(hub.configs) == {"prod", "dev"}
    assert hub.configs["dev"].service_name == "bot-dev"
    assert hub.exporters("prod") == [prod]
    assert hub.exporters() == [prod, dev]


# -- the process default hub -----------------------------------------------------------


@pytest.fixture
def restore_global_hub() -> Iterator[None]:
    previous = hub_module._global_hub
    yield
    current = hub_module._global_hub
    hub_module._global_hub = previous
    if current is not None and current is not previous:
        current.shutdown(timeout=WAIT)


@pytest.mark.usefixtures("restore_global_hub")
def test_without_configure_the_module_level_api_records_nothing_and_raises_nothing() -> None:
    hub_module._global_hub = None
    with obshub.span("agent") as agent:
        obshub.event("e")
        obshub.score(name="q", value=1)
    assert not agent.is_recording
    assert obshub.flush(timeout=WAIT)
    assert obshub.get_hub().stats() == {}


@pytest.mark.usefixtures("restore_global_hub")
def test_configure_makes_the_module_level_api_record_into_the_new_hub() -> None:
    first = obshub.MemoryExporter()
    hub = obshub.configure(exporters=[first], service_name="svc")
    assert obshub.get_hub() is hub
    with obshub.span("agent", type="agent_run"):
        obshub.event("note")
    assert obshub.flush(timeout=WAIT)
    assert names(first) == ["agent", "note"]
    assert first.events[0].service_name == "svc"
    second = obshub.MemoryExporter()
    obshub.configure({"configs": {"main": {"exporters": [second]}}})
    with hub.span("into-the-old-hub"):  # the previous default hub was shut down
        pass
    assert hub.stats()["default/memory"].dropped == 2
    with obshub.span("later"):
        pass
    assert obshub.flush(timeout=WAIT)
    assert names(second) == ["later"]
    assert "later" not in names(first)


def test_only_ended_events_reach_an_exporter_with_default_kinds(hub_factory: Any) -> None:
    class Ended(obshub.Exporter):
        name = "ended"

        def __init__(self, **common: Any) -> None:
            super().__init__(**common)
            self.kinds: list[EventKind] = []

        def export(self, events: Sequence[SpanEvent]) -> None:
            self.kinds.extend(e.kind for e in events)

    exporter = Ended(realtime=True)
    hub = hub_factory(exporters=[exporter])
    with hub.span("a") as span:
        span.update(output=1)
    assert hub.flush(WAIT)
    assert exporter.kinds == [EventKind.ENDED]


def test_a_top_level_event_can_name_its_config(hub_factory: Any) -> None:
    source, prod, dev = two_configs()
    hub = hub_factory.from_config(source)
    hub.event("deploy", config="dev", metadata={"version": "1.4.2"})
    assert hub.flush(WAIT)
    assert [(e.kind, e.span.name, e.span.is_event) for e in dev.events] == [
        (EventKind.ENDED, "deploy", True)
    ]
    assert prod.events == []


def test_every_name_of_the_public_contract_is_importable_from_obshub() -> None:
    for name in obshub.__all__:
        assert getattr(obshub, name) is not None, name
    for name in ("Hub", "Exporter", "ExportError", "SpanEvent", "Score", "hookimpl", "configure"):
        assert name in obshub.__all__


def test_scores_are_made_json_safe_and_stamped_from_hub_and_span(hub_factory: Any) -> None:
    import json

    hub, memory = hub_factory.memory()
    with hub.span("agent") as agent:
        agent.score("quality", 0.5, metadata={"when": {1, 2}, "raw": b"\xff"})
    hub.score(trace_id=agent.trace_id, name="verdict", value="good", data_type="categorical")
    assert memory.wait_for_scores(2, timeout=5)
    first, second = memory.scores
    assert first.timestamp is not None
    assert second.timestamp is not None
    assert json.loads(json.dumps(first.metadata, allow_nan=False)) == first.metadata
    assert second.data_type is obshub.ScoreDataType.CATEGORICAL


def test_a_score_with_a_nan_or_object_value_is_refused_without_raising(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory()
    hub.score(trace_id="0" * 31 + "1", name="bad", value=float("nan"))
    hub.score(trace_id="0" * 31 + "1", name="bad", value=object())  # type: ignore[arg-type]
    hub.score(trace_id="0" * 31 + "1", name="good", value=1)
    assert memory.wait_for_scores(1, timeout=5)
    assert hub.flush(timeout=5)
    assert [s.name for s in memory.scores] == ["good"]


def test_shutdown_does_not_wait_for_an_exporter_paused_by_its_backend(hub_factory: Any) -> None:
    class Refused(obshub.Exporter):
        name = "refused"

        def export(self, events: Any) -> None:
            raise obshub.ExportError("keys rejected", status=401, pause=60.0)

    exporter = Refused(realtime=True)
    hub = hub_factory(exporters=[exporter], shutdown_timeout=5.0)
    with hub.span("held"):
        pass
    wait_for(lambda: hub.stats()["default/refused"].paused)
    started = time.monotonic()
    assert hub.shutdown() is False
    assert time.monotonic() - started < 2.0
    assert hub.stats()["default/refused"].failed == 1  # no spool: counted, not silent


def test_backend_fields_travel_with_a_score_and_may_name_its_only_target(
    hub_factory: Any,
) -> None:
    hub, memory = hub_factory.memory()
    fields = {"langfuse": {"dataset_run_id": "run-7", "when": {1, 2}}}
    hub.score(name="run-accuracy", value=0.9, backend_fields=fields)
    hub.score(name="bad", value=1, backend_fields={"langfuse": "not a table"})
    hub.score(name="note", value="reads well", data_type="text", session_id="s-1")
    assert memory.wait_for_scores(2, timeout=5)
    assert hub.flush(timeout=5)
    run, note = memory.scores
    assert (run.trace_id, run.session_id) == (None, None)
    assert run.backend_fields == {"langfuse": {"dataset_run_id": "run-7", "when": [1, 2]}}
    assert obshub.Score.from_dict(run.to_dict()) == run
    assert note.data_type is obshub.ScoreDataType.TEXT
