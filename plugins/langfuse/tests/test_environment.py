"""The Langfuse environment: normalised so Langfuse does not silently replace it."""

from __future__ import annotations

from collections.abc import Callable

from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import LangfuseStandIn
from structlog.testing import capture_logs

import obshub

MakeHub = Callable[..., obshub.Hub]


def test_an_invalid_environment_is_normalised_with_one_warning(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    with capture_logs() as logs:
        hub = make_hub(options={"environment": "Production EU"})
    (warning,) = logs
    assert warning["event"] == "environment_normalised"
    assert warning["log_level"] == "warning"
    assert (warning["given"], warning["environment"]) == ("Production EU", "production-eu")
    with hub.span("agent"):
        pass
    assert hub.flush(5)
    assert server.observation("agent").environment == "production-eu"


def test_a_valid_environment_is_kept_silently() -> None:
    with capture_logs() as logs:
        exporter = LangfuseExporter(
            public_key="pk", secret_key="sk", options={"environment": "prod-eu_2"}
        )
    assert logs == []
    assert exporter.trace_options.environment == "prod-eu_2"


def test_a_long_environment_is_cut_to_40_characters() -> None:
    with capture_logs():
        exporter = LangfuseExporter(
            public_key="pk", secret_key="sk", options={"environment": "e" * 60}
        )
    assert exporter.trace_options.environment == "e" * 40
