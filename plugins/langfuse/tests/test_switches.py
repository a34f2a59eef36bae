"""The Langfuse SDK's environment switches: each one, and arguments/config winning over it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.testing import Fault, LangfuseStandIn
from structlog.testing import capture_logs

import obshub
from obshub import _cli as cli

MakeExporter = Callable[..., LangfuseExporter]


def keys(server: LangfuseStandIn, **settings: Any) -> dict[str, Any]:
    return {
        "public_key": server.public_key,
        "secret_key": server.secret_key,
        "base_url": server.url,
        "retry": {"initial_backoff": 0.01, "max_backoff": 0.05},
        **settings,
    }


# -- LANGFUSE_TRACING_ENABLED ----------------------------------------------------------


@pytest.mark.parametrize("value", ["false", "False", "0"])
def test_tracing_disabled_sends_nothing_and_says_so_once(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", value)
    with capture_logs() as logs:
        exporter = LangfuseExporter(**keys(server))
    assert not exporter.enabled
    (record,) = logs
    assert record["event"] == "tracing_disabled"
    assert "LANGFUSE_TRACING_ENABLED" in record["reason"]
    hub = obshub.Hub(exporters=[exporter])
    try:
        with capture_logs() as later, hub.span("agent", type="agent_run"):
            hub.score(name="quality", value=1.0)
        assert hub.flush(5)
        assert later == []
        assert hub.stats() == {}
    finally:
        hub.shutdown(timeout=2)
    assert server.requests() == []
    # Called directly, it still sends nothing.
    exporter.export_scores([obshub.Score(name="q", value=1.0, trace_id="ab" * 16)])
    assert server.requests() == []
    result = exporter.check()
    assert result.ok  # switched off on purpose: `obshub check` shows "off", not FAIL
    assert "disabled by LANGFUSE_TRACING_ENABLED" in result.message
    assert result.details["settings"]["enabled"] == {
        "value": False,
        "source": "env LANGFUSE_TRACING_ENABLED",
    }


def test_tracing_disabled_does_not_warn_about_missing_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    with capture_logs() as logs:
        exporter = LangfuseExporter()
    assert [r["event"] for r in logs] == ["tracing_disabled"]
    assert exporter.check().ok


def test_enabled_true_wins_over_tracing_disabled(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    exporter = LangfuseExporter(**keys(server), enabled=True, realtime=True)
    assert exporter.enabled
    assert exporter.switches.sources["enabled"] == "argument/config"
    hub = obshub.Hub(exporters=[exporter])
    try:
        with hub.span("agent", type="agent_run"):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    server.wait_for_observations(1)


def test_enabled_true_in_a_config_wins_over_tracing_disabled(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    on = {"type": "langfuse", **keys(server), "enabled": True}
    off = {"type": "langfuse", **keys(server)}
    hub = obshub.Hub.from_config({"configs": {"p": {"exporters": {"on": on, "off": off}}}})
    try:
        exporters = {e.instance_name: e for e in hub.configs["p"].exporters}
        assert exporters["on"].enabled
        assert not exporters["off"].enabled
    finally:
        hub.shutdown(timeout=2)


def test_tracing_enabled_true_changes_nothing(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "true")
    exporter = LangfuseExporter(**keys(server))
    assert exporter.enabled
    assert exporter.switches.sources["enabled"] == "env LANGFUSE_TRACING_ENABLED"


# -- LANGFUSE_SAMPLE_RATE --------------------------------------------------------------


def test_sample_rate_zero_sends_no_span_and_no_trace_score(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_SAMPLE_RATE", "0")
    exporter = LangfuseExporter(**keys(server), realtime=True)
    assert exporter.sample_rate == 0.0
    hub = obshub.Hub(exporters=[exporter])
    try:
        with hub.span("agent", type="agent_run"):
            hub.score(name="quality", value=1.0)
        hub.score(session_id="s-1", name="csat", value=5)  # a session is no trace
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    assert server.requests("traces") == []
    assert [s.name for s in server.scores()] == ["csat"]


def test_sample_rate_decides_per_trace_id_like_otel_ratio_sampling(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_SAMPLE_RATE", "0.5")
    exporter = LangfuseExporter(**keys(server), realtime=True)
    hub = obshub.Hub(exporters=[exporter])
    kept: set[str] = set()
    dropped: set[str] = set()
    try:
        for i in range(40):
            with (
                hub.span(f"agent-{i}", type="agent_run") as root,
                hub.span("tool", type="tool_call"),
            ):
                pass
            # The same rule OpenTelemetry's TraceIdRatioBased applies to the low 64 bits.
            low = int(root.trace_id[16:], 16)
            (kept if low < 0.5 * 2**64 else dropped).add(root.trace_id)
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    assert kept
    assert dropped
    server.wait_for_observations(2 * len(kept))
    received = {o.trace_id for o in server.observations()}
    assert received == kept
    for trace in server.traces():
        assert len(trace.observations) == 2  # never half a trace


def test_a_sample_rate_argument_wins_over_the_environment(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_SAMPLE_RATE", "0")
    exporter = LangfuseExporter(**keys(server), sample_rate=1.0)
    assert exporter.sample_rate == 1.0
    assert exporter.switches.sources["sample_rate"] == "argument/config"


def test_a_sample_rate_out_of_range_is_a_config_error(server: LangfuseStandIn) -> None:
    with pytest.raises(obshub.ConfigError, match="sample_rate"):
        LangfuseExporter(**keys(server), sample_rate=1.5)


# -- LANGFUSE_DEBUG ----------------------------------------------------------------------


def test_debug_sets_this_exporters_log_level(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_DEBUG", "true")
    assert LangfuseExporter(**keys(server)).log_level == "debug"
    assert LangfuseExporter(**keys(server), log_level="warning").log_level == "warning"
    monkeypatch.setenv("LANGFUSE_DEBUG", "false")
    assert LangfuseExporter(**keys(server)).log_level == "info"


def test_debug_logs_each_export_at_debug(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_DEBUG", "1")
    exporter = LangfuseExporter(**keys(server), realtime=True)
    hub = obshub.Hub(exporters=[exporter])
    try:
        with capture_logs() as logs:
            with hub.span("agent", type="agent_run"):
                pass
            assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    assert any(r["log_level"] == "debug" for r in logs)


# -- LANGFUSE_FLUSH_AT / LANGFUSE_FLUSH_INTERVAL / LANGFUSE_TIMEOUT -----------------------


def test_flush_at_and_interval_set_the_batch_policy(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_FLUSH_AT", "3")
    monkeypatch.setenv("LANGFUSE_FLUSH_INTERVAL", "0.5")  # seconds, as in the SDK
    exporter = LangfuseExporter(**keys(server))
    assert exporter.batch == obshub.Batch(max_size=3, interval=0.5)
    hub = obshub.Hub(exporters=[exporter])
    try:
        for i in range(3):
            with hub.span(f"agent-{i}", type="agent_run"):
                pass
        # Three ended spans fill a batch of three: sent without waiting for a flush.
        server.wait_for_observations(3)
    finally:
        hub.shutdown(timeout=2)
    (request,) = server.requests("traces")
    assert request.spans == 3


def test_batch_keys_given_win_one_by_one(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_FLUSH_AT", "3")
    monkeypatch.setenv("LANGFUSE_FLUSH_INTERVAL", "7")
    exporter = LangfuseExporter(**keys(server), batch={"max_size": 50})
    assert exporter.batch == obshub.Batch(max_size=50, interval=7.0)
    sources = exporter.switches.sources
    assert sources["batch.max_size"] == "argument/config"
    assert sources["batch.interval"] == "env LANGFUSE_FLUSH_INTERVAL"
    given = obshub.Batch(max_size=9, interval=1.0)
    assert LangfuseExporter(**keys(server), batch=given).batch == given


def test_timeout_comes_from_the_environment_unless_given(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LangfuseExporter(**keys(server)).timeout == 10.0
    monkeypatch.setenv("LANGFUSE_TIMEOUT", "3")
    exporter = LangfuseExporter(**keys(server))
    assert exporter.timeout == 3.0
    assert exporter.switches.sources["timeout"] == "env LANGFUSE_TIMEOUT"
    assert LangfuseExporter(**keys(server), timeout=20).timeout == 20.0


def test_a_timeout_from_the_environment_bounds_requests(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGFUSE_TIMEOUT", "0.2")
    exporter = LangfuseExporter(**keys(server))
    server.inject("scores", Fault.slow(2))
    with pytest.raises(obshub.ExportError, match=r"timed out after 0.2 s"):
        exporter.export_scores([obshub.Score(name="q", value=1.0, trace_id="ab" * 16)])


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("LANGFUSE_TRACING_ENABLED", "maybe"),
        ("LANGFUSE_SAMPLE_RATE", "2"),
        ("LANGFUSE_FLUSH_AT", "0"),
        ("LANGFUSE_FLUSH_INTERVAL", "soon"),
        ("LANGFUSE_TIMEOUT", "-1"),
        ("LANGFUSE_DEBUG", "verbose"),
    ],
)
def test_an_unparsable_variable_is_ignored_with_a_warning(
    server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with capture_logs() as logs:
        exporter = LangfuseExporter(**keys(server))
    (warning,) = [r for r in logs if r["event"] == "environment_variable_ignored"]
    assert warning["variable"] == var
    assert warning["value"] == value
    assert exporter.enabled
    assert exporter.sample_rate == 1.0
    assert exporter.batch == obshub.Batch()
    assert exporter.timeout == 10.0
    assert exporter.log_level == "info"


# -- obshub check ---------------------------------------------------------------------------


def test_obshub_check_shows_where_each_value_came_from(
    server: LangfuseStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBSHUB_CONFIG", raising=False)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", server.public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", server.secret_key)
    monkeypatch.setenv("LANGFUSE_FLUSH_AT", "25")
    monkeypatch.setenv("LANGFUSE_SAMPLE_RATE", "0.25")
    (tmp_path / "obshub.toml").write_text(
        f'[configs.prod.exporters.lf]\ntype = "langfuse"\nbase_url = "{server.url}"\ntimeout = 4\n'
    )
    out = io.StringIO()
    code = cli.main(["check"], out=out)
    text = out.getvalue()
    assert code == 0, text
    assert f"base_url = {server.url} (argument/config)" in text
    assert "public_key = pk-lf-stand-in (env LANGFUSE_PUBLIC_KEY)" in text
    assert "secret_key = <set> (env LANGFUSE_SECRET_KEY)" in text
    assert server.secret_key not in text
    assert "timeout = 4 (argument/config)" in text
    assert "batch.max_size = 25 (env LANGFUSE_FLUSH_AT)" in text
    assert "batch.interval = 2.0 (default)" in text
    assert "sample_rate = 0.25 (env LANGFUSE_SAMPLE_RATE)" in text
    assert "enabled = True (default)" in text


def test_obshub_check_shows_an_exporter_switched_off_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBSHUB_CONFIG", raising=False)
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    (tmp_path / "obshub.toml").write_text('[configs.prod.exporters.lf]\ntype = "langfuse"\n')
    out = io.StringIO()
    code = cli.main(["check"], out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "off   lf (langfuse" in text
    assert "disabled by LANGFUSE_TRACING_ENABLED=false" in text
    assert "enabled = False (env LANGFUSE_TRACING_ENABLED)" in text
