"""Every way a send can fail: retries, refusals, partial successes and oversize batches."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.testing import Fault, IncomingRequest, OtlpReceiver
from structlog.testing import capture_logs

import obshub
import obshub.testing

MakeHub = Callable[..., obshub.Hub]
Stats = Callable[[obshub.Hub], obshub.ChannelStats]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def only_exporter(hub: obshub.Hub) -> OtlpExporter:
    (exporter,) = hub.exporters()
    assert isinstance(exporter, OtlpExporter)
    return exporter


# -- retried -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_retried_and_the_span_delivered_once(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats, status: int
) -> None:
    receiver.inject(Fault.error(status))
    hub = make_hub()
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert receiver.statuses() == [status, 200]
    assert [s.name for s in receiver.spans()] == ["agent"]
    counters = stats(hub)
    assert (counters.exported, counters.retried, counters.failed) == (1, 1, 0)


def test_429_retry_after_is_honoured(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.inject(Fault.error(429, retry_after=0.2))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    first, second = receiver.requests()
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 0.15
    (retry,) = events(logs, "export_retry")
    assert retry["wait_s"] == 0.2
    assert retry["status"] == 429
    assert stats(hub).failed == 0


def test_a_reset_connection_is_retried(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.inject(Fault.connection_reset())
    hub = make_hub()
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert receiver.statuses() == [None, 200]
    assert len(receiver.spans()) == 1
    assert stats(hub).retried == 1


def test_a_receiver_slower_than_the_timeout_is_a_retryable_timeout(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.inject(Fault.slow(2.0))
    hub = make_hub(timeout=0.2)
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    (retry,) = events(logs, "export_retry")
    assert "timed out after 0.2 s" in retry["error"]
    assert (stats(hub).retried, stats(hub).exported) == (1, 1)
    assert receiver.span("agent").name == "agent"


def test_retries_stop_when_the_policy_is_exhausted(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.fault_function = lambda request: Fault.error(503)
    hub = make_hub(retry={"initial_backoff": 0.01, "max_backoff": 0.02, "max_attempts": 3})
    with hub.span("agent"):
        pass
    assert not hub.flush(5)
    assert receiver.statuses() == [503, 503, 503]
    counters = stats(hub)
    assert (counters.retried, counters.failed, counters.exported) == (2, 1, 0)


# -- not retried -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 415])
def test_a_client_error_is_not_retried_and_counted_failed(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats, status: int
) -> None:
    receiver.inject(Fault.error(status))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert not hub.flush(5)
    assert receiver.statuses() == [status]
    counters = stats(hub)
    assert (counters.exported, counters.retried, counters.failed) == (0, 0, 1)
    (failed,) = events(logs, "export_failed")
    assert failed["status"] == status
    assert failed["retryable"] is False


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_the_receivers_status_message_is_quoted_in_the_error(
    make_hub: MakeHub, receiver: OtlpReceiver, protocol: str
) -> None:
    receiver.inject(Fault.error(400, message="span 3: attribute key must not be empty"))
    hub = make_hub(protocol=protocol)
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert not hub.flush(5)
    (rejected,) = events(logs, "export_rejected")
    assert rejected["error"] == (
        f"POST {receiver.url}: HTTP 400: span 3: attribute key must not be empty"
    )


def test_a_400_for_one_span_is_isolated_and_counted_rejected(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.inject(Fault.error(400, message="bad span"))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        flushed = hub.flush(5)
    assert not flushed
    assert flushed.rejected == 1
    assert receiver.statuses() == [400]
    counters = stats(hub)
    assert (counters.exported, counters.retried, counters.failed, counters.rejected) == (0, 0, 0, 1)
    (rejected,) = events(logs, "export_rejected")
    assert rejected["status"] == 400


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_pause_sends_then_the_held_batch_probes_and_resumes(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats, status: int
) -> None:
    receiver.inject(Fault.error(status))
    hub = make_hub(auth_cooldown=0.3)
    with capture_logs() as logs:
        with hub.span("refused"):
            pass
        assert not hub.flush(0.1)  # held through the cooldown, not failed
        assert stats(hub).paused
        with hub.span("while-paused"):
            pass
        assert hub.flush(5)
    assert receiver.statuses() == [status, 200, 200]
    assert sorted(s.name for s in receiver.spans()) == ["refused", "while-paused"]
    (paused,) = events(logs, "export_paused")
    assert paused["status"] == status
    assert paused["pause_s"] == 0.3
    assert "the receiver refused the credentials: check headers" in paused["error"]
    counters = stats(hub)
    assert (counters.failed, counters.retried, counters.exported) == (0, 0, 2)
    assert not counters.paused


def test_repeated_refusals_make_the_cooldown_grow(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    receiver.inject(Fault.error(401), Fault.error(403))
    hub = make_hub(auth_cooldown=0.05)
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    pauses = [(e["status"], e["pause_s"]) for e in events(logs, "export_paused")]
    assert pauses == [(401, 0.05), (403, 0.1)]
    assert receiver.statuses() == [401, 403, 200]


# -- partial success ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_a_partial_success_is_logged_with_its_count_and_not_retried(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats, protocol: str
) -> None:
    receiver.inject(Fault.partial_success(2, "2 spans exceed the attribute limit"))
    hub = make_hub(protocol=protocol)
    with capture_logs() as logs:
        for i in range(5):
            with hub.span(f"step-{i}"):
                pass
        assert hub.flush(5)
    assert receiver.statuses() == [200]
    assert len(receiver.spans()) == 3
    (rejected,) = events(logs, "spans_rejected")
    assert rejected["log_level"] == "warning"
    assert rejected["rejected"] == 2
    assert rejected["spans"] == 5
    assert rejected["error"] == "2 spans exceed the attribute limit"
    assert rejected["rejected_total"] == 2
    assert only_exporter(hub).rejected_spans == 2
    assert (stats(hub).retried, stats(hub).failed) == (0, 0)


def test_a_partial_success_without_rejections_is_an_informational_warning(
    make_hub: MakeHub, receiver: OtlpReceiver
) -> None:
    receiver.inject(Fault.partial_success(0, "attribute values truncated to 4 KiB"))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    (advice,) = events(logs, "receiver_warning")
    assert advice["log_level"] == "info"
    assert advice["message"] == "attribute values truncated to 4 KiB"
    assert events(logs, "spans_rejected") == []
    assert only_exporter(hub).rejected_spans == 0


# -- 413 ---------------------------------------------------------------------------------------


def test_a_413_splits_the_batch_until_every_span_arrives(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.max_body_size = 20_000
    hub = make_hub(compression="none")
    for i in range(40):
        with hub.span(f"step-{i}", input="x" * 2_000):
            pass
    assert hub.flush(10)
    assert sorted(s.name for s in receiver.spans()) == sorted(f"step-{i}" for i in range(40))
    assert 413 in receiver.statuses()
    assert all(r.body_size <= 20_000 for r in receiver.requests() if r.status == 200)
    counters = stats(hub)
    assert (counters.exported, counters.failed, counters.retried) == (40, 0, 0)


def test_a_single_span_too_large_is_sent_once_truncated(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.max_body_size = 20_000
    hub = make_hub(compression="none")
    with capture_logs() as logs:
        with hub.span("huge", input="x" * 100_000, metadata={"blob": "y" * 50_000}):
            pass
        assert hub.flush(5)
    assert receiver.statuses() == [413, 200]
    attributes = receiver.span("huge").attributes
    assert attributes["input.value"] == "[obshub: truncated, 100002 bytes]"
    assert attributes["metadata"] == '{"obshub_truncated":"[obshub: truncated, 50011 bytes]"}'
    (truncated,) = events(logs, "span_truncated")
    assert truncated["span"] == "huge"
    assert stats(hub).exported == 1


def test_a_span_still_too_large_after_truncation_fails_without_looping(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.max_body_size = 100
    hub = make_hub(compression="none")
    with capture_logs() as logs:
        with hub.span("anything", input="x" * 10_000):
            pass
        assert not hub.flush(5)
    assert receiver.statuses() == [413, 413]
    (too_large,) = events(logs, "span_too_large")
    assert too_large["span"] == "anything"
    counters = stats(hub)
    assert (counters.failed, counters.retried) == (1, 0)


def test_a_split_batch_that_fails_part_way_is_resumed_not_resent(
    make_hub: MakeHub, receiver: OtlpReceiver, stats: Stats
) -> None:
    receiver.max_body_size = 12_000
    fitting = []

    def fail_the_second_part_once(request: IncomingRequest) -> Fault | None:
        # The batch is too large, so it is split; the first part is accepted and
        # the second meets a 503: only the second part needs sending again.
        if len(request.body) <= 12_000:
            fitting.append(request)
            if len(fitting) == 2:
                return Fault.error(503)
        return None

    receiver.fault_function = fail_the_second_part_once
    hub = make_hub(compression="none")
    for i in range(8):
        with hub.span(f"step-{i}", input="x" * 2_000):
            pass
    assert hub.flush(5)
    names = [s.name for s in receiver.spans()]
    assert sorted(names) == sorted(f"step-{i}" for i in range(8))
    assert receiver.statuses() == [413, 200, 503, 200]
    assert stats(hub).exported == 8


def _split_then_fail_once(receiver: OtlpReceiver, limit: int) -> None:
    """Bodies over ``limit`` get 413; the second body that fits gets a 503, once."""
    receiver.max_body_size = limit
    fitting: list[IncomingRequest] = []

    def fault(request: IncomingRequest) -> Fault | None:
        if len(request.body) <= limit:
            fitting.append(request)
            if len(fitting) == 2:
                return Fault.error(503)
        return None

    receiver.fault_function = fault


def test_a_retry_in_new_lists_of_the_same_events_skips_the_spans_already_delivered(
    make_exporter: Callable[..., OtlpExporter], receiver: OtlpReceiver
) -> None:
    # The contract: a retry hands back the same SpanEvent objects, whole or in
    # parts (the channel halves a batch to isolate what a backend refuses), not
    # necessarily the same list.
    _split_then_fail_once(receiver, 12_000)
    exporter = make_exporter(compression="none")
    batch = [obshub.testing.make_event(name=f"step-{i}", input="x" * 2_000) for i in range(8)]
    with pytest.raises(obshub.ExportError) as caught:
        exporter.export(list(batch))
    assert caught.value.retryable
    delivered = [s.name for s in receiver.spans()]
    assert len(delivered) == 4
    exporter.export(batch[:4])
    exporter.export(batch[4:])
    names = [s.name for s in receiver.spans()]
    assert sorted(names) == sorted(f"step-{i}" for i in range(8))


def test_the_exporter_remembers_delivered_events_only_while_someone_holds_them(
    make_exporter: Callable[..., OtlpExporter], receiver: OtlpReceiver
) -> None:
    # A channel that gives up on a batch (spooled, or counted failed) drops it;
    # the exporter's memory of what it had delivered must go with it.
    _split_then_fail_once(receiver, 12_000)
    exporter = make_exporter(compression="none")
    batch = [obshub.testing.make_event(name=f"step-{i}", input="x" * 2_000) for i in range(8)]
    failed = False
    try:
        exporter.export(batch)
    except obshub.ExportError:
        failed = True
    assert failed
    assert len(exporter._sent) == 4
    batch.clear()
    gc.collect()
    assert len(exporter._sent) == 0
