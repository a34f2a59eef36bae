"""Fan-out: exporters with the same encoding share one OTLP encoding of each span."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from obshub_otlp import _encoding
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import obshub
from obshub.spans import EventKind, Span, SpanError, SpanEvent, SpanType


class Encoding(obshub.Exporter):
    name = "encoding"

    def __init__(self, *, key: str | None, **common: Any) -> None:
        super().__init__(**common)
        self.key = key
        self.requests: list[bytes] = []

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        key = None if self.key is None else ("test", self.key)
        self.requests.append(_encoding.encode_spans(events, cache_key=key).SerializeToString())


def _record(hub: obshub.Hub) -> None:
    with (
        hub.span("agent", type="agent_run", input="q"),
        hub.span("gen", type="model_generation", model="m", usage={"input": 3}),
    ):
        pass
    assert hub.flush(timeout=5)


def _spans(blobs: list[bytes]) -> list[Any]:
    out = []
    for blob in blobs:
        request = ExportTraceServiceRequest.FromString(blob)
        out.extend(s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
    return out


def test_exporters_with_the_same_key_encode_each_span_once(
    obshub_hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = _encoding._encode_span

    def counting(event: obshub.SpanEvent, *rest: Any) -> bytes:
        calls.append(event.span.name)
        return real(event, *rest)

    monkeypatch.setattr(_encoding, "_encode_span", counting)
    first = Encoding(key="same", instance_name="a")
    second = Encoding(key="same", instance_name="b")
    hub = obshub_hub_factory(exporters=[first, second])
    _record(hub)
    assert sorted(calls) == ["agent", "gen"]  # once per span, not once per exporter
    assert _spans(first.requests) == _spans(second.requests)


def test_different_keys_or_no_key_encode_separately(
    obshub_hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = _encoding._encode_span

    def counting(event: obshub.SpanEvent, *rest: Any) -> bytes:
        calls.append(event.span.name)
        return real(event, *rest)

    monkeypatch.setattr(_encoding, "_encode_span", counting)
    exporters = [
        Encoding(key="one", instance_name="a"),
        Encoding(key="two", instance_name="b"),
        Encoding(key=None, instance_name="c"),
    ]
    hub = obshub_hub_factory(exporters=exporters)
    _record(hub)
    assert len(calls) == 6


def test_a_single_exporter_does_not_pay_for_sharing(obshub_hub_factory: Any) -> None:
    seen: list[Any] = []

    class Spy(Encoding):
        def export(self, events: Sequence[obshub.SpanEvent]) -> None:
            seen.extend(e.shared_cache() for e in events)

    hub = obshub_hub_factory(exporters=[Spy(key="alone")])
    _record(hub)
    assert seen == [None, None]


def test_without_conventions_a_span_carries_only_its_own_and_the_extra_attributes() -> None:
    span = Span(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="00f067aa0ba902b7",
        name="pay",
        type=SpanType.TOOL_CALL,
        start_time=1,
        end_time=2,
        session_id="s-1",
        model="m",
        attributes={"app.key": "v"},
        error=SpanError(message="card declined", type="ValueError", stack="..."),
    )
    event = SpanEvent(kind=EventKind.ENDED, span=span, config_name="c", service_name="svc")
    bare = _encoding.encode_spans([event], extra_attributes=lambda e: {"x": 1}, conventions=False)
    (encoded,) = _spans([bare.SerializeToString()])
    assert {kv.key for kv in encoded.attributes} == {"app.key", "x"}
    assert list(encoded.events) == []
    assert (encoded.status.code, encoded.status.message) == (2, "card declined")
    full = _encoding.encode_spans([event])
    (generic,) = _spans([full.SerializeToString()])
    keys = {kv.key for kv in generic.attributes}
    assert {"gen_ai.tool.name", "session.id", "obshub.span.type", "app.key"} <= keys
    assert [e.name for e in generic.events] == ["exception"]


def test_otlp_exporters_that_agree_share_each_span_and_others_do_not(
    obshub_hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obshub_otlp import OtlpExporter
    from obshub_otlp.testing import OtlpReceiver

    calls: list[str] = []
    real = _encoding._encode_span

    def counting(event: obshub.SpanEvent, *rest: Any) -> bytes:
        calls.append(event.span.name)
        return real(event, *rest)

    monkeypatch.setattr(_encoding, "_encode_span", counting)
    with OtlpReceiver() as receiver:

        def exporter(name: str, **options: Any) -> OtlpExporter:
            return OtlpExporter(
                endpoint=receiver.url, instance_name=name, headers={"x-name": name}, **options
            )

        hub = obshub_hub_factory(
            exporters=[
                exporter("a"),
                exporter("b", compression="none"),  # the same span bytes: shared
                exporter("c", include_content=False),  # its own
                exporter("d", conventions="openinference"),  # its own
                exporter("e", protocol="http/json"),  # JSON is built from messages
            ]
        )
        _record(hub)
        # a and b: once per span between them; c and d: once each; e: once each.
        assert sorted(calls) == ["agent"] * 4 + ["gen"] * 4
        sent: dict[str, list[bytes]] = {}
        for request in receiver.requests():
            if request.content_type == "application/x-protobuf":
                sent.setdefault(request.headers["x-name"], []).append(request.content)
        assert sorted(_spans(sent["a"]), key=str) == sorted(_spans(sent["b"]), key=str)
        assert len(receiver.spans()) == 10
