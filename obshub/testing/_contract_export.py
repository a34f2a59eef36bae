"""Contract checks on what an exporter takes: every kind of event and score, unchanged."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from obshub._exporters import Exporter
from obshub.spans import (
    EventKind,
    Score,
    SpanEvent,
    SpanType,
    item_record,
    new_span_id,
    new_trace_id,
)
from obshub.testing._contract_base import (
    _ContractBase,
)
from obshub.testing._factories import (
    TRACE_SPANS,
    make_event,
    make_score,
    make_span,
    make_trace,
    record_trace,
)
from obshub.testing._hubs import HubFactory

__all__ = ["ExportChecks"]


def _given(items: Sequence[SpanEvent | Score]) -> list[str]:
    """A deep snapshot of what an exporter is handed: each item's JSON record."""
    return [json.dumps(item_record(item), sort_keys=True, default=repr) for item in items]


def _call_without_changes(
    call: Callable[[Sequence[Any]], None], items: Sequence[SpanEvent | Score], what: str
) -> None:
    before = _given(items)
    try:
        call(list(items))
    except TypeError as exc:
        if "read-only" not in str(exc):
            raise
        pytest.fail(
            f"{what} tried to change what it was given ({exc}); every exporter of a config "
            "receives the same items: copy what you need to change (obshub.spans.thaw(value))"
        )
    after = _given(items)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert not changed, (
        f"{what} changed an item it was given (every exporter of a config receives the same "
        f"items): before {changed[0][0][:300]}, after {changed[0][1][:300]}"
    )


class _Spy:
    """Wraps one exporter instance's methods to see what the hub hands it."""

    def __init__(self, exporter: Exporter) -> None:
        self.events: list[SpanEvent] = []
        self.scores: list[Score] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        export, export_scores = exporter.export, exporter.export_scores

        def spy_export(events: Sequence[SpanEvent]) -> None:
            with self._lock:
                self.events.extend(events)
                self.threads.add(threading.get_ident())
            export(events)

        def spy_scores(scores: Sequence[Score]) -> None:
            with self._lock:
                self.scores.extend(scores)
            export_scores(scores)

        # The channel looks the methods up on each call, so instance attributes win.
        setattr(exporter, "export", spy_export)  # noqa: B010 - mypy forbids assigning a method
        if exporter.supports_scores():
            setattr(exporter, "export_scores", spy_scores)  # noqa: B010 - as above


class ExportChecks(_ContractBase):
    """Direct exports of every event kind and value, through a hub, and to the backend."""

    # -- exporting -----------------------------------------------------------------------------

    def test_exports_each_event_kind_directly(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``export()`` takes a started, an updated and an ended event without raising."""
        exporter = contract_exporter()
        for kind in EventKind:
            exporter.export([make_event(kind, name=f"{kind.value}-span", type="agent_run")])
        exporter.export(make_trace(kinds=EventKind))

    def test_exports_an_empty_batch(self, contract_exporter: Callable[..., Exporter]) -> None:
        """``export([])`` is a no-op, not an error."""
        contract_exporter().export([])

    def test_exports_errors_events_and_unusual_values(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Every valid span is exportable: each type, errors, events, unicode, big inputs."""
        trace_id, root_id = new_trace_id(), new_span_id()
        root = make_span(trace_id=trace_id, span_id=root_id, name="root", type="agent_run")
        spans = [root]
        spans += [
            make_span(trace_id=trace_id, parent_span_id=root_id, name=t.value, type=t)
            for t in SpanType
        ]
        spans += [
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="failed tool",
                type="tool_call",
                level="error",
                status_message="order service timed out",
                error={"message": "timed out", "type": "TimeoutError", "stack": "Traceback ..."},
            ),
            make_span(trace_id=trace_id, parent_span_id=root_id, name="slow", level="warning"),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="cache-hit",
                is_event=True,
                end_time=root.start_time,
                start_time=root.start_time,
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="ünïcödé ✓ 日本語 🚀",
                input={"text": "naïve café ☕", "nested": {"list": [1, 2.5, None, True]}},
                output="",
                metadata={"empty": {}, "zero": 0},
                tags=("ä", "b c"),
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="large",
                input="x" * 100_000,
                output=["y" * 1000] * 20,
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="bare generation",
                type="model_generation",
                model=None,
                usage={"input": 0},
                cost={"total": 0.0},
            ),
        ]
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        exporter.export([make_event(kind, span=span) for span in spans])

    def test_exports_text_with_lone_surrogates(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Text that is not valid UTF-8 (lone surrogates, as a hub passes them on) is exportable."""
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        broken = "half a pair \ud83d here"
        event = make_event(
            kind,
            name=broken,
            type="model_generation",
            input={"text": broken, broken: "key"},
            output=[broken],
            metadata={"note": broken},
            model=broken,
            session_id=broken,
            tags=(broken,),
        )
        exporter.export([event])

    def test_gets_only_the_event_kinds_it_asks_for_through_a_hub(
        self, contract_exporter: Callable[..., Exporter], contract_hubs: HubFactory
    ) -> None:
        """A hub hands the exporter exactly the kinds in ``event_kinds``, from one worker."""
        exporter = contract_exporter(realtime=True)
        spy = _Spy(exporter)
        hub = contract_hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub)
        assert hub.flush(self.timeout), f"flush failed: {hub.stats()}"
        kinds = {event.kind for event in spy.events}
        assert kinds == set(exporter.event_kinds)
        if EventKind.ENDED in exporter.event_kinds:
            ended = {e.span.span_id for e in spy.events if e.kind is EventKind.ENDED}
            assert len(ended) == TRACE_SPANS
        if exporter.supports_scores():
            assert [s.name for s in spy.scores] == ["helpfulness"]
        assert len(spy.threads) == 1

    def test_delivers_a_realistic_trace_to_its_backend(
        self,
        backend: Any,
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
    ) -> None:
        """A trace recorded through a real hub arrives whole at the backend."""
        exporter = contract_exporter()
        before = self.received(backend, exporter)
        if before is None:
            pytest.skip("override received(backend, exporter) to count what the backend got")
        hub = contract_hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub)
        assert hub.flush(self.timeout), f"flush failed: {hub.stats()}"
        expected = TRACE_SPANS if EventKind.ENDED in exporter.event_kinds else TRACE_SPANS - 1
        after = self.received(backend, exporter)
        assert after is not None
        assert after - before == expected, f"the backend got {after - before} spans"
        (stats,) = hub.stats().values()
        assert (stats.failed, stats.dropped) == (0, 0), stats

    def test_accepts_a_score_batch_when_it_takes_scores(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """An exporter that overrides ``export_scores`` takes each kind of score, and none."""
        if not self.exporter_class.supports_scores():
            pytest.skip("the exporter does not take scores")
        exporter = contract_exporter()
        exporter.export_scores(
            [
                make_score(),
                make_score(name="resolved", value=True, comment=None),
                make_score(name="tone", value="friendly", span_id=new_span_id()),
                make_score(name="csat", value=4, trace_id=None, session_id="s-42"),
            ]
        )
        exporter.export_scores([])

    def test_leaves_what_it_is_given_unchanged(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``export()`` and ``export_scores()`` change nothing they are given.

        Every exporter of a config receives the very same events and scores, so
        a change made by one would reach the others. Span values are read-only
        (a change raises ``TypeError``); a change made around that
        (``dict.__setitem__``, ``object.__setattr__``) is found by comparing
        what was given before and after the call. Copy what you need to change:
        ``obshub.spans.thaw(value)`` is a mutable deep copy.
        """
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        events = [e for e in make_trace(kinds=EventKind) if e.kind in kinds]
        events.append(
            make_event(
                kind,
                name="login",
                type="tool_call",
                input={"user": "u-7", "password": "pw-7f3a", "history": [{"role": "user"}]},
                output=[{"ok": True, "token": "t-9b1c"}],
                metadata={"labels": ["auth"], "client": {"ip": "10.0.0.7"}},
                attributes={"http.headers": {"authorization": "Bearer abc"}},
                parameters={"stop": ["\n"]},
                usage={"input": 3, "output": 1, "details": {"audio": 1}},
            )
        )
        _call_without_changes(exporter.export, events, "export()")
        if exporter.supports_scores():
            scores = [make_score(metadata={"rubric": {"steps": ["a", "b"]}}), make_score()]
            _call_without_changes(exporter.export_scores, scores, "export_scores()")
