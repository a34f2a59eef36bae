"""What the webhook receives, and how failures reach obshub."""

from __future__ import annotations

from pathlib import Path

import pytest
from obshub_webhook import WebhookExporter

import obshub
from obshub.testing import HttpReceiver, make_score, make_trace, record_trace

TOKEN = "Bearer whk-test-7f3a9c2e"


@pytest.fixture
def exporter(receiver: HttpReceiver) -> WebhookExporter:
    return WebhookExporter(url=f"{receiver.url}/hook", headers={"Authorization": TOKEN})


def test_posts_each_batch_of_finished_spans_as_json(
    receiver: HttpReceiver, exporter: WebhookExporter
) -> None:
    exporter.export(make_trace())
    (request,) = receiver.wait_for_requests(1)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == TOKEN
    events = request.json()["events"]
    assert [e["span"]["name"] for e in events] == [
        "gpt-4o-mini",
        "lookup_order",
        "order-found",
        "support-agent",
    ]
    generation = events[0]["span"]
    assert generation["usage"]["input"] == 812
    assert generation["model"] == "gpt-4o-mini"


def test_posts_scores(receiver: HttpReceiver, exporter: WebhookExporter) -> None:
    exporter.export_scores([make_score(name="helpfulness", value=0.9)])
    (request,) = receiver.wait_for_requests(1)
    assert request.json()["scores"][0]["value"] == 0.9


def test_a_hub_sends_only_ended_spans(receiver: HttpReceiver, exporter: WebhookExporter) -> None:
    with obshub.Hub(exporters=[exporter], service_name="support-bot") as hub:
        record_trace(hub, score=False)
        assert hub.flush(timeout=5)
    kinds = {e["kind"] for r in receiver.requests() for e in r.json()["events"]}
    assert kinds == {"ended"}


def test_a_503_is_retryable_and_keeps_retry_after(
    receiver: HttpReceiver, exporter: WebhookExporter
) -> None:
    receiver.respond(503, headers={"Retry-After": "7"})
    with pytest.raises(obshub.ExportError) as caught:
        exporter.export(make_trace())
    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (
        True,
        7.0,
        503,
    )


def test_a_400_is_not_retried(receiver: HttpReceiver, exporter: WebhookExporter) -> None:
    receiver.respond(400, body="unknown field")
    with pytest.raises(obshub.ExportError) as caught:
        exporter.export(make_trace())
    assert caught.value.retryable is False
    assert "unknown field" in str(caught.value)


def test_header_values_echoed_by_the_server_are_scrubbed(receiver: HttpReceiver) -> None:
    exporter = WebhookExporter(url=f"{receiver.url}/hook", headers={"X-Token": "tok-5b8e1d"})
    receiver.respond(403, body="token tok-5b8e1d is revoked")
    with pytest.raises(obshub.ExportError) as caught:
        exporter.export(make_trace())
    assert "tok-5b8e1d" not in str(caught.value)
    assert "token *** is revoked" in str(caught.value)


def test_a_config_file_names_it_webhook(receiver: HttpReceiver, tmp_path: Path) -> None:
    config = tmp_path / "obshub.toml"
    config.write_text(
        f"""
[configs.default.exporters.hook]
type = "webhook"
url = "{receiver.url}/hook"
headers = {{ Authorization = "{TOKEN}" }}
realtime = true
"""
    )
    with obshub.Hub.from_config(config) as hub:
        (exporter,) = hub.exporters()
        assert isinstance(exporter, WebhookExporter)
        record_trace(hub, score=False)
        assert hub.flush(timeout=5)
    assert receiver.requests("/hook")


def test_a_header_that_is_not_a_string_is_a_config_error() -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        obshub.Hub.from_config(
            {
                "configs": {
                    "prod": {
                        "exporters": {
                            "hook": {
                                "type": "webhook",
                                "url": "https://example.com/hook",
                                "headers": {"X-Retries": 3},
                            }
                        }
                    }
                }
            }
        )
    assert caught.value.key == "configs.prod.exporters.hook.headers.X-Retries"


def test_check_reports_what_the_server_answered(
    receiver: HttpReceiver, exporter: WebhookExporter
) -> None:
    assert exporter.check().ok
    receiver.respond(401)
    result = exporter.check()
    assert not result.ok
    assert "HTTP 401" in result.message
