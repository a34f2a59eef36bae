"""``OtlpExporter`` passes obshub's exporter contract battery against the local receiver."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.testing import OtlpReceiver

import obshub
from obshub.testing import ExporterContract, unreachable_url

#: Distinctive header values, so the battery can look for them in every repr, error and log.
HEADERS = {"authorization": "Bearer otlp-contract-4be1c9", "x-api-key": "key-contract-77d0e2"}


class TestOtlpContract(ExporterContract):
    exporter_class = OtlpExporter
    config: ClassVar[Mapping[str, Any]] = {
        "headers": HEADERS,
        "resource_attributes": {"deployment.environment.name": "contract"},
        "retry": {"initial_backoff": 0.01, "max_backoff": 0.05},
    }
    installed = True
    # Connection refused: the receiver may come back, so the channel retries.
    expect_retryable = True

    @pytest.fixture
    def backend(self) -> Iterator[OtlpReceiver]:
        with OtlpReceiver(required_headers=HEADERS) as receiver:
            yield receiver
        assert not receiver.server_errors()

    def backend_settings(self, backend: OtlpReceiver) -> dict[str, Any]:
        return {"endpoint": backend.url}

    def failing_config(self, backend: OtlpReceiver) -> dict[str, Any]:
        return {"endpoint": unreachable_url("/v1/traces")}

    def received(self, backend: OtlpReceiver, exporter: obshub.Exporter) -> int:
        return len({span.span_id for span in backend.spans()})


class TestOtlpRefusedCredentialsContract(TestOtlpContract):
    """The same battery when the receiver refuses the headers: a 401 pauses sends."""

    expect_retryable = False
    expect_pause = True

    def failing_config(self, backend: OtlpReceiver) -> dict[str, Any]:
        return {"headers": {"authorization": "Bearer otlp-wrong-3f8a61"}}
