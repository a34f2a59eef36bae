"""Logging: structlog, one logger per exporter bound with its name, filtered at its own level."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

import obshub
from obshub import ExportError, Retry, SpanEvent
from obshub._logging import LEVELS, RateLimitedLog, parse_level

WAIT = 5.0
FAST_RETRY = Retry(initial_backoff=0.001, jitter=0.0)


class Flaky(obshub.Exporter):
    """Fails each batch with the scripted errors, then accepts."""

    name = "flaky"

    def __init__(self, *, errors: Sequence[ExportError] = (), **common: Any) -> None:
        common.setdefault("realtime", True)
        common.setdefault("retry", FAST_RETRY)
        super().__init__(**common)
        self.errors = list(errors)

    def export(self, events: Sequence[SpanEvent]) -> None:
        if self.errors:
            raise self.errors.pop(0)


def of(logs: list[dict[str, Any]], exporter: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("exporter") == exporter]


def test_a_debug_exporter_logs_each_batch_sent_with_count_and_duration(
    hub_factory: Any,
) -> None:
    with capture_logs() as logs:
        hub = hub_factory(
            exporters=[obshub.MemoryExporter(instance_name="local", log_level="debug")]
        )
        for i in range(3):
            with hub.span(f"s{i}"):
                pass
        assert hub.flush(WAIT)
    sent = [e for e in of(logs, "local") if e["event"] == "batch_sent"]
    assert sent
    assert all(e["log_level"] == "debug" for e in sent)
    assert sum(e["count"] for e in sent) == 6  # started and ended events
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in sent)


def test_an_info_exporter_does_not_log_batches_but_logs_retries(hub_factory: Any) -> None:
    exporter = Flaky(
        instance_name="backend", errors=[ExportError("503", retryable=True, status=503)]
    )
    with capture_logs() as logs:
        hub = hub_factory(exporters=[exporter])
        with hub.span("s"):
            pass
        assert hub.flush(WAIT)
    events = of(logs, "backend")
    assert [e["event"] for e in events] == ["export_retry"]
    (retry,) = events
    assert retry["log_level"] == "warning"
    assert (retry["attempt"], retry["status"], retry["count"]) == (1, 503, 1)


def test_an_error_level_exporter_logs_nothing_below_error(hub_factory: Any) -> None:
    quiet = Flaky(
        instance_name="quiet",
        log_level="error",
        errors=[ExportError("503", retryable=True), ExportError("400 bad request")],
    )
    with capture_logs() as logs:
        hub = hub_factory(exporters=[quiet])
        with hub.span("retried-then-failed"):
            pass
        assert not hub.flush(WAIT)
        with hub.span("fine"):
            pass
        assert hub.flush(WAIT)
    events = of(logs, "quiet")
    assert [(e["event"], e["log_level"]) for e in events] == [("export_failed", "error")]
    assert events[0]["retryable"] is False
    assert events[0]["attempts"] == 2


def test_exhausted_retries_are_logged_with_the_number_of_attempts_made(
    hub_factory: Any,
) -> None:
    exporter = Flaky(
        instance_name="down",
        errors=[ExportError("503", retryable=True)] * 5,
        retry=Retry(max_attempts=3, initial_backoff=0.001, jitter=0.0),
    )
    with capture_logs() as logs:
        hub = hub_factory(exporters=[exporter])
        with hub.span("s"):
            pass
        assert not hub.flush(WAIT)
    (failed,) = [e for e in of(logs, "down") if e["event"] == "export_failed"]
    assert failed["attempts"] == 3
    assert failed["retryable"] is True


def test_each_exporter_is_filtered_at_its_own_level_in_the_same_hub(hub_factory: Any) -> None:
    chatty = obshub.MemoryExporter(instance_name="chatty", log_level="debug")
    silent = obshub.MemoryExporter(instance_name="silent", log_level="warning")
    with capture_logs() as logs:
        hub = hub_factory(exporters=[chatty, silent])
        with hub.span("s"):
            pass
        assert hub.flush(WAIT)
    assert any(e["event"] == "batch_sent" for e in of(logs, "chatty"))
    assert of(logs, "silent") == []


def test_an_exporter_crash_is_logged_as_an_error_naming_the_exception(hub_factory: Any) -> None:
    class Buggy(obshub.Exporter):
        name = "buggy"

        def export(self, events: Sequence[SpanEvent]) -> None:
            raise ZeroDivisionError("oops")

    with capture_logs() as logs:
        hub = hub_factory(exporters=[Buggy(realtime=True, log_level="error")])
        with hub.span("s"):
            pass
        assert not hub.flush(WAIT)
    (crash,) = of(logs, "buggy")
    assert crash["event"] == "exporter_crashed"
    assert crash["log_level"] == "error"
    assert "ZeroDivisionError: oops" in crash["error"]


def test_the_exporter_logger_is_available_to_exporter_code(hub_factory: Any) -> None:
    class Talking(obshub.Exporter):
        name = "talking"

        def export(self, events: Sequence[SpanEvent]) -> None:
            self.log.info("sent_to_backend", spans=len(events))
            self.log.debug("verbose_detail")

    with capture_logs() as logs:
        hub = hub_factory(exporters=[Talking(instance_name="t1", realtime=True, log_level="WARN")])
        with hub.span("s"):
            pass
        assert hub.flush(WAIT)
        assert of(logs, "t1") == []
        hub2 = hub_factory(exporters=[Talking(instance_name="t2", realtime=True)])
        with hub2.span("s"):
            pass
        assert hub2.flush(WAIT)
    assert [(e["event"], e["spans"]) for e in of(logs, "t2")] == [("sent_to_backend", 1)]


def test_log_level_names_are_case_insensitive_and_unknown_ones_rejected() -> None:
    assert parse_level("WARN") == parse_level("warning") == LEVELS["warning"]
    with pytest.raises(ValueError, match="debug"):
        parse_level("verbose")
    with pytest.raises(obshub.ConfigError) as raised:
        obshub.MemoryExporter(log_level="verbose")
    assert raised.value.key == "log_level"


def test_a_recurring_problem_is_logged_once_per_interval_with_a_suppressed_count() -> None:
    limited = RateLimitedLog(interval=3600)
    log = structlog.get_logger("test")
    with capture_logs() as logs:
        for _ in range(5):
            limited(log, "warning", "queue_full", count=1)
        limited(log, "warning", "other_problem")
    assert [e["event"] for e in logs] == ["queue_full", "other_problem"]
    limited_short = RateLimitedLog(interval=0)
    with capture_logs() as logs:
        limited_short(log, "warning", "p")
        limited_short(log, "warning", "p")
    assert len(logs) == 2


def test_a_broken_log_pipeline_never_reaches_the_application(hub_factory: Any) -> None:
    def explode(*_: Any) -> Any:
        raise RuntimeError("logging is broken")

    with capture_logs(processors=[explode]):
        hub = hub_factory(
            exporters=[
                Flaky(instance_name="f", errors=[ExportError("x")]),
                obshub.MemoryExporter(instance_name="m", log_level="debug", max_queue_size=1),
            ]
        )
        for _ in range(3):
            with hub.span("s", type="bogus", colour="unknown-field"):
                pass
        hub.flush(WAIT)
    memory = hub.exporters()[1]
    assert isinstance(memory, obshub.MemoryExporter)
    assert memory.events  # delivery went on


def test_the_library_never_configures_structlog() -> None:
    script = textwrap.dedent(
        """
        import structlog

        calls = []
        real = structlog.configure
        structlog.configure = lambda *a, **k: calls.append("configure")
        structlog.configure_once = lambda *a, **k: calls.append("configure_once")

        import obshub
        from obshub import ExportError

        class Failing(obshub.Exporter):
            name = "failing"
            def export(self, events):
                raise ExportError("down")

        hub = obshub.Hub(exporters=[
            obshub.MemoryExporter(log_level="debug"),
            Failing(realtime=True, log_level="debug"),
            obshub.ConsoleExporter(stream="stderr"),
        ])
        with hub.span("s", type="bogus", colour=1):
            hub.event("e")
        hub.flush(5)
        hub.shutdown(5)
        obshub.plugins.get_registry(reload=True)
        assert calls == [], calls
        assert not structlog.is_configured()
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok"
