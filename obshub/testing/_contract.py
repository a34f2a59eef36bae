"""`ExporterContract`: the test battery every exporter class must pass."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from obshub._exporters import CheckResult, Exporter, ExportError
from obshub.testing._contract_config import ConfigChecks
from obshub.testing._contract_export import ExportChecks
from obshub.testing._factories import (
    make_score,
    make_trace,
    record_trace,
)
from obshub.testing._hubs import HubFactory

__all__ = ["ExporterContract"]


def _check_well_formed(result: Any) -> CheckResult:
    assert isinstance(result, CheckResult), (
        f"check() returned {type(result).__name__}, not obshub.CheckResult"
    )
    assert isinstance(result.ok, bool), f"CheckResult.ok is {type(result.ok).__name__}, not bool"
    assert isinstance(result.message, str), "CheckResult.message is not a str"
    assert result.message.strip(), "CheckResult.message is empty: say what was checked"
    assert result.latency_ms is None or (
        isinstance(result.latency_ms, (int, float)) and result.latency_ms >= 0
    ), f"CheckResult.latency_ms is {result.latency_ms!r}"
    assert isinstance(result.details, Mapping), "CheckResult.details is not a mapping"
    return result


class ExporterContract(ConfigChecks, ExportChecks):
    """The standard test battery for an exporter class. Subclass it as ``Test...``.

    Set these class attributes:

    - ``exporter_class``: the `Exporter` subclass under test.
    - ``config``: valid settings of its own (keyword arguments, as a config
      table would give them); values must be what a TOML file can hold.
    - ``secret_settings``: names of settings whose values must never appear
      in ``repr``/``str``, error messages, ``check()`` results or log lines
      (default: the class's ``secret_keys``). Use distinctive values.
    - ``expect_retryable``: ``retryable`` of the `ExportError`
      raised under `failing_config` (``None``: either is fine);
      ``expect_pause``: whether it asks for a pause (``ExportError.pause``;
      ``None``, the default: either is fine).
    - ``installed``: True when an installed plugin (or the core) registers
      the class, so ``PluginRegistry()`` must find it.
    - ``timeout``: seconds a flush may take.

    And override, as needed:

    - the ``backend`` fixture: start what the exporter talks to (a local
      server, a temporary directory) and return it;
    - `backend_settings`: settings that point the exporter at that
      backend (default: the backend itself when it is a mapping, else none);
    - `failing_config`: settings under which ``export()`` must raise
      `ExportError` (e.g. ``{"url": unreachable_url()}``);
    - `received`: how many distinct spans the backend holds, so the
      battery can check that a trace recorded through a hub arrived.

    Tests that need an override that was not given are skipped, with the
    reason saying which one. The checks come in groups, one module each: how
    the class is built, configured and keeps its secrets (``_contract_config``),
    what it takes and exports (``_contract_export``), and how it fails and
    shuts down (below).
    """

    # -- failures ------------------------------------------------------------------------------

    def test_raises_export_error_when_the_backend_fails(
        self, backend: Any, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Under ``failing_config`` export() raises ExportError, retryable as expected."""
        exporter = contract_exporter(**self._failing(backend))
        try:
            exporter.export(make_trace(kinds=exporter.event_kinds))
        except ExportError as exc:
            error = exc
        except Exception as exc:
            pytest.fail(
                f"export() raised {type(exc).__name__}: {exc}; failures must raise "
                "obshub.ExportError"
            )
        else:
            pytest.fail("export() returned under failing_config(); it must raise ExportError")
        assert str(error).strip(), "the ExportError has no message"
        if self.expect_retryable is not None:
            assert error.retryable is self.expect_retryable, repr(error)
        if self.expect_pause is not None:
            assert (error.pause is not None) is self.expect_pause, repr(error)
        assert error.retry_after is None or error.retry_after >= 0
        assert error.status is None or isinstance(error.status, int)

    def test_contains_a_failing_backend_inside_the_hub(
        self,
        backend: Any,
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
    ) -> None:
        """Recording never raises; flush() says it failed; the hub counts what was lost."""
        hub, flushed = self._fail_through_hub(
            contract_exporter, contract_hubs, self._failing(backend)
        )
        assert not flushed, "flush() was truthy although every export failed"
        (stats,) = hub.stats().values()
        assert stats.exported == 0, stats
        assert stats.failed + stats.dropped + stats.spooled + stats.rejected >= 1, stats

    def test_check_returns_a_well_formed_result(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``check()`` returns a CheckResult (bool ok, str message); ok on a working backend."""
        exporter = contract_exporter()
        try:
            result = exporter.check()
        except Exception as exc:
            pytest.fail(f"check() raised {type(exc).__name__}: {exc}; it must return a result")
        assert _check_well_formed(result).ok, result.message

    def test_check_reports_a_failing_backend_without_raising(
        self, backend: Any, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Under ``failing_config``, an exporter with its own check() reports not ok."""
        exporter = contract_exporter(**self._failing(backend))
        try:
            result = exporter.check()
        except Exception as exc:
            pytest.fail(f"check() raised {type(exc).__name__}: {exc}; it must return a result")
        _check_well_formed(result)
        if type(exporter).check is not Exporter.check:
            assert result.ok is False, result.message

    # -- lifecycle -------------------------------------------------------------------------------

    def test_flush_and_shutdown_are_idempotent(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """flush() and shutdown() may be called twice, before or after exporting."""
        fresh = contract_exporter()
        fresh.flush()
        fresh.flush()
        fresh.shutdown()
        fresh.shutdown()
        used = contract_exporter()
        used.export(make_trace(kinds=used.event_kinds))
        used.flush()
        used.flush()
        used.shutdown()
        used.shutdown()

    def test_survives_an_export_after_shutdown(
        self, contract_exporter: Callable[..., Exporter], contract_hubs: HubFactory
    ) -> None:
        """After shutdown, export() returns or raises ExportError; the hub drops quietly."""
        exporter = contract_exporter()
        exporter.shutdown()
        calls: list[Callable[[], None]] = [
            lambda: exporter.export(make_trace(kinds=exporter.event_kinds))
        ]
        if exporter.supports_scores():
            calls.append(lambda: exporter.export_scores([make_score()]))
        for call in calls:
            try:
                call()
            except ExportError:
                continue
            except Exception as exc:
                pytest.fail(f"an export after shutdown raised {type(exc).__name__}: {exc}")
        hub = contract_hubs(exporters=[contract_exporter()], service_name="contract-test")
        hub.shutdown(self.timeout)
        hub.shutdown(self.timeout)
        record_trace(hub)
        flushed = hub.flush(self.timeout)
        assert flushed.dropped >= 1, f"flush() after shutdown hid the drops: {flushed!r}"
        assert not flushed.timed_out, f"flush() after shutdown waited: {flushed!r}"
