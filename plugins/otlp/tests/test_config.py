"""Building the exporter: the entry point, config files, OTEL_* variables, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from obshub_otlp import OtlpExporter
from obshub_otlp.settings import DEFAULT_ENDPOINT, parse_key_values
from obshub_otlp.testing import OtlpReceiver
from structlog.testing import capture_logs

import obshub
from obshub._plugins import get_registry

FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.05}


def otlp_config(receiver: OtlpReceiver, **settings: Any) -> dict[str, Any]:
    table = {"type": "otlp", "endpoint": receiver.url, "retry": FAST_RETRY, **settings}
    return {"configs": {"prod": {"service_name": "support-bot", "exporters": {"collector": table}}}}


# -- the plugin ------------------------------------------------------------------------------


def test_the_plugin_is_found_through_its_entry_point() -> None:
    registry = get_registry(reload=True)
    assert registry.exporter_class("otlp") is OtlpExporter
    (info,) = [p for p in registry.plugins() if p.name == "otlp"]
    assert info.distribution == "obshub-otlp"
    assert info.exporters == ("otlp",)


def test_a_config_dict_with_type_otlp_delivers_spans(receiver: OtlpReceiver) -> None:
    hub = obshub.Hub.from_config(otlp_config(receiver, realtime=True, protocol="http/json"))
    try:
        (exporter,) = hub.exporters()
        assert isinstance(exporter, OtlpExporter)
        assert exporter.instance_name == "collector"
        with hub.span("from-config"):
            pass
        receiver.wait_for_spans(1)
    finally:
        hub.shutdown(timeout=2)
    span = receiver.span("from-config")
    assert span.resource["service.name"] == "support-bot"
    assert span.protocol == "http/json"


def test_a_toml_file_takes_headers_and_resource_attributes_as_tables(
    receiver: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTLP_TOKEN", "t0ken")
    path = tmp_path / "obshub.toml"
    path.write_text(
        """
[configs.prod]
service_name = "support-bot"

[configs.prod.exporters.collector]
type = "otlp"
endpoint = "${OTLP_ENDPOINT}"
headers = { authorization = "Bearer ${OTLP_TOKEN}", "x-scope-orgid" = "acme" }
compression = "none"
timeout = 5
resource_attributes = { "deployment.environment.name" = "production" }
""",
        encoding="utf-8",
    )
    hub = obshub.Hub.from_config(path)
    try:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    (request,) = receiver.requests()
    assert request.headers["x-scope-orgid"] == "acme"
    assert request.headers["authorization"] == "Bearer ***"
    assert "content-encoding" not in request.headers
    assert receiver.span("agent").resource["deployment.environment.name"] == "production"


def test_an_unknown_key_names_its_full_path(receiver: OtlpReceiver) -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        obshub.Hub.from_config(otlp_config(receiver, colour="blue"))
    assert caught.value.key == "configs.prod.exporters.collector.colour"
    assert "endpoint" in caught.value.problem


def test_grpc_is_refused_with_a_hint(receiver: OtlpReceiver) -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        obshub.Hub.from_config(otlp_config(receiver, protocol="grpc"))
    assert caught.value.key == "configs.prod.exporters.collector.protocol"
    with pytest.raises(obshub.ConfigError, match=r"use http/protobuf and port 4318"):
        OtlpExporter(protocol="grpc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"endpoint": "collector:4318"}, "endpoint"),
        ({"endpoint": "ftp://collector/v1/traces"}, "endpoint"),
        ({"timeout": 0}, "timeout"),
        ({"compression": "zstd"}, "compression"),
        ({"resource_attributes": {"owner": {"team": "ai"}}}, "resource_attributes.owner"),
        ({"include_content": "yes"}, "include_content"),
    ],
)
def test_invalid_settings_are_config_errors(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        OtlpExporter(**settings)
    assert caught.value.key == key


def test_an_invalid_endpoint_is_not_echoed() -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        OtlpExporter(endpoint="collector.internal?api_key=abc123")
    assert "abc123" not in str(caught.value)


# -- the endpoint ----------------------------------------------------------------------------


def test_the_default_endpoint_is_a_local_collector() -> None:
    exporter = OtlpExporter()
    assert exporter.endpoint == DEFAULT_ENDPOINT == "http://localhost:4318/v1/traces"
    assert exporter.sources["endpoint"] == "default"


def test_the_traces_endpoint_variable_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://otlp.example.com/custom")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318")
    exporter = OtlpExporter()
    assert exporter.endpoint == "https://otlp.example.com/custom"
    assert exporter.sources["endpoint"] == "env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


@pytest.mark.parametrize(
    ("base", "endpoint"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://gateway.example.com/otlp/", "https://gateway.example.com/otlp/v1/traces"),
    ],
)
def test_the_generic_endpoint_variable_gets_v1_traces_appended(
    monkeypatch: pytest.MonkeyPatch, base: str, endpoint: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    assert OtlpExporter().endpoint == endpoint


def test_an_explicit_endpoint_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://from-env:4318/v1/traces")
    exporter = OtlpExporter(endpoint="http://explicit:4318/v1/traces")
    assert exporter.endpoint == "http://explicit:4318/v1/traces"


def test_spans_reach_a_receiver_named_only_by_otel_exporter_otlp_endpoint(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url)
    hub = obshub.Hub(exporters=[OtlpExporter()], service_name="support-bot")
    try:
        with hub.span("agent"):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    assert receiver.span("agent").name == "agent"


def test_an_endpoint_without_a_path_gets_a_warning() -> None:
    with capture_logs() as logs:
        OtlpExporter(endpoint="http://collector:4318")
    (warning,) = logs
    assert warning["event"] == "endpoint_without_path"
    assert "/v1/traces" in warning["hint"]


def test_user_info_and_query_never_show_in_the_repr() -> None:
    exporter = OtlpExporter(endpoint="https://user:pw@otlp.example.com/v1/traces?key=k3y")
    assert "pw" not in repr(exporter)
    assert "k3y" not in repr(exporter)
    assert "https://user:***@otlp.example.com/v1/traces?key=***" in repr(exporter)


# -- the other variables ---------------------------------------------------------------------


def test_protocol_compression_and_timeout_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    exporter = OtlpExporter()
    assert exporter.protocol == "http/json"
    assert exporter.compression == "none"
    assert exporter.timeout == 2.5
    assert OtlpExporter(protocol="http/protobuf", timeout=3).protocol == "http/protobuf"


def test_grpc_in_the_environment_falls_back_to_http_protobuf_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")
    with capture_logs() as logs:
        exporter = OtlpExporter()
    assert exporter.protocol == "http/protobuf"
    assert exporter.timeout == 10.0
    assert [(e["event"], e["variable"]) for e in logs] == [
        ("env_setting_ignored", "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ("env_setting_ignored", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ]


def test_key_value_lists_are_parsed_as_the_specification_says() -> None:
    pairs, malformed = parse_key_values(" a = 1 ,, b=x%3Dy%2Cz ,=nokey, novalue ,c=")
    assert pairs == {"a": "1", "b": "x=y,z", "c": ""}
    assert malformed == [4, 5]
