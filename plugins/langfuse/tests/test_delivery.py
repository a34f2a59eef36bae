"""Realtime and batch delivery, and every way a send can fail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from obshub_langfuse.testing import Fault, LangfuseStandIn
from structlog.testing import capture_logs

import obshub
from obshub.testing import wait_for

MakeHub = Callable[..., obshub.Hub]
Stats = Callable[[obshub.Hub], obshub.ChannelStats]


def statuses(server: LangfuseStandIn, path: str = "traces") -> list[int | None]:
    return [r.status for r in server.requests(path)]


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# -- realtime and batch -----------------------------------------------------------------------


def test_realtime_sends_each_span_as_soon_as_it_ends_without_a_flush(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub(realtime=True)
    with hub.span("first"):
        pass
    server.wait_for_observations(1)
    with hub.span("second"):
        pass
    server.wait_for_observations(2)
    assert [r.spans for r in server.requests("traces")] == [1, 1]


def test_batch_mode_holds_spans_until_flush_then_sends_one_request(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    hub = make_hub(realtime=False)
    for i in range(20):
        with hub.span(f"step-{i}"):
            pass
    assert server.requests() == []
    assert hub.flush(5)
    assert [r.spans for r in server.requests("traces")] == [20]
    assert stats(hub).exported == 20


def test_batch_mode_sends_when_the_batch_is_full(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub(batch={"max_size": 5, "interval": 60})
    for i in range(10):
        with hub.span(f"step-{i}"):
            pass
    server.wait_for_requests(2, "traces")
    assert [r.spans for r in server.requests("traces")] == [5, 5]


def test_requests_are_gzipped_protobuf_with_langfuse_headers(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with hub.span("one"):
        pass
    assert hub.flush(5)
    (request,) = server.requests("traces")
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-langfuse-ingestion-version"] == "4"
    assert request.headers["authorization"] == "Basic ***"
    agent = request.headers["user-agent"]
    assert agent.startswith(f"obshub/{obshub.__version__} ")
    assert "obshub-langfuse/" in agent


def test_compression_can_be_turned_off(make_hub: MakeHub, server: LangfuseStandIn) -> None:
    hub = make_hub(compression="none")
    with hub.span("one"):
        pass
    assert hub.flush(5)
    (request,) = server.requests("traces")
    assert "content-encoding" not in request.headers
    assert server.observation("one").type == "SPAN"


# -- retryable failures -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_retried_and_the_span_delivered_once(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats, status: int
) -> None:
    server.inject("traces", Fault.error(status))
    hub = make_hub()
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert statuses(server) == [status, 200]
    assert len(server.observations()) == 1
    counters = stats(hub)
    assert (counters.exported, counters.retried, counters.failed) == (1, 1, 0)


def test_429_retry_after_is_honoured(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("traces", Fault.error(429, retry_after=0.2))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    first, second = server.requests("traces")
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 0.15
    (retry,) = events(logs, "export_retry")
    assert retry["wait_s"] == 0.2
    assert retry["status"] == 429
    assert stats(hub).failed == 0


def test_a_reset_connection_is_retried(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("traces", Fault.connection_reset())
    hub = make_hub()
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert statuses(server) == [None, 200]
    assert len(server.observations()) == 1
    assert stats(hub).retried == 1


def test_a_server_slower_than_the_timeout_is_a_retryable_timeout(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("traces", Fault.slow(2.0))
    hub = make_hub(timeout=0.2)
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    (retry,) = events(logs, "export_retry")
    assert "timed out after 0.2 s" in retry["error"]
    assert stats(hub).retried == 1
    assert stats(hub).exported == 1
    assert server.observation("agent").name == "agent"


# -- non-retryable failures -------------------------------------------------------------------


def test_a_400_is_not_retried_and_counted_rejected(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("traces", Fault.error(400))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("agent"):
            pass
        assert not hub.flush(5)
    assert statuses(server) == [400]
    counters = stats(hub)
    assert (counters.exported, counters.retried, counters.failed, counters.rejected) == (0, 0, 0, 1)
    (rejected,) = events(logs, "export_rejected")
    assert rejected["status"] == 400


def test_a_401_pauses_sends_for_a_cooldown_then_probes_and_resumes(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("traces", Fault.error(401))
    hub = make_hub(auth_cooldown=0.3)
    with capture_logs() as logs:
        with hub.span("rejected"):
            pass
        assert not hub.flush(0)  # sends the batch; returns at once
        server.wait_for_requests(1, "traces")
        wait_for(lambda: stats(hub).paused)  # held through the cooldown, not failed
        assert stats(hub).failed == 0
        with hub.span("while-paused"):
            pass
        assert hub.flush(5)  # the probe (the held batch) succeeds, then the rest
    assert statuses(server) == [401, 200, 200]
    assert sorted(o.name for o in server.observations()) == ["rejected", "while-paused"]
    (paused,) = events(logs, "export_paused")
    assert paused["status"] == 401
    assert paused["pause_s"] == 0.3
    assert paused["log_level"] == "error"
    assert "rejected the API keys" in paused["error"]
    assert [e["event"] for e in logs if e["event"] == "export_resumed"] == ["export_resumed"]
    counters = stats(hub)
    assert (counters.failed, counters.retried, counters.exported) == (0, 0, 2)
    assert not counters.paused


def test_repeated_401s_make_the_cooldown_grow(make_hub: MakeHub, server: LangfuseStandIn) -> None:
    server.inject("traces", Fault.error(401), Fault.error(403))
    hub = make_hub(auth_cooldown=0.05)
    with capture_logs() as logs:
        with hub.span("first"):
            pass
        assert hub.flush(5)
    pauses = [(e["status"], e["pause_s"]) for e in events(logs, "export_paused")]
    assert pauses == [(401, 0.05), (403, 0.1)]
    assert statuses(server) == [401, 403, 200]


def test_wrong_keys_hold_sends_without_hammering_the_server(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    hub = make_hub(secret_key="sk-lf-wrong")
    for name in ("a", "b", "c"):
        with hub.span(name):
            pass
    assert not hub.flush(0)  # sends the batch; returns at once
    server.wait_for_requests(1, "traces")
    wait_for(lambda: stats(hub).paused)  # one request, then a 30 s cooldown
    assert statuses(server) == [401]
    counters = stats(hub)
    assert counters.failed == 0
    assert counters.queued == 3


# -- 413 -----------------------------------------------------------------------------------------


def test_a_413_splits_the_batch_until_every_span_arrives(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.max_body_size = 20_000
    hub = make_hub(compression="none")
    for i in range(40):
        with hub.span(f"step-{i}", input="x" * 2_000):
            pass
    assert hub.flush(10)
    assert len(server.observations()) == 40
    codes = statuses(server)
    assert 413 in codes
    assert all(r.body_size <= 20_000 for r in server.requests("traces") if r.status == 200)
    counters = stats(hub)
    assert (counters.exported, counters.failed, counters.retried) == (40, 0, 0)


def test_a_single_span_too_large_is_sent_once_truncated(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.max_body_size = 20_000
    hub = make_hub(compression="none")
    with capture_logs() as logs:
        with hub.span("huge", input="x" * 100_000, metadata={"blob": "y" * 50_000, "small": 1}):
            pass
        assert hub.flush(5)
    assert statuses(server) == [413, 200]
    obs = server.observation("huge")
    assert obs.input == "[obshub: truncated, 100002 bytes]"
    assert obs.metadata == {"obshub_truncated": "[obshub: truncated, 50021 bytes]"}
    (truncated,) = events(logs, "span_truncated")
    assert truncated["span"] == "huge"
    assert stats(hub).exported == 1


def test_a_span_still_too_large_after_truncation_fails_without_looping(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.max_body_size = 100
    hub = make_hub(compression="none")
    with hub.span("anything", input="x" * 10_000):
        pass
    assert not hub.flush(5)
    assert statuses(server) == [413, 413]
    counters = stats(hub)
    assert (counters.failed, counters.retried) == (1, 0)
