"""Finding and loading plugins, each inside its own guard.

pluggy stops at the first raising hook implementation, and an unguarded
``entry_point.load()`` takes the host down; so every entry point is loaded and
every hook implementation is called here one by one, and a broken plugin is
recorded (``obshub plugins`` shows it, a log event reports it) while the
others keep working.

Environment variables:

- ``OBSHUB_DISABLE_PLUGINS``: comma-separated entry-point names not to load.
- ``OBSHUB_LOAD_PLUGINS``: if set, only these entry-point names are loaded
  (an empty value loads none); the built-in exporters are always available.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from obshub import hookspecs
from obshub._logging import get_logger
from obshub.exporters import Exporter

__all__ = [
    "ExporterType",
    "PluginError",
    "PluginInfo",
    "PluginRegistry",
    "get_registry",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_PLUGIN = "obshub.builtin"
_log = get_logger()


@attrs.frozen
class ExporterType:
    """An exporter class and the plugin that registered it."""

    name: str
    cls: type[Exporter]
    plugin: str
    distribution: str
    version: str


@attrs.frozen
class PluginError:
    """A plugin that failed to load or to register."""

    plugin: str
    distribution: str | None
    stage: str
    error: str
    traceback: str


@attrs.frozen
class PluginInfo:
    """One loaded plugin, for ``obshub plugins``."""

    name: str
    distribution: str
    version: str
    exporters: tuple[str, ...]


def _env_names(var: str, environ: Mapping[str, str]) -> set[str] | None:
    raw = environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _core_version() -> str:
    try:
        return metadata.version("obshub")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class PluginRegistry:
    """The plugin manager behind a typed facade: the rest of obshub never calls ``pm.hook``."""

    def __init__(
        self,
        entry_points: Iterable[metadata.EntryPoint] | None = None,
        environ: Mapping[str, str] | None = None,
        extra_plugins: Iterable[object] = (),
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._types: dict[str, ExporterType] = {}
        self._plugins: dict[str, PluginInfo] = {}
        self._dists: dict[str, tuple[str, str]] = {}
        self.errors: list[PluginError] = []
        self.blocked: list[str] = []
        env = os.environ if environ is None else environ

        from obshub import builtin

        self._add(builtin, BUILTIN_PLUGIN, "obshub", _core_version())
        for plugin in extra_plugins:
            name = getattr(plugin, "__name__", type(plugin).__name__)
            self._add(plugin, name, "obshub", _core_version())
        eps = (
            metadata.entry_points(group=ENTRY_POINT_GROUP)
            if entry_points is None
            else (entry_points)
        )
        self._load_entry_points(eps, env)
        self._register_all()

    def _add(self, plugin: object, name: str, dist: str, version: str) -> None:
        self._pm.register(plugin, name=name)
        self._dists[name] = (dist, version)

    def _load_entry_points(
        self, eps: Iterable[metadata.EntryPoint], environ: Mapping[str, str]
    ) -> None:
        allowed = _env_names("OBSHUB_LOAD_PLUGINS", environ)
        disabled = _env_names("OBSHUB_DISABLE_PLUGINS", environ) or set()
        for ep in eps:
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else "0+unknown"
            if ep.name in disabled or (allowed is not None and ep.name not in allowed):
                self.blocked.append(ep.name)
                continue
            if self._pm.get_plugin(ep.name) is not None:
                self._error(ep.name, dist, "load", f"another plugin is already named {ep.name!r}")
                continue
            try:
                plugin = ep.load()
                self._add(plugin, ep.name, dist or ep.name, version)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._error(ep.name, dist, "load", _describe(exc), exc)

    def _register_all(self) -> None:
        hook = self._pm.hook.obshub_register_exporters
        # In registration order: the built-in types first, so that a plugin
        # cannot take over their names (the clash is reported against it).
        # pluggy's own order puts trylast implementations first: sort by the
        # order plugins were added, built-in first.
        order = {name: index for index, name in enumerate(self._dists)}
        for impl in sorted(hook.get_hookimpls(), key=lambda i: order.get(i.plugin_name, 0)):
            plugin_name = impl.plugin_name
            dist, version = self._dists.get(plugin_name, (plugin_name, "0+unknown"))
            registered: list[str] = []

            def register(
                cls: type[Exporter],
                _plugin: str = plugin_name,
                _dist: str = dist,
                _version: str = version,
                _out: list[str] = registered,
            ) -> None:
                self._register_type(cls, _plugin, _dist, _version)
                _out.append(cls.name)

            try:
                kwargs = {"register": register} if "register" in impl.argnames else {}
                impl.function(**kwargs)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._error(plugin_name, dist, "register", _describe(exc), exc)
            self._plugins[plugin_name] = PluginInfo(
                name=plugin_name, distribution=dist, version=version, exporters=tuple(registered)
            )

    def _register_type(self, cls: Any, plugin: str, dist: str, version: str) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Exporter)):
            raise TypeError(f"register() takes an obshub.Exporter subclass, got {cls!r}")
        name = cls.name
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__}.name must be a non-empty string")
        existing = self._types.get(name)
        if existing is not None and existing.cls is not cls:
            raise ValueError(
                f"exporter type {name!r} is already registered by plugin {existing.plugin!r}"
            )
        self._types[name] = ExporterType(
            name=name, cls=cls, plugin=plugin, distribution=dist, version=version
        )

    def _error(
        self,
        plugin: str,
        dist: str | None,
        stage: str,
        message: str,
        exc: BaseException | None = None,
    ) -> None:
        tb = "".join(traceback.format_exception(exc)) if exc is not None else ""
        self.errors.append(
            PluginError(plugin=plugin, distribution=dist, stage=stage, error=message, traceback=tb)
        )
        _log.error("plugin_failed", plugin=plugin, distribution=dist, stage=stage, error=message)

    # -- the facade ---------------------------------------------------------------

    def exporter_types(self) -> Mapping[str, ExporterType]:
        """Every registered exporter type by name."""
        return dict(self._types)

    def exporter_class(self, name: str) -> type[Exporter] | None:
        """The class registered under ``name``, or None."""
        found = self._types.get(name)
        return found.cls if found is not None else None

    def plugins(self) -> list[PluginInfo]:
        """The plugins that loaded, the built-in one first."""
        return list(self._plugins.values())

    def error_for(self, name: str) -> PluginError | None:
        """The load error of a plugin called ``name``, if it had one."""
        for error in self.errors:
            if error.plugin == name:
                return error
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()


def get_registry(reload: bool = False) -> PluginRegistry:
    """The process-wide registry, built on first use."""
    global _registry
    with _registry_lock:
        if _registry is None or reload:
            _registry = PluginRegistry()
        return _registry
