"""Headers: sent as configured, read from the environment, and never shown anywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.testing import Fault, OtlpReceiver
from structlog.testing import capture_logs

import obshub

MakeHub = Callable[..., obshub.Hub]
MakeExporter = Callable[..., OtlpExporter]

TOKEN = "s3cret-t0ken-9f1c"
HONEYCOMB_KEY = "hcaik_01hq9z7kx4"
HEADERS = {"authorization": f"Bearer {TOKEN}", "x-honeycomb-team": HONEYCOMB_KEY}


@pytest.fixture
def guarded() -> Iterator[OtlpReceiver]:
    """A receiver that wants both secret headers, like a collector with an authenticator."""
    with OtlpReceiver(required_headers=HEADERS) as server:
        yield server
    assert not server.server_errors()


def no_secret_in(text: str) -> bool:
    return TOKEN not in text and HONEYCOMB_KEY not in text


def hub_for(receiver: OtlpReceiver, **kwargs: Any) -> obshub.Hub:
    settings: dict[str, Any] = {
        "endpoint": receiver.url,
        "headers": HEADERS,
        "retry": {"initial_backoff": 0.01, "max_backoff": 0.05, "max_attempts": 2},
    }
    settings.update(kwargs)
    return obshub.Hub(exporters=[OtlpExporter(**settings)], service_name="support-bot")


def test_configured_headers_are_sent_and_recorded_redacted(guarded: OtlpReceiver) -> None:
    hub = hub_for(guarded)
    try:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    (request,) = guarded.requests()
    assert request.status == 200
    assert request.headers["authorization"] == "Bearer ***"
    assert guarded.span("agent").name == "agent"


def test_the_receiver_keeps_header_values_when_told_not_to_redact() -> None:
    with OtlpReceiver(redact_headers=()) as server:
        hub = hub_for(server)
        try:
            with hub.span("agent"):
                pass
            assert hub.flush(5)
        finally:
            hub.shutdown(timeout=2)
        headers = server.requests()[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-honeycomb-team"] == HONEYCOMB_KEY


def test_header_values_are_not_in_the_repr(receiver: OtlpReceiver) -> None:
    exporter = OtlpExporter(endpoint=receiver.url, headers=HEADERS)
    shown = repr(exporter)
    assert no_secret_in(shown)
    assert "authorization" in shown
    assert exporter.header_names == ("authorization", "x-honeycomb-team")
    assert no_secret_in(repr(exporter._settings))


def test_header_values_echoed_by_the_receiver_are_scrubbed_from_logs(
    receiver: OtlpReceiver,
) -> None:
    echo = f"bad key {HONEYCOMB_KEY} with Bearer {TOKEN}"
    receiver.inject(Fault.error(503, message=echo), Fault.error(400, message=echo))
    hub = hub_for(receiver)
    try:
        with capture_logs() as logs:
            with hub.span("agent"):
                pass
            assert not hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    names = [entry["event"] for entry in logs]
    assert names == ["export_retry", "export_rejected"]
    for entry in logs:
        assert no_secret_in(repr(entry))
        assert "bad key *** with ***" in entry["error"]


def test_a_rejected_header_pauses_sends_and_is_not_echoed(guarded: OtlpReceiver) -> None:
    wrong = {"authorization": "Bearer wrong-value", "x-honeycomb-team": "wrong-team-key"}
    hub = hub_for(guarded, headers=wrong, auth_cooldown=30)
    try:
        with capture_logs() as logs:
            with hub.span("agent"):
                pass
            assert not hub.flush(0.2)
    finally:
        hub.shutdown(timeout=0.2)  # the held batch is given up (no spool): counted failed
    assert guarded.statuses() == [401]  # one request, then the cooldown
    (paused,) = [entry for entry in logs if entry["event"] == "export_paused"]
    assert paused["status"] == 401
    assert "missing or wrong authorization header" in paused["error"]
    assert "wrong-value" not in repr(logs)
    assert "wrong-team-key" not in repr(logs)


def test_check_output_never_shows_header_values(guarded: OtlpReceiver) -> None:
    ok = OtlpExporter(endpoint=guarded.url, headers=HEADERS).check()
    assert ok.ok
    refused = OtlpExporter(endpoint=guarded.url, headers={"authorization": "Bearer nope"}).check()
    assert not refused.ok
    assert refused.details["status"] == 401
    for result in (ok, refused):
        assert no_secret_in(result.message + repr(result.details))
        assert "nope" not in result.message


def test_headers_come_from_otel_exporter_otlp_headers_url_decoded(
    guarded: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_HEADERS",
        f"Authorization=Bearer%20{TOKEN} , x-honeycomb-team={HONEYCOMB_KEY}",
    )
    hub = hub_for(guarded, headers=None)
    try:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    assert guarded.statuses() == [200]


def test_traces_headers_win_over_generic_ones_and_the_config_wins_over_both(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=generic,b=generic,c=generic")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=traces,c=traces")
    exporter = OtlpExporter(endpoint=receiver.url, headers={"c": "config"})
    assert dict(exporter._settings.headers) == {"a": "generic", "b": "traces", "c": "config"}
    assert exporter.sources["headers"] == (
        "env OTEL_EXPORTER_OTLP_HEADERS + env OTEL_EXPORTER_OTLP_TRACES_HEADERS + argument"
    )


def test_a_malformed_env_header_is_skipped_with_a_warning_that_hides_it(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"{TOKEN},x-tenant=acme,bad name=x")
    with capture_logs() as logs:
        exporter = OtlpExporter(endpoint=receiver.url)
    assert dict(exporter._settings.headers) == {"x-tenant": "acme"}
    assert [entry["event"] for entry in logs] == ["env_headers_ignored", "env_header_ignored"]
    assert logs[0]["positions"] == [1]
    assert logs[1]["reason"] == "not a valid header name"
    assert no_secret_in(repr(logs))


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Content-Type": "text/plain"}, "set by the exporter from protocol and compression"),
        ({"x-token": f"{TOKEN}\r\nx-injected: 1"}, "the value holds a line break or NUL"),
        ({"bad name": "x"}, "not a valid header name"),
    ],
)
def test_invalid_configured_headers_are_config_errors_that_hide_values(
    receiver: OtlpReceiver, headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        OtlpExporter(endpoint=receiver.url, headers=headers)
    assert caught.value.problem == problem
    assert caught.value.key == f"headers.{next(iter(headers))}"
    assert TOKEN not in str(caught.value)
