"""Building the exporter: plugin discovery, settings, environment, missing keys, secrets."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import LangfuseStandIn
from structlog.testing import capture_logs

import obshub
from obshub import ExportError
from obshub._plugins import get_registry
from obshub.testing import make_score, make_trace, wait_for

MakeHub = Callable[..., obshub.Hub]
Stats = Callable[[obshub.Hub], obshub.ChannelStats]

FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.05}


def langfuse_config(server: LangfuseStandIn, **settings: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "type": "langfuse",
        "public_key": server.public_key,
        "secret_key": server.secret_key,
        "base_url": server.url,
        "retry": FAST_RETRY,
        **settings,
    }
    return {"configs": {"prod": {"service_name": "support-bot", "exporters": {"lf": table}}}}


def test_the_plugin_is_found_through_its_entry_point() -> None:
    registry = get_registry(reload=True)
    assert registry.exporter_class("langfuse") is LangfuseExporter
    (info,) = [p for p in registry.plugins() if p.name == "langfuse"]
    assert info.distribution == "obshub-langfuse"
    assert info.exporters == ("langfuse",)


def test_a_config_dict_with_type_langfuse_delivers_spans(server: LangfuseStandIn) -> None:
    config = langfuse_config(server, realtime=True, options={"environment": "production"})
    hub = obshub.Hub.from_config(config)
    try:
        (exporter,) = hub.exporters()
        assert isinstance(exporter, LangfuseExporter)
        assert exporter.instance_name == "lf"
        with hub.span("from-config"):
            pass
        server.wait_for_observations(1)
        assert server.observation("from-config").environment == "production"
    finally:
        hub.shutdown(timeout=2)


def test_a_toml_file_reads_keys_from_the_environment(
    server: LangfuseStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", server.public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", server.secret_key)
    monkeypatch.setenv("LANGFUSE_BASE_URL", server.url)
    path = tmp_path / "obshub.toml"
    path.write_text(
        """
default = "prod"

[configs.prod]
service_name = "support-bot"

[configs.prod.exporters.langfuse]
type = "langfuse"
realtime = false
log_level = "info"
public_key = "${LANGFUSE_PUBLIC_KEY}"
secret_key = "${LANGFUSE_SECRET_KEY}"
base_url = "${LANGFUSE_BASE_URL:-https://cloud.langfuse.com}"
options = { environment = "production", version = "1.4.2", release = "9f1c2ab" }
timeout = 5
compression = "gzip"
""",
        encoding="utf-8",
    )
    hub = obshub.Hub.from_config(path)
    try:
        with hub.span("from-toml"):
            pass
        assert hub.flush(5)
        obs = server.observation("from-toml")
        assert (obs.environment, obs.version, obs.release) == ("production", "1.4.2", "9f1c2ab")
    finally:
        hub.shutdown(timeout=2)


@pytest.mark.parametrize(
    ("settings", "key", "problem"),
    [
        ({"options": {"colour": "red"}}, "options.colour", "unknown key"),
        ({"compression": "brotli"}, "compression", "'gzip'"),
        ({"timeout": 0}, "timeout", "> 0"),
        ({"base_url": "cloud.langfuse.com"}, "base_url", "http:// or https://"),
        ({"secret_key": 42}, "secret_key", "must be a string"),
        ({"region": "eu"}, "region", "unknown key"),
    ],
)
def test_config_mistakes_name_the_full_key_path(
    server: LangfuseStandIn, settings: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        obshub.Hub.from_config(langfuse_config(server, **settings))
    assert caught.value.key == f"configs.prod.exporters.lf.{key}"
    assert problem in caught.value.problem


def test_keys_and_host_fall_back_to_environment_variables(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", server.public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", server.secret_key)
    monkeypatch.setenv("LANGFUSE_HOST", server.url + "/")
    monkeypatch.setenv("LANGFUSE_TRACING_ENVIRONMENT", "ci")
    monkeypatch.setenv("LANGFUSE_RELEASE", "abc123")
    exporter = LangfuseExporter(retry=FAST_RETRY)
    assert exporter.base_url == server.url
    assert exporter.disabled_reason is None
    hub = obshub.Hub(exporters=[exporter])
    try:
        with hub.span("env-configured"):
            pass
        assert hub.flush(5)
        obs = server.observation("env-configured")
        assert (obs.environment, obs.release) == ("ci", "abc123")
    finally:
        hub.shutdown(timeout=2)


def test_langfuse_base_url_wins_over_langfuse_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_BASE_URL", "https://us.cloud.langfuse.com/")
    monkeypatch.setenv("LANGFUSE_HOST", "https://other.example")
    assert LangfuseExporter(public_key="pk", secret_key="sk").base_url == (
        "https://us.cloud.langfuse.com"
    )


def test_arguments_win_over_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-from-env")
    monkeypatch.setenv("LANGFUSE_BASE_URL", "https://env.example")
    exporter = LangfuseExporter(
        public_key="pk-arg", secret_key="sk", base_url="https://arg.example"
    )
    assert (exporter.public_key, exporter.base_url) == ("pk-arg", "https://arg.example")


def test_the_default_base_url_is_langfuse_cloud() -> None:
    assert LangfuseExporter(public_key="pk", secret_key="sk").base_url == (
        "https://cloud.langfuse.com"
    )


# -- missing credentials -----------------------------------------------------------------------


def test_missing_keys_disable_the_exporter_with_one_warning(server: LangfuseStandIn) -> None:
    with capture_logs() as logs:
        exporter = LangfuseExporter(base_url=server.url)
    (warning,) = logs
    assert warning["event"] == "credentials_missing"
    assert warning["log_level"] == "warning"
    assert warning["missing"] == ["public_key", "secret_key"]
    assert warning["looked_in"] == {
        "public_key": ["argument public_key", "env LANGFUSE_PUBLIC_KEY"],
        "secret_key": ["argument secret_key", "env LANGFUSE_SECRET_KEY"],
    }
    hub = obshub.Hub(exporters=[exporter])
    try:
        with capture_logs() as later:
            with hub.span("still-works") as span:
                span.update(output="the application carries on")
            assert hub.flush(5)
        assert later == []
        assert server.requests() == []
        assert hub.stats() == {}  # disabled: no channel, nothing queued or counted
    finally:
        hub.shutdown(timeout=2)


def test_one_missing_key_is_named_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
    with capture_logs() as logs:
        exporter = LangfuseExporter()
    (warning,) = logs
    assert warning["missing"] == ["secret_key"]
    result = exporter.check()
    assert not result.ok
    assert "secret_key" in result.message
    assert "LANGFUSE_SECRET_KEY" in result.message
    assert "public_key" not in result.message


def test_an_empty_key_counts_as_missing() -> None:
    with capture_logs() as logs:
        exporter = LangfuseExporter(public_key="", secret_key="sk")
    assert exporter.disabled_reason is not None
    assert logs[0]["missing"] == ["public_key"]


# -- secrets ------------------------------------------------------------------------------------


SECRET = "sk-lf-TOPSECRET-9f8e7d"


def test_the_secret_key_never_appears_in_repr_logs_or_errors(
    server: LangfuseStandIn, obshub_capture_logs: list[dict[str, Any]]
) -> None:
    token = base64.b64encode(f"{server.public_key}:{SECRET}".encode()).decode()
    exporter = LangfuseExporter(
        public_key=server.public_key,
        secret_key=SECRET,
        base_url=server.url,
        retry={"max_attempts": 2, "initial_backoff": 0.01},
        realtime=True,
    )
    seen: list[str] = [repr(exporter), str(exporter), repr(vars(exporter))]
    hub = obshub.Hub(exporters=[exporter])
    try:
        with hub.span("rejected"):
            pass
        # The wrong key is refused (401) and the channel pauses: no flush waits it out.
        (refused,) = server.wait_for_requests(1, "traces")
        assert refused.status == 401
        paused = wait_for(
            lambda: [e for e in obshub_capture_logs if e["event"] == "export_paused"],
            message="the refused export was not logged as export_paused",
        )
        assert paused[0]["status"] == 401
        (stats,) = hub.stats().values()
        assert stats.state == "paused"
        # Each call that talks to Langfuse fails with an error that names no secret.
        for call in (
            lambda: exporter.export(make_trace(kinds=exporter.event_kinds)),
            lambda: exporter.export_scores([make_score()]),
        ):
            with pytest.raises(ExportError) as failed:
                call()
            assert failed.value.status == 401
            seen += [str(failed.value), repr(failed.value)]
        checked = exporter.check()
        assert not checked.ok
        seen += [checked.message, repr(checked)]
    finally:
        hub.shutdown(timeout=2)
    seen.extend(repr(entry) for entry in obshub_capture_logs)
    for bad_settings in ({"compression": SECRET}, {"base_url": SECRET}):
        with pytest.raises(obshub.ConfigError) as caught:
            LangfuseExporter(public_key="pk", secret_key=SECRET, **bad_settings)
        seen.append(str(caught.value))
    for text in seen:
        assert SECRET not in text
        assert token not in text


def test_keys_read_from_files_with_a_trailing_newline_still_work(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", server.secret_key + "\n")
    exporter = LangfuseExporter(
        public_key=f" {server.public_key} ", base_url=server.url, retry=FAST_RETRY
    )
    assert exporter.check().ok


def test_a_blank_environment_variable_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-1")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "   ")
    with capture_logs() as logs:
        exporter = LangfuseExporter()
    assert exporter.disabled_reason is not None
    assert logs[0]["missing"] == ["secret_key"]


def test_an_unset_variable_with_an_empty_default_disables_only_this_exporter(
    server: LangfuseStandIn,
) -> None:
    config = langfuse_config(server, secret_key="${LANGFUSE_SECRET_KEY:-}")
    with capture_logs() as logs:
        hub = obshub.Hub.from_config(config)
    try:
        (exporter,) = hub.exporters()
        assert isinstance(exporter, LangfuseExporter)
        assert exporter.disabled_reason is not None
        assert not exporter.enabled
        assert [e["event"] for e in logs] == ["credentials_missing"]
        with hub.span("unsent"):
            pass
        assert hub.flush(timeout=2)
        assert hub.stats() == {}  # no channel: nothing queued, nothing counted as exported
        assert server.observations() == []
    finally:
        hub.shutdown(timeout=2)
