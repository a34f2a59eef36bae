"""WebhookExporter passes the exporter contract battery of obshub.testing."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from obshub_webhook import WebhookExporter

import obshub
from obshub.testing import ExporterContract, HttpReceiver, unreachable_url


class TestWebhookContract(ExporterContract):
    exporter_class = WebhookExporter
    config: ClassVar[dict[str, Any]] = {
        "url": "http://127.0.0.1:9/replaced-by-backend_settings",
        "headers": {"Authorization": "Bearer whk-test-7f3a9c2e"},
        "timeout": 2.0,
    }
    installed = True  # the entry point in pyproject.toml registers it
    expect_retryable = True  # connection refused: the receiver may come back

    @pytest.fixture
    def backend(self, receiver: HttpReceiver) -> HttpReceiver:
        return receiver

    def backend_settings(self, backend: HttpReceiver) -> dict[str, Any]:
        return {"url": f"{backend.url}/hook"}

    def failing_config(self, backend: HttpReceiver) -> dict[str, Any]:
        return {"url": unreachable_url("/hook")}

    def received(self, backend: HttpReceiver, exporter: obshub.Exporter) -> int:
        events = [e for r in backend.requests("/hook") for e in r.json().get("events", [])]
        return len({event["span"]["span_id"] for event in events})
