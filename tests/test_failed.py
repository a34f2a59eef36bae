"""Exporters whose constructor raises: disabled and reported, not fatal (``obshub._failed``)."""

from __future__ import annotations

import traceback
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

import obshub
from obshub._failed import ExporterStartError, FailedExporter
from obshub.testing import make_event, make_registry

SECRET = "sk-hidden-value-9931"


class Raises(obshub.Exporter):
    """Raises ``Raises.error`` from its constructor."""

    name = "raises"
    secret_keys: ClassVar[frozenset[str]] = frozenset({"token"})
    error: ClassVar[BaseException] = RuntimeError("boom")

    def __init__(self, *, token: str = "", url: str = "", api_key: str = "", **common: Any) -> None:
        super().__init__(**common)
        raise type(self).error


def build(error: BaseException, **table: Any) -> obshub.Hub:
    Raises.error = error
    return obshub.Hub(
        exporters=[{"type": "raises", **table}, obshub.MemoryExporter()],
        registry=make_registry(Raises),
    )


def test_a_table_given_in_code_is_disabled_too_and_the_hub_runs() -> None:
    with capture_logs():
        hub = build(OSError("libfoo.so: cannot open shared object file"))
    try:
        failed, memory = hub.exporters()
        assert isinstance(failed, FailedExporter)
        assert not failed.enabled
        assert failed.failure.key == "exporters[0]"
        assert failed.failure.error == "OSError: libfoo.so: cannot open shared object file"
        with hub.span("work"):
            pass
        assert hub.flush(5.0)
        assert len(memory.spans()) == 1  # type: ignore[attr-defined]
        stats = hub.stats()["default/raises"]
        assert stats.state == "disabled"
        assert (stats.queued, stats.exported, stats.failed, stats.dropped) == (0, 0, 0, 0)
        assert stats.reason == "failed to start: OSError: libfoo.so: cannot open shared object file"
    finally:
        hub.shutdown(timeout=2.0)


def test_a_disabled_exporter_refuses_exports_and_its_check_says_why() -> None:
    with capture_logs():
        hub = build(RuntimeError("boom"))
    try:
        failed = hub.exporters()[0]
        with pytest.raises(obshub.ExportError, match="disabled"):
            failed.export([make_event()])
        result = failed.check()
        assert not result.ok
        assert "failed to start: RuntimeError: boom" in result.message
        assert result.details == {"state": "disabled", "key": "exporters[0]", "type": "raises"}
        assert repr(failed) == "<FailedExporter 'raises' type='raises' disabled: RuntimeError>"
    finally:
        hub.shutdown(timeout=2.0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"token": SECRET}, f"token {SECRET} rejected"),
        ({"api_key": SECRET}, f"bad key {SECRET}"),
        ({"url": f"https://admin:{SECRET}@example.test/"}, f"cannot reach admin:{SECRET}@host"),
    ],
    ids=["secret_keys", "named-like-a-secret", "password-in-a-url"],
)
def test_secret_settings_never_show_in_what_is_reported(
    table: dict[str, str], message: str
) -> None:
    try:
        raise ValueError(f"inner cause with {SECRET}")
    except ValueError as cause:
        error = RuntimeError(message)
        error.__cause__ = cause
    with capture_logs() as logs:
        hub = build(error, **table)
    try:
        failed = hub.exporters()[0]
        assert isinstance(failed, FailedExporter)
        (entry,) = [e for e in logs if e["event"] == "exporter_start_failed"]
        logged = entry["exc_info"]
        assert isinstance(logged, ExporterStartError)
        rendered = "".join(traceback.format_exception(type(logged), logged, logged.__traceback__))
        assert "__init__" in rendered, "the stand-in lost the frames"
        shown = [
            rendered,
            str(entry),
            failed.failure.error,
            failed.failure.traceback,
            failed.check().message,
            repr(failed),
            repr(hub.stats()),
        ]
        assert not [text for text in shown if SECRET in text]
        assert "***" in failed.failure.error
    finally:
        hub.shutdown(timeout=2.0)


def test_an_exception_without_secrets_is_logged_as_it_is() -> None:
    with capture_logs() as logs:
        hub = build(RuntimeError("boom"))
    hub.shutdown(timeout=2.0)
    (entry,) = [e for e in logs if e["event"] == "exporter_start_failed"]
    assert type(entry["exc_info"]) is RuntimeError
    assert entry["error"] == "RuntimeError: boom"


def test_system_exit_from_a_constructor_is_contained_but_keyboard_interrupt_is_not() -> None:
    with capture_logs():
        hub = build(SystemExit(3))
    assert isinstance(hub.exporters()[0], FailedExporter)
    hub.shutdown(timeout=2.0)
    with pytest.raises(KeyboardInterrupt):
        build(KeyboardInterrupt())


@pytest.mark.parametrize(
    "error", [obshub.ConfigError("must be eu or us", "region"), TypeError("bad"), ValueError("bad")]
)
def test_configuration_mistakes_from_a_constructor_still_stop_the_hub(error: Exception) -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        build(error)
    assert caught.value.key is not None
    assert caught.value.key.startswith("exporters[0]")
