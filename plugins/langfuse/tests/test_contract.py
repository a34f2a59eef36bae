"""``LangfuseExporter`` passes obshub's exporter contract battery against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import LangfuseStandIn

import obshub
from obshub.testing import ExporterContract, unreachable_url

#: A distinctive secret, so the battery can look for it in every repr, error and log line.
SECRET_KEY = "sk-lf-contract-7c1e9a4f"


@pytest.fixture(scope="module")
def standin() -> Iterator[LangfuseStandIn]:
    """One stand-in for the module (each one takes a moment to stop); cleared per test."""
    with LangfuseStandIn(public_key="pk-lf-contract", secret_key=SECRET_KEY) as server:
        yield server


class TestLangfuseContract(ExporterContract):
    exporter_class = LangfuseExporter
    config: ClassVar[dict[str, Any]] = {
        "public_key": "pk-lf-contract",
        "secret_key": SECRET_KEY,
        "options": {"environment": "contract", "release": "9f1c2ab"},
        "retry": {"initial_backoff": 0.01, "max_backoff": 0.05},
    }
    installed = True
    # Connection refused: the backend may come back, so the channel retries.
    expect_retryable = True

    @pytest.fixture
    def backend(self, standin: LangfuseStandIn) -> Iterator[LangfuseStandIn]:
        standin.clear()
        yield standin
        assert not standin.server_errors()

    def backend_settings(self, backend: LangfuseStandIn) -> dict[str, Any]:
        return {"base_url": backend.url}

    def failing_config(self, backend: LangfuseStandIn) -> dict[str, Any]:
        return {"base_url": unreachable_url()}

    def received(self, backend: LangfuseStandIn, exporter: obshub.Exporter) -> int:
        return len(backend.observations())


class TestLangfuseRejectedKeysContract(TestLangfuseContract):
    """The same battery when Langfuse rejects the keys: a 401 pauses sends, it is not retried."""

    expect_retryable = False
    expect_pause = True

    def failing_config(self, backend: LangfuseStandIn) -> dict[str, Any]:
        return {"secret_key": "sk-lf-wrong-5d2b8e71"}
