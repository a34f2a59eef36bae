"""Hubs that are always shut down, registries of given exporter classes, and log resets."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, NamedTuple

from obshub import _logging
from obshub._exporters import Exporter
from obshub._hookspecs import hookimpl
from obshub._hub import Hub
from obshub._plugins import PluginRegistry
from obshub.testing._recording import RecordingExporter
from obshub.testing._waiting import DEFAULT_TIMEOUT

__all__ = ["HubFactory", "MemoryHub", "make_registry", "plugin_for", "reset_rate_limits"]


class MemoryHub(NamedTuple):
    """A hub and the `RecordingExporter` it sends to: ``hub, recorded = obshub_memory``."""

    hub: Hub
    exporter: RecordingExporter


class HubFactory:
    """Builds hubs and shuts every one of them down in `shutdown`.

    ``factory(...)`` takes `Hub`'s arguments;
    `from_config` takes `Hub.from_config`'s; `memory`
    builds a hub around a realtime `RecordingExporter`.
    """

    def __init__(self, shutdown_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.shutdown_timeout = shutdown_timeout
        self.hubs: list[Hub] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Hub:
        """``Hub(*args, **kwargs)``, remembered for `shutdown`."""
        built = Hub(*args, **kwargs)
        self.hubs.append(built)
        return built

    def from_config(self, source: Any, **kwargs: Any) -> Hub:
        """``Hub.from_config(source, **kwargs)``, remembered for `shutdown`."""
        built = Hub.from_config(source, **kwargs)
        self.hubs.append(built)
        return built

    def memory(self, *, service_name: str = "obshub-test", **hub_kwargs: Any) -> MemoryHub:
        """A hub whose only exporter is a realtime `RecordingExporter`."""
        exporter = RecordingExporter()
        return MemoryHub(
            self(exporters=[exporter], service_name=service_name, **hub_kwargs), exporter
        )

    def shutdown(self) -> bool:
        """Shut down every hub built (idempotent); True if all delivered everything."""
        ok = True
        for built in self.hubs:
            ok = built.shutdown(timeout=self.shutdown_timeout) and ok
        return ok


def plugin_for(*exporter_classes: type[Exporter]) -> object:
    """A plugin object that registers ``exporter_classes``.

    For ``PluginRegistry(extra_plugins=[plugin_for(MyExporter)])``.
    """
    names = "+".join(cls.__qualname__ for cls in exporter_classes)
    plugin = types.ModuleType(f"obshub.testing.plugin_for[{names}]")

    @hookimpl
    def obshub_register_exporters(register: Callable[[type[Exporter]], None]) -> None:
        for cls in exporter_classes:
            register(cls)

    plugin.obshub_register_exporters = obshub_register_exporters  # type: ignore[attr-defined]
    return plugin


def make_registry(*exporter_classes: type[Exporter]) -> PluginRegistry:
    """A registry of the built-in exporters and ``exporter_classes``, ignoring installed plugins.

    Pass it as ``Hub.from_config(..., registry=make_registry(MyExporter))``
    to configure a class by its ``name`` before it is installed.
    """
    return PluginRegistry(
        entry_points=[], environ={}, extra_plugins=[plugin_for(*exporter_classes)]
    )


def reset_rate_limits() -> None:
    """Forget which warnings obshub logged lately, so the next occurrence of each is logged.

    obshub logs a recurring problem (a failing exporter, a dropped span) once
    per interval with a count; a test that checks for such a line would miss
    it if an earlier test in the same process logged it moments before. Call
    this at the start of such a test (the ``obshub_capture_logs`` fixture
    does).
    """
    _logging.reset_rate_limits()
