"""Finding and loading plugins, each inside its own guard.

pluggy stops at the first raising hook implementation, and an unguarded
``entry_point.load()`` takes the host down; so every entry point is loaded and
every hook implementation is called here one by one, and a broken plugin is
recorded (``obshub plugins`` shows it, a log event reports it) while the
others keep working. What pluggy does keep well is used as it is: names not
to load are blocked in the plugin manager (``set_blocked``), and an installed
entry point is loaded by pluggy's own loader (``load_setuptools_entrypoints``
for that one name, inside the guard), which records its distribution
(``list_plugin_distinfo``).

Environment variables:

- ``OBSHUB_DISABLE_PLUGINS``: comma-separated entry-point names not to load.
- ``OBSHUB_LOAD_PLUGINS``: if set, only these entry-point names are loaded
  (an empty value loads none); the built-in exporters are always available.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from obshub import _hookspecs as hookspecs
from obshub._dist import UNKNOWN_VERSION, distribution_version
from obshub._exporters import Exporter, check_common_keywords
from obshub._logging import get_logger

__all__ = [
    "ExporterType",
    "PluginCommand",
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
class PluginCommand:
    """An ``obshub`` subcommand and the plugin that registered it."""

    name: str
    run: hookspecs.CommandRunner
    help: str
    arguments: Callable[[argparse.ArgumentParser], None] | None
    plugin: str
    distribution: str


#: The commands of the ``obshub`` CLI itself: a plugin cannot take these names.
RESERVED_COMMANDS = frozenset({"plugins", "check", "demo", "replay", "new-plugin", "help"})
_COMMAND_NAME = re.compile(r"[a-z][a-z0-9-]*")


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
        self._commands: dict[str, PluginCommand] = {}
        self._plugins: dict[str, PluginInfo] = {}
        # Plugins that come with no distribution info of pluggy's: the built-in
        # one, those handed in, entry points that belong to no installed distribution.
        self._unlisted: dict[str, tuple[str, str]] = {}
        self.errors: list[PluginError] = []
        #: Entry-point names not loaded because of OBSHUB_LOAD_PLUGINS / OBSHUB_DISABLE_PLUGINS.
        self.blocked: list[str] = []
        env = os.environ if environ is None else environ
        core_version = distribution_version("obshub")

        from obshub import _builtin as builtin

        self._pm.register(builtin, name=BUILTIN_PLUGIN)
        self._unlisted[BUILTIN_PLUGIN] = ("obshub", core_version)
        for plugin in extra_plugins:
            name = getattr(plugin, "__name__", type(plugin).__name__)
            self._pm.register(plugin, name=name)
            self._unlisted[name] = ("obshub", core_version)
        eps = list(
            metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
        )
        self._block(eps, env)
        self._load_entry_points(eps)
        self._register_all()
        #: Processor and sampler factories by name (see `_register_components`).
        self._components: dict[str, dict[str, Callable[..., Any]]] = {
            "processors": {},
            "samplers": {},
        }
        self._register_components()
        self._register_commands()

    def _block(self, eps: Iterable[metadata.EntryPoint], environ: Mapping[str, str]) -> None:
        """Block, in the plugin manager, the entry points the environment rules out."""
        allowed = _env_names("OBSHUB_LOAD_PLUGINS", environ)
        disabled = _env_names("OBSHUB_DISABLE_PLUGINS", environ) or set()
        for ep in eps:
            ruled_out = ep.name in disabled or (allowed is not None and ep.name not in allowed)
            # set_blocked() unregisters a plugin of that name: never the built-in one.
            if ruled_out and not self._pm.has_plugin(ep.name):
                self._pm.set_blocked(ep.name)

    def _load_entry_points(self, eps: Iterable[metadata.EntryPoint]) -> None:
        for ep in eps:
            dist = ep.dist.name if ep.dist is not None else None
            if self._pm.is_blocked(ep.name):
                if ep.name not in self.blocked:
                    self.blocked.append(ep.name)
                continue
            if self._pm.has_plugin(ep.name):
                self._error(ep.name, dist, "load", f"another plugin is already named {ep.name!r}")
                continue
            try:
                self._load(ep)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._error(ep.name, dist, "load", _describe(exc), exc)

    def _load(self, ep: metadata.EntryPoint) -> None:
        """Load one entry point (raises what loading it raised)."""
        if ep.dist is not None:
            # An installed entry point: pluggy's loader imports and registers it
            # and keeps its distribution (list_plugin_distinfo).
            self._pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
            if self._pm.has_plugin(ep.name):
                return
        # Handed in without a distribution, or found by pluggy under another group name.
        self._pm.register(ep.load(), name=ep.name)
        dist = ep.dist
        self._unlisted[ep.name] = (dist.name, dist.version) if dist else (ep.name, UNKNOWN_VERSION)

    def _distributions(self) -> dict[str, tuple[str, str]]:
        """Each registered plugin's distribution and version, by plugin name."""
        found = dict(self._unlisted)
        for plugin, dist in self._pm.list_plugin_distinfo():
            name = self._pm.get_name(plugin)
            if name is not None:
                found[name] = (dist.project_name, dist.version)
        return found

    def _implementations(self, hook: Any) -> Iterator[tuple[Any, str, str, str]]:
        """(implementation, plugin, distribution, version) of ``hook``, in registration order.

        The built-in plugin comes first, so a plugin cannot take over a
        built-in name (the clash is reported against the plugin). pluggy's own
        order puts trylast implementations first: this sorts by the order
        plugins were added instead.
        """
        order = {name: index for index, (name, _) in enumerate(self._pm.list_name_plugin())}
        dists = self._distributions()
        for impl in sorted(hook.get_hookimpls(), key=lambda i: order.get(i.plugin_name, 0)):
            dist, version = dists.get(impl.plugin_name, (impl.plugin_name, UNKNOWN_VERSION))
            yield impl, impl.plugin_name, dist, version

    def _call_guarded(
        self, impl: Any, register: Callable[..., None], plugin: str, dist: str
    ) -> None:
        """Call one hook implementation with ``register``; what it raises is recorded."""
        try:
            kwargs = {"register": register} if "register" in impl.argnames else {}
            impl.function(**kwargs)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._error(plugin, dist, "register", _describe(exc), exc)

    def _register_all(self) -> None:
        hook = self._pm.hook.obshub_register_exporters
        for impl, plugin_name, dist, version in self._implementations(hook):
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

            self._call_guarded(impl, register, plugin_name, dist)
            self._plugins[plugin_name] = PluginInfo(
                name=plugin_name, distribution=dist, version=version, exporters=tuple(registered)
            )

    def _register_commands(self) -> None:
        """Call each ``obshub_register_commands`` implementation inside its own guard."""
        hook = self._pm.hook.obshub_register_commands
        for impl, plugin_name, dist, _version in self._implementations(hook):

            def register(
                name: str,
                run: hookspecs.CommandRunner,
                *,
                help: str = "",
                arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                _plugin: str = plugin_name,
                _dist: str = dist,
            ) -> None:
                self._register_command(
                    PluginCommand(
                        name=name,
                        run=run,
                        help=help,
                        arguments=arguments,
                        plugin=_plugin,
                        distribution=_dist,
                    )
                )

            self._call_guarded(impl, register, plugin_name, dist)

    def _register_command(self, command: PluginCommand) -> None:
        if not isinstance(command.name, str) or not _COMMAND_NAME.fullmatch(command.name):
            raise ValueError(
                f"command name must be lowercase letters, digits and '-', got {command.name!r}"
            )
        if not callable(command.run):
            raise TypeError(f"run of command {command.name!r} is not callable")
        if command.arguments is not None and not callable(command.arguments):
            raise TypeError(f"arguments of command {command.name!r} is not callable")
        if command.name in RESERVED_COMMANDS:
            raise ValueError(f"command {command.name!r} is a built-in obshub command")
        existing = self._commands.get(command.name)
        if existing is not None and existing.run is not command.run:
            raise ValueError(
                f"command {command.name!r} is already registered by plugin {existing.plugin!r}"
            )
        self._commands[command.name] = command

    def _register_type(self, cls: Any, plugin: str, dist: str, version: str) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Exporter)):
            raise TypeError(f"register() takes an obshub.Exporter subclass, got {cls!r}")
        name = cls.name
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__}.name must be a non-empty string")
        check_common_keywords(cls)
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

    def _register_components(self) -> None:
        """Processor and sampler factories from the plugins' hooks, by name."""
        hooks = {
            "processors": self._pm.hook.obshub_register_processors,
            "samplers": self._pm.hook.obshub_register_samplers,
        }
        for kind, hook in hooks.items():
            found = self._components[kind]
            for impl, plugin_name, dist, _version in self._implementations(hook):

                def register(
                    name: str,
                    factory: Callable[..., Any],
                    _kind: str = kind,
                    _plugin: str = plugin_name,
                    _found: dict[str, Callable[..., Any]] = found,
                ) -> None:
                    if not isinstance(name, str) or not name or not callable(factory):
                        raise TypeError("register() takes a name and a callable factory")
                    if name in _found and _found[name] is not factory:
                        raise ValueError(f"{_kind[:-1]} {name!r} is already registered")
                    _found[name] = factory

                self._call_guarded(impl, register, plugin_name, dist)

    # -- the facade ---------------------------------------------------------------

    def processor_factory(self, name: str) -> Callable[..., Any] | None:
        """The processor factory a plugin registered under ``name``, or None."""
        return self._components["processors"].get(name)

    def sampler_factory(self, name: str) -> Callable[..., Any] | None:
        """The sampler factory a plugin registered under ``name``, or None."""
        return self._components["samplers"].get(name)

    def exporter_types(self) -> Mapping[str, ExporterType]:
        """Every registered exporter type by name."""
        return dict(self._types)

    def exporter_class(self, name: str) -> type[Exporter] | None:
        """The class registered under ``name``, or None."""
        found = self._types.get(name)
        return found.cls if found is not None else None

    def commands(self) -> Mapping[str, PluginCommand]:
        """Every ``obshub`` subcommand registered by a plugin, by name."""
        return dict(self._commands)

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
