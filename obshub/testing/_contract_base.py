"""The plumbing of `ExporterContract`: its settings, override points and fixtures."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, ClassVar

import pytest

from obshub._exporters import Exporter, ExportError
from obshub._hub import Hub
from obshub._plugins import PluginRegistry
from obshub.testing._factories import (
    make_trace,
    record_trace,
)
from obshub.testing._hubs import HubFactory, make_registry
from obshub.testing._waiting import wait_for

__all__: list[str] = []

_CONFIG_NAME = "contract"
_INSTANCE = "under_test"
_KEY_PREFIX = f"configs.{_CONFIG_NAME}.exporters.{_INSTANCE}"
_MIN_SECRET = 6


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in _strings(v)]
    return []


class _ContractBase:
    """What every group of contract checks shares; documented on `ExporterContract`."""

    exporter_class: ClassVar[type[Exporter]]
    config: ClassVar[Mapping[str, Any]] = {}
    secret_settings: ClassVar[Collection[str] | None] = None
    expect_retryable: ClassVar[bool | None] = True
    expect_pause: ClassVar[bool | None] = None
    installed: ClassVar[bool] = False
    timeout: ClassVar[float] = 10.0

    # -- what an author overrides ----------------------------------------------------------

    @pytest.fixture
    def backend(self) -> Any:
        """What the exporter talks to; the default is nothing."""
        return None

    def backend_settings(self, backend: Any) -> Mapping[str, Any]:
        """Settings pointing the exporter at ``backend``, merged over ``config``."""
        return backend if isinstance(backend, Mapping) else {}

    def failing_config(self, backend: Any) -> Mapping[str, Any] | None:
        """Settings (merged over the valid ones) under which ``export()`` must fail."""
        return None

    def received(self, backend: Any, exporter: Exporter) -> int | None:
        """How many distinct spans ``backend`` holds (None: cannot tell).

        Called before recording and after ``hub.flush()`` returned; wait
        inside if the backend stores what it is sent asynchronously.
        """
        return None

    # -- plumbing ----------------------------------------------------------------------------

    @pytest.fixture
    def contract_settings(self, backend: Any) -> dict[str, Any]:
        """The valid settings: ``config`` with `backend_settings` over it."""
        if getattr(self, "exporter_class", None) is None:
            pytest.fail(f"{type(self).__name__} must set exporter_class")
        return {**self.config, **self.backend_settings(backend)}

    @pytest.fixture
    def contract_exporter(
        self, contract_settings: dict[str, Any]
    ) -> Iterator[Callable[..., Exporter]]:
        """``make(**overrides)`` builds the exporter from the valid settings."""
        made: list[Exporter] = []

        def make(**overrides: Any) -> Exporter:
            exporter = self.exporter_class(**{**contract_settings, **overrides})
            made.append(exporter)
            return exporter

        yield make
        for exporter in made:
            try:
                exporter.shutdown()
            except Exception:  # test_flush_and_shutdown_are_idempotent reports it
                continue

    @pytest.fixture
    def contract_hubs(self, backend: Any) -> Iterator[HubFactory]:
        """Hubs shut down after the test, before the backend is torn down."""
        factory = HubFactory(shutdown_timeout=self.timeout)
        yield factory
        factory.shutdown()

    @pytest.fixture
    def contract_registry(self) -> PluginRegistry:
        """The installed registry if it provides the class, else one that registers it."""
        cls = self.exporter_class
        installed = PluginRegistry()
        if installed.exporter_class(cls.name) is cls:
            return installed
        return make_registry(cls)

    def _document(self, table: Mapping[str, Any]) -> dict[str, Any]:
        exporter_table = {"type": self.exporter_class.name, **table}
        return {
            "configs": {
                _CONFIG_NAME: {
                    "service_name": "contract-test",
                    "exporters": {_INSTANCE: exporter_table},
                }
            }
        }

    def _secrets(self, settings: Mapping[str, Any]) -> list[str]:
        names = self.secret_settings
        if names is None:
            names = self.exporter_class.secret_keys
        if not names:
            pytest.skip("no secret settings: set secret_settings or the class's secret_keys")
        secrets: list[str] = []
        for name in names:
            values = _strings(settings.get(name))
            assert values, f"secret setting {name!r} has no value in config: give it one"
            for value in values:
                assert len(value) >= _MIN_SECRET, (
                    f"the value of secret setting {name!r} is too short to look for: use a "
                    f"distinctive one of at least {_MIN_SECRET} characters"
                )
            secrets.extend(values)
        return secrets

    def _failing(self, backend: Any) -> Mapping[str, Any]:
        failing = self.failing_config(backend)
        if failing is None:
            pytest.skip("override failing_config(backend) to test failures")
        return failing

    def _fail_through_hub(
        self,
        make: Callable[..., Exporter],
        hubs: HubFactory,
        failing: Mapping[str, Any],
        **overrides: Any,
    ) -> tuple[Hub, bool]:
        """Record a trace into a hub whose exporter fails; returns the hub and flush()'s result.

        One attempt only, so a retryable failure is given up at once; for an
        exporter that asks for a pause (``ExportError.pause``), the wait is
        until the hub reports the pause, then the hub is shut down (it does
        not wait out a pause).
        """
        probe = make(**failing)
        try:
            probe.export(make_trace(kinds=probe.event_kinds))
            pauses = False
        except ExportError as exc:
            pauses = exc.pause is not None
        except Exception:  # test_raises_export_error_when_the_backend_fails reports it
            pauses = False
        exporter = make(**{**failing, "retry": {"max_attempts": 1}, **overrides})
        hub = hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub, score=False)
        if pauses:
            hub.flush(0)  # sends what is batched; returns at once
            wait_for(
                lambda: all(stats.paused for stats in hub.stats().values()),
                self.timeout,
                message=f"the hub did not pause within {self.timeout:g} s: {hub.stats()}",
            )
            flushed = bool(hub.flush(0))
        else:
            flushed = bool(hub.flush(self.timeout))
        hub.shutdown(self.timeout)
        return hub, flushed
