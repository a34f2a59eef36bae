"""obshub.testing and its pytest plugin: the kit that plugin authors and applications test with."""

from __future__ import annotations

import re
import textwrap
import threading
from importlib.metadata import entry_points
from typing import Any

import pytest
from structlog.testing import capture_logs

import obshub
from obshub import EventKind, ExportError, SpanType, _logging, http
from obshub._exporters import COMMON_KEYS
from obshub.testing import (
    TRACE_SPANS,
    HttpReceiver,
    HubFactory,
    MemoryHub,
    RecordingExporter,
    make_event,
    make_registry,
    make_score,
    make_span,
    make_trace,
    record_trace,
    reset_rate_limits,
    unreachable_url,
    wait_for,
    wait_for_count,
    wait_for_events,
)
from obshub.testing._contract_config import _BAD_COMMON_SETTINGS

#: Whether the ``pytest11`` entry point loads the fixtures already; until it does,
#: they are loaded here (loading them twice is an error).
ENTRY_POINT = any(ep.value == "obshub.pytest_plugin" for ep in entry_points(group="pytest11"))
pytest_plugins = ["pytester"] if ENTRY_POINT else ["pytester", "obshub.pytest_plugin"]

WAIT = 5.0
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


# -- factories ------------------------------------------------------------------------------


def test_make_span_gives_a_finished_span_with_fresh_w3c_ids() -> None:
    first, second = make_span(), make_span()
    assert HEX32.match(first.trace_id)
    assert HEX16.match(first.span_id)
    assert first.trace_id != second.trace_id
    assert first.duration_ms == 1.5
    assert first.is_root


def test_make_span_takes_field_values_in_their_everyday_forms() -> None:
    span = make_span(
        type="model_generation",
        level="error",
        usage={"input": 10, "output": 2},
        cost={"total": 0.01},
        prompt={"name": "agent", "version": 2},
        error=TimeoutError("slow"),
        tags=["a", "b"],
        start_time=1_700_000_000,
    )
    assert span.type is SpanType.MODEL_GENERATION
    assert span.level is obshub.Level.ERROR
    assert (span.usage, span.cost) == (obshub.Usage(input=10, output=2), obshub.Cost(total=0.01))
    assert span.prompt == obshub.Prompt(name="agent", version=2)
    assert span.error == obshub.SpanError(message="slow", type="TimeoutError")
    assert span.tags == ("a", "b")
    assert span.start_time == 1_700_000_000 * 10**9


def test_make_event_gives_running_spans_to_started_and_updated_events() -> None:
    assert make_event("started").span.end_time is None
    assert make_event(EventKind.UPDATED).span.end_time is None
    ended = make_event(name="x", config_name="prod", service_name="bot")
    assert (ended.kind, ended.span.name, ended.config_name, ended.service_name) == (
        EventKind.ENDED,
        "x",
        "prod",
        "bot",
    )
    span = make_span(name="given")
    assert make_event("ended", span=span, output="done").span.output == "done"


def test_make_trace_is_a_whole_agent_trace_of_ended_spans() -> None:
    events = make_trace()
    spans = {e.span.name: e.span for e in events}
    assert len(events) == TRACE_SPANS == len(spans)
    assert {e.kind for e in events} == {EventKind.ENDED}
    root = spans["support-agent"]
    assert root.is_root
    assert root.type is SpanType.AGENT_RUN
    assert all(s.parent_span_id == root.span_id for s in spans.values() if s is not root)
    assert len({s.trace_id for s in spans.values()}) == 1
    generation = spans["gpt-4o-mini"]
    assert generation.usage == obshub.Usage(input=812, output=95, total=907, cached_input=256)
    assert generation.cost == obshub.Cost(input=0.000122, output=0.000057, total=0.000179)
    assert (generation.model, generation.provider) == ("gpt-4o-mini", "openai")
    assert generation.completion_start_time is not None
    assert spans["lookup_order"].type is SpanType.TOOL_CALL
    assert spans["order-found"].is_event
    assert all((s.session_id, s.user_id) == ("s-42", "u-7") for s in spans.values())
    assert events[-1].span is root, "children end before their root"


def test_make_trace_orders_every_kind_as_it_happens() -> None:
    events = make_trace(kinds=EventKind)
    moments = [e.span.end_time if e.kind is EventKind.ENDED else None for e in events]
    assert [(e.kind.value, e.span.name) for e in events][:2] == [
        ("started", "support-agent"),
        ("started", "gpt-4o-mini"),
    ]
    assert (events[-1].kind, events[-1].span.name) == (EventKind.ENDED, "support-agent")
    ended = [m for m in moments if m is not None]
    assert ended == sorted(ended)
    assert all(e.span.end_time is None for e in events if e.kind is not EventKind.ENDED)
    assert not any(e.span.is_event for e in events if e.kind is not EventKind.ENDED)


def test_make_trace_survives_the_jsonl_round_trip() -> None:
    for event in make_trace(kinds=EventKind):
        assert obshub.SpanEvent.from_dict(event.to_dict()) == event


def test_make_score_infers_its_data_type() -> None:
    assert make_score().data_type is obshub.ScoreDataType.NUMERIC
    assert make_score(value=True).data_type is obshub.ScoreDataType.BOOLEAN
    assert make_score(value="good", trace_id=None, session_id="s-1").session_id == "s-1"


def test_record_trace_records_the_same_trace_through_a_hub(obshub_memory: MemoryHub) -> None:
    hub, recorded = obshub_memory
    trace_id = record_trace(hub)
    assert hub.flush(WAIT)
    assert sorted(s.name for s in recorded.spans()) == sorted(e.span.name for e in make_trace())
    assert {e.kind for e in recorded.events} == set(EventKind)
    assert recorded.wait_for_scores(1, WAIT)
    assert recorded.scores[0].trace_id == trace_id
    assert recorded.span("gpt-4o-mini").usage == make_trace()[0].span.usage


# -- the recording exporter -------------------------------------------------------------------


def test_the_recording_exporter_records_calls_from_its_worker(
    obshub_hub_factory: HubFactory,
) -> None:
    exporter = RecordingExporter()
    hub = obshub_hub_factory(exporters=[exporter])
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    hub.shutdown()
    assert exporter.export_calls >= 1
    assert exporter.flushes >= 1
    assert exporter.shutdowns == 1
    assert exporter.threads == {"obshub-default.recording"}


def test_the_recording_exporter_asks_only_for_the_kinds_it_is_given(
    obshub_hub_factory: HubFactory,
) -> None:
    exporter = RecordingExporter(event_kinds=["started"])
    hub = obshub_hub_factory(exporters=[exporter])
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert [e.kind for e in exporter.events] == [EventKind.STARTED]


def test_fail_next_makes_the_channel_retry_before_recording(
    obshub_hub_factory: HubFactory,
) -> None:
    exporter = RecordingExporter(
        event_kinds=["ended"], retry={"initial_backoff": 0.001, "jitter": 0}
    )
    exporter.fail_next(ExportError("down", retryable=True), ExportError("still", retryable=True))
    hub = obshub_hub_factory(exporters=[exporter])
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    assert exporter.export_calls == 3
    assert [s.name for s in exporter.spans()] == ["agent"]
    (stats,) = hub.stats().values()
    assert stats.retried == 2


# -- waiting -------------------------------------------------------------------------------------


def test_wait_for_wakes_on_the_condition_and_returns_the_value() -> None:
    condition = threading.Condition()
    box: list[int] = []

    def produce() -> None:
        with condition:
            box.append(42)
            condition.notify_all()

    threading.Timer(0.01, produce).start()
    assert wait_for(lambda: box and box[0], WAIT, condition=condition) == 42


def test_wait_for_without_a_condition_rechecks_until_true() -> None:
    done = threading.Event()
    threading.Timer(0.01, done.set).start()
    assert wait_for(done.is_set, WAIT) is True


def test_wait_for_raises_timeout_error_with_the_message() -> None:
    with pytest.raises(TimeoutError, match="never"):
        wait_for(lambda: False, 0.01, message="never")
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, 0.01, condition=threading.Condition())


def test_wait_for_events_returns_the_events_once_they_arrived(obshub_memory: MemoryHub) -> None:
    hub, recorded = obshub_memory
    with hub.span("agent"):
        hub.event("step")
    events = wait_for_events(recorded, 2)
    assert sorted(e.span.name for e in events) == ["agent", "step"]
    assert len(wait_for_events(recorded, 3, kind=None)) == 3


def test_wait_for_events_says_what_arrived_when_it_times_out(obshub_memory: MemoryHub) -> None:
    hub, recorded = obshub_memory
    with hub.span("agent"):
        pass
    assert hub.flush(WAIT)
    with pytest.raises(
        TimeoutError, match=r"received 2 events: \['started:agent', 'ended:agent'\]"
    ):
        wait_for_events(recorded, 2, timeout=0.01)


# -- hubs, registries, addresses -------------------------------------------------------------


def test_obshub_memory_is_the_default_hub_during_the_test(obshub_memory: MemoryHub) -> None:
    hub, recorded = obshub_memory
    assert obshub.get_hub() is hub

    @obshub.observe(type="tool_call")
    def lookup(order_id: str) -> str:
        return "in transit"

    lookup("A-1042")
    assert wait_for_events(recorded, 1)[0].span.output == "in transit"


def test_make_registry_lets_a_config_name_an_uninstalled_class(
    obshub_hub_factory: HubFactory,
) -> None:
    class Custom(RecordingExporter):
        name = "custom-kit-test"

    hub = obshub_hub_factory.from_config(
        {"configs": {"c": {"exporters": {"mine": {"type": "custom-kit-test"}}}}},
        registry=make_registry(Custom),
    )
    (exporter,) = hub.exporters()
    assert type(exporter) is Custom
    assert exporter.instance_name == "mine"


def test_unreachable_url_refuses_connections() -> None:
    with pytest.raises(ExportError) as caught:
        http.post(unreachable_url("/x"), b"{}", timeout=2)
    assert caught.value.retryable


def test_the_http_receiver_records_requests_and_answers_as_told() -> None:
    with HttpReceiver() as receiver:
        receiver.respond(503, body="busy", headers={"Retry-After": "3"})
        with pytest.raises(ExportError) as caught:
            http.post(f"{receiver.url}/a", b'{"n": 1}', {"X-Key": "k"}, timeout=2)
        assert (caught.value.status, caught.value.retry_after) == (503, 3.0)
        response = http.post(f"{receiver.url}/b", b'{"n": 2}', timeout=2)
        assert response.status == 200
        first, second = receiver.wait_for_requests(2)
        assert (first.path, first.status, first.headers["x-key"]) == ("/a", 503, "k")
        assert second.json() == {"n": 2}
        assert [r.path for r in receiver.requests("/b")] == ["/b"]
        (only_b,) = receiver.wait_for_requests(1, "/b")
        assert only_b is second
        with pytest.raises(TimeoutError, match=r"for 3 requests; 2 arrived"):
            receiver.wait_for_requests(3, timeout=0.01)
        with pytest.raises(TimeoutError, match=r"for 2 requests to /b; 1 arrived"):
            receiver.wait_for_requests(2, "/b", timeout=0.01)
    with pytest.raises(RuntimeError):
        _ = receiver.url


def test_wait_for_count_returns_everything_once_enough_arrived() -> None:
    cond = threading.Condition()
    items: list[int] = []

    def add() -> None:
        for n in range(3):
            with cond:
                items.append(n)
                cond.notify_all()

    threading.Thread(target=add).start()
    assert wait_for_count(lambda: items, 3, condition=cond, timeout=WAIT) == [0, 1, 2]
    with pytest.raises(TimeoutError, match=r"waited 0.01 s for 4 spans; 3 arrived"):
        wait_for_count(lambda: items, 4, condition=cond, timeout=0.01, what="spans")


def test_reset_rate_limits_lets_a_repeated_warning_be_logged_again() -> None:
    limited = _logging.RateLimitedLog(interval=3600)
    with capture_logs() as logs:
        log = _logging.get_logger()
        limited(log, "warning", "same_problem")
        limited(log, "warning", "same_problem")
        reset_rate_limits()
        limited(log, "warning", "same_problem")
    assert [entry["event"] for entry in logs] == ["same_problem", "same_problem"]
    assert "suppressed" not in logs[1]


def test_the_battery_tries_a_bad_value_for_every_common_key() -> None:
    assert {case.values[0] for case in _BAD_COMMON_SETTINGS} == set(COMMON_KEYS)


# -- the pytest plugin, from the outside --------------------------------------------------------


#: Inner runs skip plugins they do not need (hypothesis alone takes a second to start).
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")


def run_plugin(pytester: pytest.Pytester, source: str) -> Any:
    pytester.makepyfile(test_it=textwrap.dedent(source))
    load = () if ENTRY_POINT else ("-p", "obshub.pytest_plugin")
    return pytester.inline_run(*load, *QUIET)


def test_obshub_memory_shuts_its_hub_down_and_restores_the_default(
    pytester: pytest.Pytester,
) -> None:
    result = run_plugin(
        pytester,
        """
        import obshub

        seen = []

        def test_uses_it(obshub_memory):
            seen.append(obshub_memory.hub)
            assert obshub.get_hub() is obshub_memory.hub

        def test_afterwards():
            (hub,) = seen
            assert obshub.get_hub() is not hub
            with hub.span("late"):
                pass
            assert hub.stats()["default/recording"].dropped == 2  # started and ended
        """,
    )
    result.assertoutcome(passed=2)


def test_obshub_capture_logs_sees_a_repeated_warning_in_each_test(
    pytester: pytest.Pytester,
) -> None:
    result = run_plugin(
        pytester,
        """
        import pytest

        @pytest.mark.parametrize("attempt", [1, 2])
        def test_warns(obshub_memory, obshub_capture_logs, attempt):
            with obshub_memory.hub.span("x", type="no-such-type"):
                pass
            assert [e["event"] for e in obshub_capture_logs] == ["unknown_span_type"]
        """,
    )
    result.assertoutcome(passed=2)


def test_obshub_hub_factory_shuts_down_every_hub_it_built(pytester: pytest.Pytester) -> None:
    result = run_plugin(
        pytester,
        """
        import obshub
        from obshub.testing import RecordingExporter

        built = []

        def test_builds(obshub_hub_factory):
            built.append(RecordingExporter())
            obshub_hub_factory(exporters=[built[0]])
            built.append(obshub_hub_factory.memory().exporter)

        def test_afterwards():
            assert [e.shutdowns for e in built] == [1, 1]
        """,
    )
    result.assertoutcome(passed=2)


# -- the contract battery, on exporters with one defect each ------------------------------------

BROKEN_EXPORTERS = """
from typing import Any, ClassVar

import obshub
from obshub.testing import ExporterContract, RecordingExporter


class Good(RecordingExporter):
    name = "good"
    secret_keys = frozenset({"token"})

    def __init__(self, *, token: str = "", fail: bool = False, **common: Any) -> None:
        super().__init__(**common)
        self.token = token
        self.fail = fail

    def export(self, events):
        if self.fail:
            raise obshub.ExportError("backend down", retryable=True)
        super().export(events)

    def check(self):
        if self.fail:
            return obshub.CheckResult(ok=False, message="backend down")
        return obshub.CheckResult(ok=True, message="fine")


class Contract(ExporterContract):
    exporter_class: ClassVar[type] = Good
    config: ClassVar[dict] = {"token": "tok-9f8e7d6c"}

    def failing_config(self, backend):
        return {"fail": True}

    def received(self, backend, exporter):
        return len({e.span.span_id for e in exporter.events})


class TestGood(Contract):
    pass


class LeaksInRepr(Good):
    name = "leaky"

    def __repr__(self):
        return f"<LeaksInRepr token={self.token}>"


class TestLeaksInRepr(Contract):
    exporter_class = LeaksInRepr


class LeaksInLogs(Good):
    name = "logs"

    def export(self, events):
        self.log.debug("sending", auth=self.token)
        super().export(events)


class TestLeaksInLogs(Contract):
    exporter_class = LeaksInLogs


class SwallowsCommonKeys(Good):
    name = "swallow"

    def __init__(self, *, token: str = "", fail: bool = False, **common: Any) -> None:
        super().__init__(token=token, fail=fail)


class TestSwallowsCommonKeys(Contract):
    exporter_class = SwallowsCommonKeys

    def failing_config(self, backend):
        return None  # its ignored retry= would make the failure tests wait out every retry


class RaisesPlainErrors(Good):
    name = "plain"

    def export(self, events):
        if self.fail:
            raise ConnectionError("refused")
        super().export(events)


class TestRaisesPlainErrors(Contract):
    exporter_class = RaisesPlainErrors


class WrongRetryable(Good):
    name = "wrong-retryable"


class TestWrongRetryable(Contract):
    exporter_class = WrongRetryable
    expect_retryable = False


class CheckRaises(Good):
    name = "check-raises"

    def check(self):
        raise OSError("no network")


class TestCheckRaises(Contract):
    exporter_class = CheckRaises


class ShutdownTwiceFails(Good):
    name = "shutdown-twice"

    def shutdown(self):
        if self.shutdowns:
            raise RuntimeError("already closed")
        super().shutdown()


class TestShutdownTwiceFails(Contract):
    exporter_class = ShutdownTwiceFails


class EmptyBatchCrashes(Good):
    name = "empty-batch"

    def export(self, events):
        events[0]
        super().export(events)


class TestEmptyBatchCrashes(Contract):
    exporter_class = EmptyBatchCrashes


class StringKinds(Good):
    name = "string-kinds"
    event_kinds = frozenset({"ended"})


class TestStringKinds(Contract):
    exporter_class = StringKinds


class BadName(Good):
    name = "Bad Name"


class TestBadName(Contract):
    exporter_class = BadName


class LosesSpans(Good):
    name = "loses-spans"

    def export(self, events):
        super().export(events[:1])


class TestLosesSpans(Contract):
    exporter_class = LosesSpans


class PopsPasswords(Good):
    name = "pops-passwords"

    def export(self, events):
        for event in events:
            if isinstance(event.span.input, dict) and "password" in event.span.input:
                event.span.input.pop("password")
        super().export(events)


class TestPopsPasswords(Contract):
    exporter_class = PopsPasswords


class EditsAroundReadOnly(Good):
    name = "edits-around"

    def export(self, events):
        for event in events:
            metadata = event.span.metadata
            if "labels" in metadata:
                dict.__setitem__(metadata, "labels", ["changed"])
            object.__setattr__(event.span, "name", event.span.name.upper())
        super().export(events)


class TestEditsAroundReadOnly(Contract):
    exporter_class = EditsAroundReadOnly


class EditsScores(Good):
    name = "edits-scores"

    def export_scores(self, scores):
        for score in scores:
            object.__setattr__(score, "comment", "seen")
        super().export_scores(scores)


class TestEditsScores(Contract):
    exporter_class = EditsScores

"""

#: Which battery tests each broken exporter must fail (all its other tests pass or skip).
EXPECTED_FAILURES = {
    "TestGood": set(),
    "TestLeaksInRepr": {"test_keeps_secrets_out_of_repr_errors_checks_and_logs"},
    "TestLeaksInLogs": {"test_keeps_secrets_out_of_repr_errors_checks_and_logs"},
    "TestSwallowsCommonKeys": {
        "test_builds_from_keyword_arguments",
        "test_builds_from_a_config_table_by_its_type_name",
        "test_rejects_an_unknown_key_with_its_full_path",
        "test_rejects_a_bad_common_setting_with_its_full_path",
    },
    "TestRaisesPlainErrors": {"test_raises_export_error_when_the_backend_fails"},
    "TestWrongRetryable": {"test_raises_export_error_when_the_backend_fails"},
    "TestCheckRaises": {
        "test_check_returns_a_well_formed_result",
        "test_check_reports_a_failing_backend_without_raising",
    },
    "TestShutdownTwiceFails": {"test_flush_and_shutdown_are_idempotent"},
    "TestEmptyBatchCrashes": {"test_exports_an_empty_batch"},
    "TestStringKinds": {"test_has_a_type_name_and_wanted_event_kinds"},
    "TestBadName": {"test_has_a_type_name_and_wanted_event_kinds"},
    "TestLosesSpans": {"test_delivers_a_realistic_trace_to_its_backend"},
    "TestPopsPasswords": {"test_leaves_what_it_is_given_unchanged"},
    "TestEditsAroundReadOnly": {"test_leaves_what_it_is_given_unchanged"},
    "TestEditsScores": {"test_leaves_what_it_is_given_unchanged"},
}


def test_the_contract_battery_fails_each_defect_where_it_should(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_broken=BROKEN_EXPORTERS)
    # The bad-common-setting cases only matter where common keys are handled.
    only_there = "not bad_common_setting or TestGood or TestSwallowsCommonKeys"
    result = pytester.inline_run(*QUIET, "-k", only_there)
    passed, _skipped, failed = result.listoutcomes()
    failures: dict[str, set[str]] = {name: set() for name in EXPECTED_FAILURES}
    for report in failed:
        _, cls, test = report.nodeid.split("::")
        failures[cls].add(test.split("[")[0])
    assert failures == EXPECTED_FAILURES
    good = {r.nodeid.split("::")[2] for r in passed if "::TestGood::" in r.nodeid}
    assert "test_delivers_a_realistic_trace_to_its_backend" in good
    assert "test_contains_a_failing_backend_inside_the_hub" in good
