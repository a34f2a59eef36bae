"""Configuration: TOML files or dicts of the same shape, validated up front.

Every mistake is a `ConfigError` raised when the hub is built, naming
the full key path (``configs.prod.exporters.langfuse.batch.max_size: must be
>= 1, got 0``). Unknown keys are rejected. ``${VAR}`` and ``${VAR:-default}``
in any string value are replaced from the environment first. An exporter whose
constructor fails for another reason than its settings is disabled instead
(see `obshub._failed`).
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from obshub._config_errors import ConfigError, ErrorCollector, type_name
from obshub._exporters import Exporter, check_initialised
from obshub._failed import exporter_failed
from obshub._plugins import PluginRegistry
from obshub._processors import SpanProcessor, build_processors, resolve_processors
from obshub._sampling import Sampler

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG",
    "DEFAULT_STORE_EXPORTER",
    "Config",
    "ConfigError",
    "default_config",
    "discover_config",
    "interpolate",
    "load_source",
]

#: The environment variable naming a config file for the CLI and ``configure()``.
CONFIG_ENV_VAR = "OBSHUB_CONFIG"
#: The file looked for in the working directory.
DEFAULT_CONFIG_FILE = "obshub.toml"

#: The built-in default: a readable tree on the console and a JSONL file.
DEFAULT_CONFIG: Mapping[str, Any] = {
    "default": "default",
    "configs": {
        "default": {
            "service_name": "obshub-demo",
            "exporters": {
                "console": {"type": "console", "realtime": True},
                "jsonl": {"type": "jsonl", "path": "obshub-traces.jsonl", "realtime": True},
            },
        }
    },
}

#: The exporter the built-in default adds when an exporter type ``sqlite`` is installed
#: (the obshub-studio plugin): every trace also lands in a store ``obshub studio`` opens.
DEFAULT_STORE_EXPORTER: Mapping[str, Any] = {
    "type": "sqlite",
    "path": "obshub-traces.db",
    "realtime": True,
}


def default_config(registry: PluginRegistry | None = None) -> Mapping[str, Any]:
    """The built-in default: `DEFAULT_CONFIG`, plus the ``studio`` store when one is installed."""
    if registry is None:
        from obshub._plugins import get_registry

        registry = get_registry()
    if registry.exporter_class(DEFAULT_STORE_EXPORTER["type"]) is None:
        return DEFAULT_CONFIG
    config = DEFAULT_CONFIG["configs"]["default"]
    exporters = {**config["exporters"], "studio": dict(DEFAULT_STORE_EXPORTER)}
    return {**DEFAULT_CONFIG, "configs": {"default": {**config, "exporters": exporters}}}


_TOP_KEYS = ("default", "configs", "shutdown_timeout")
#: Environment variable overriding the seconds shutdown (and so exit) may wait.
SHUTDOWN_TIMEOUT_ENV_VAR = "OBSHUB_SHUTDOWN_TIMEOUT"
_CONFIG_KEYS = (
    "service_name",
    "sampling",
    "redact",
    "processors",
    "pii",
    "pii_action",
    "exporters",
    "enabled",
)
#: The keys of a config that are also taken by each exporter, for that sink alone.
_CONTROL_KEYS = ("sampling", "redact", "processors", "pii", "pii_action")
_VAR = re.compile(r"\$(\$)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


@attrs.frozen
class Config:
    """One named configuration, ready to run: where a trace's events go."""

    name: str
    service_name: str
    sampler: Sampler = attrs.field(factory=Sampler)
    processors: tuple[SpanProcessor, ...] = ()
    exporters: tuple[Exporter, ...] = ()


def load_source(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read a TOML file, or copy a mapping, into a plain dict."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        with path.open("rb") as fh:
            loaded: dict[str, Any] = tomllib.load(fh)
            return loaded
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def discover_config(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> tuple[str | Mapping[str, Any], str]:
    """The config to use and where it came from.

    ``--config FILE``, else ``$OBSHUB_CONFIG``, else ``./obshub.toml``, else
    the built-in default.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return os.fspath(explicit), f"--config {os.fspath(explicit)}"
    if env.get(CONFIG_ENV_VAR):
        return env[CONFIG_ENV_VAR], f"${CONFIG_ENV_VAR}={env[CONFIG_ENV_VAR]}"
    local = Path(cwd or ".") / DEFAULT_CONFIG_FILE
    if local.is_file():
        return str(local), str(local)
    return default_config(), "built-in default"


def interpolate(value: Any, environ: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``."""
    if isinstance(value, str):
        if "$" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(1):
                return "$"
            name, default = match.group(2), match.group(3)
            found = environ.get(name)
            if found is None or (found == "" and default is not None):
                if default is not None:
                    return default
                raise ConfigError(f"environment variable {name} is not set", path or None)
            return found

        return _VAR.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, environ, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _reject_unknown(table: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    errors = ErrorCollector()
    for key in table:
        if key not in allowed:
            errors.add(f"unknown key (expected one of: {', '.join(allowed)})", _join(path, key))
    errors.raise_if_any()


def default_service_name(environ: Mapping[str, str]) -> str:
    """``$OTEL_SERVICE_NAME`` or OpenTelemetry's ``unknown_service``."""
    return environ.get("OTEL_SERVICE_NAME") or "unknown_service"


def build_configs(
    data: Mapping[str, Any],
    registry: PluginRegistry,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Config], str | None]:
    """Validate a whole config document; returns the configs and the default name."""
    env = os.environ if environ is None else environ
    if not isinstance(data, Mapping):
        raise ConfigError("the config must be a table")
    errors = ErrorCollector()
    with errors.check():
        _reject_unknown(data, _TOP_KEYS, "")
    raw_configs = data.get("configs")
    if not isinstance(raw_configs, Mapping):
        if raw_configs is None:
            errors.add("required: at least one [configs.<name>] table", "configs")
        else:
            errors.add(f"must be a table, got {_type_name(raw_configs)}", "configs")
        raise ConfigError.combine(errors.errors)
    configs: dict[str, Config] = {}
    with errors.check():
        configs = build_named_configs(raw_configs, registry, env)
    default: Any = None
    with errors.check():
        default = interpolate(data.get("default"), env, "default")
        if default is not None:
            if not isinstance(default, str):
                raise ConfigError(f"must be a string, got {_type_name(default)}", "default")
            # A default whose own table has errors is reported by those errors only.
            if default not in configs and not (default in raw_configs and errors.errors):
                known = ", ".join(configs) or "none"
                raise ConfigError(f"no config named {default!r} (configs: {known})", "default")
    errors.raise_if_any()
    return configs, default


def shutdown_timeout_of(
    data: Mapping[str, Any], environ: Mapping[str, str] | None, fallback: float
) -> float:
    """``$OBSHUB_SHUTDOWN_TIMEOUT``, else the document's ``shutdown_timeout``, else ``fallback``."""
    env = os.environ if environ is None else environ
    raw: Any = env.get(SHUTDOWN_TIMEOUT_ENV_VAR)
    key = SHUTDOWN_TIMEOUT_ENV_VAR
    if raw is None:
        raw = interpolate(data.get("shutdown_timeout"), env, "shutdown_timeout")
        key = "shutdown_timeout"
    if raw is None:
        return fallback
    try:
        value = float(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ConfigError("must be a number of seconds", key) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError("must be a number of seconds >= 0", key)
    return float(value)


def build_named_configs(
    raw_configs: Mapping[str, Any], registry: PluginRegistry, environ: Mapping[str, str]
) -> dict[str, Config]:
    """Build every enabled ``[configs.<name>]`` table (tables or ready Config objects)."""
    configs: dict[str, Config] = {}
    errors = ErrorCollector()
    for name, table in raw_configs.items():
        path = f"configs.{name}"
        if isinstance(table, Config):
            configs[str(name)] = table
            continue
        with errors.check():
            if not isinstance(table, Mapping):
                raise ConfigError(f"must be a table, got {_type_name(table)}", path)
            if is_enabled(table, environ, path):
                configs[str(name)] = build_config(str(name), table, registry, environ, path)
    errors.raise_if_any()
    return configs


_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


def is_enabled(table: Mapping[str, Any], environ: Mapping[str, str], path: str) -> bool:
    """The table's ``enabled`` key, interpolated first (``"${FEATURE_X:-false}"`` works).

    A disabled table is not interpolated further, so the variables it names
    need not be set.
    """
    value = interpolate(table.get("enabled", True), environ, f"{path}.enabled")
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {_type_name(value)}", f"{path}.enabled")
    return value


def build_config(
    name: str,
    table: Mapping[str, Any],
    registry: PluginRegistry,
    environ: Mapping[str, str],
    path: str,
) -> Config:
    """Validate one ``[configs.<name>]`` table and build its exporters."""
    raw_exporters = table.get("exporters", {})
    errors = ErrorCollector()
    interpolated: dict[str, Any] = {}
    for k, v in table.items():
        if k != "exporters":
            with errors.check():
                interpolated[k] = interpolate(v, environ, f"{path}.{k}")
    table = interpolated
    with errors.check():
        _reject_unknown(table, _CONFIG_KEYS, path)
    service_name = table.get("service_name", default_service_name(environ))
    if not isinstance(service_name, str) or not service_name:
        errors.add("must be a non-empty string", f"{path}.service_name")
    sampler = Sampler()
    try:
        sampler = Sampler.from_config(table.get("sampling"), registry.sampler_factory)
    except ConfigError as exc:
        errors.errors.append(exc.within(f"{path}.sampling"))
    processors: tuple[SpanProcessor, ...] = ()
    try:
        processors = build_processors(
            redact=table.get("redact", False),
            pii=table.get("pii"),
            pii_action=table.get("pii_action", "mask"),
            processors=table.get("processors"),
            named=registry.processor_factory,
        )
    except ConfigError as exc:
        errors.errors.append(exc.within(path))
    exporters: list[Exporter] = []
    with errors.check():
        exporters = build_exporters(raw_exporters, registry, f"{path}.exporters", environ)
    errors.raise_if_any()
    return Config(
        name=name,
        service_name=service_name,
        sampler=sampler,
        processors=processors,
        exporters=tuple(exporters),
    )


def _resolve_controls(table: dict[str, Any], registry: PluginRegistry, path: str) -> None:
    """Turn the names of an exporter table's ``processors`` and ``sampling`` into objects.

    The exporter base class checks the rest of these keys itself.
    """
    if table.get("processors") is not None:
        try:
            table["processors"] = resolve_processors(
                table["processors"], registry.processor_factory
            )
        except ConfigError as exc:
            raise exc.within(f"{path}.processors") from None
    sampling = table.get("sampling")
    if isinstance(sampling, Mapping) and "type" in sampling:
        try:
            table["sampling"] = Sampler.from_config(sampling, registry.sampler_factory)
        except ConfigError as exc:
            raise exc.within(f"{path}.sampling") from None


def build_exporters(
    raw: Any,
    registry: PluginRegistry,
    path: str,
    environ: Mapping[str, str] | None = None,
) -> list[Exporter]:
    """Exporters from a table of instance tables, or a list of instances/tables.

    Tables with ``enabled = false`` are not built (nor interpolated). Instances
    built in code with ``enabled=False`` are kept, so that ``obshub check``
    lists them, but the hub gives them no channel.
    """
    env = os.environ if environ is None else environ
    built: list[Exporter] = []
    if isinstance(raw, Mapping):
        entries: list[tuple[str, Any, str]] = [(str(k), v, f"{path}.{k}") for k, v in raw.items()]
    elif isinstance(raw, (list, tuple)):
        entries = []
        for i, item in enumerate(raw):
            item_name = getattr(item, "instance_name", None) if isinstance(item, Exporter) else None
            if isinstance(item, Mapping):
                item_name = str(item.get("name") or item.get("type") or "")
            entries.append((item_name or "", item, f"{path}[{i}]"))
    else:
        raise ConfigError(f"must be a table or a list, got {_type_name(raw)}", path)
    seen: dict[str, str] = {}
    errors = ErrorCollector()
    for instance_name, spec, item_path in entries:
        exporter: Exporter | None = None
        with errors.check():
            exporter = _build_entry(instance_name, spec, item_path, raw, registry, env)
        if exporter is None:
            continue
        if exporter.instance_name in seen:
            errors.add(
                f"duplicate exporter name {exporter.instance_name!r} "
                f"(also at {seen[exporter.instance_name]}); give each instance its own name: "
                "the table key in a config file, `instance_name=` for an exporter built in code",
                item_path,
            )
            continue
        seen[exporter.instance_name] = item_path
        built.append(exporter)
    errors.raise_if_any()
    return built


def _build_entry(
    instance_name: str,
    spec: Any,
    item_path: str,
    raw: Any,
    registry: PluginRegistry,
    env: Mapping[str, str],
) -> Exporter | None:
    if isinstance(spec, Exporter):
        try:
            check_initialised(spec)
        except TypeError as exc:
            raise ConfigError(str(exc), item_path) from None
        return spec
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"must be an exporter table or an obshub.Exporter, got {_type_name(spec)}",
            item_path,
        )
    if not is_enabled(spec, env, item_path):
        return None
    errors = ErrorCollector()
    table: dict[str, Any] = {}
    for k, v in spec.items():
        with errors.check():
            table[k] = interpolate(v, env, f"{item_path}.{k}")
    errors.raise_if_any()
    if isinstance(raw, (list, tuple)):
        table.pop("name", None)
    # Keys whose value came from the environment are converted to the key's type.
    from_env = {str(k) for k, v in spec.items() if isinstance(v, str) and "${" in v}
    return build_exporter(instance_name, table, registry, item_path, from_env=from_env)


def build_exporter(
    instance_name: str,
    table: dict[str, Any],
    registry: PluginRegistry,
    path: str,
    from_env: frozenset[str] | set[str] = frozenset(),
) -> Exporter | None:
    """Build one exporter from its (interpolated, enabled) config table.

    The string values of the keys in ``from_env`` (set by ``${VAR}``) are
    converted to the key's declared type: ``"${DEBUG:-false}"`` gives a boolean
    to a boolean key, ``"${BATCH:-100}"`` an integer to an integer key.
    """
    type_name = table.pop("type", instance_name)
    if not isinstance(type_name, str) or not type_name:
        raise ConfigError("must be a non-empty string", f"{path}.type")
    if "instance_name" in table:
        raise ConfigError("not a config key: the table's key names the instance", path)
    cls = registry.exporter_class(type_name)
    if cls is None:
        raise ConfigError(_unknown_type_message(type_name, registry), f"{path}.type")
    # enabled = false never gets here; an explicit true is passed on, so that it
    # wins over an exporter's own environment switch (e.g. LANGFUSE_TRACING_ENABLED).
    if table.pop("enabled", None) is True:
        table["enabled"] = True
    _convert_from_env(cls, table, from_env)
    _check_keys(cls, table, path)
    _resolve_controls(table, registry, path)
    name = instance_name or type_name
    try:
        exporter = cls(instance_name=name, **table)
        check_initialised(exporter)
        return exporter
    except ConfigError as exc:
        raise exc.within(path) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid settings for {type_name!r}: {exc}", path) from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        # Not a configuration mistake but the plugin's own failure: that exporter
        # is disabled (and reported), the application and the other exporters run.
        return exporter_failed(name, type_name, path, exc, table, cls.secret_keys)


#: Exporter types of the first-party plugins, and the extra that installs each.
FIRST_PARTY_TYPES: Mapping[str, str] = {
    "langfuse": "obshub[langfuse]",
    "otlp": "obshub[otlp]",
    "sqlite": "obshub[studio]",
}


def _unknown_type_message(type_name: str, registry: PluginRegistry) -> str:
    """Why ``type_name`` is unknown, and what to do; only known distributions are recommended."""
    error = registry.error_for(type_name)
    if error is not None:
        return (
            f"exporter type {type_name!r} is provided by plugin {error.plugin!r}, which failed "
            f"to load ({error.error}); run `obshub plugins` for details"
        )
    installed = sorted(registry.exporter_types())
    known = ", ".join(installed) or "none"
    if type_name in registry.blocked:
        return (
            f"exporter type {type_name!r}: plugin {type_name!r} is installed but not loaded "
            f"(OBSHUB_LOAD_PLUGINS / OBSHUB_DISABLE_PLUGINS); installed types: {known}"
        )
    if type_name in FIRST_PARTY_TYPES:
        return (
            f"exporter type {type_name!r} is not installed; install it with: "
            f"pip install '{FIRST_PARTY_TYPES[type_name]}' (installed types: {known})"
        )
    candidates = sorted(set(installed) | set(FIRST_PARTY_TYPES))
    close = difflib.get_close_matches(type_name.lower(), candidates, n=1, cutoff=0.75)
    if close and close[0] in installed:
        return (
            f"unknown exporter type {type_name!r}; did you mean {close[0]!r}? "
            f"(installed types: {known})"
        )
    if close:
        return (
            f"unknown exporter type {type_name!r}; did you mean {close[0]!r}? (not installed: "
            f"pip install '{FIRST_PARTY_TYPES[close[0]]}'; installed types: {known})"
        )
    return (
        f"unknown exporter type {type_name!r} (installed types: {known}); a third-party type "
        "needs its plugin installed: check its name in the plugin's documentation, then run "
        "`obshub plugins`"
    )


def _convert_from_env(cls: type[Exporter], table: dict[str, Any], from_env: Any) -> None:
    """Convert strings set by ``${VAR}`` to the boolean or number their key declares."""
    if not from_env:
        return
    hints = _type_hints(cls)
    for key in from_env:
        value = table.get(key)
        hint = hints.get(key)
        if not isinstance(value, str) or hint is None or _matches(value, hint):
            continue
        converted = _from_string(value, hint)
        if converted is not None:
            table[key] = converted


def _from_string(text: str, hint: Any) -> Any:
    """``text`` as the first of bool, int, float that ``hint`` accepts and it parses as."""
    word = text.strip().lower()
    if _matches(True, hint):
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    if _matches(0, hint):
        try:
            return int(word)
        except ValueError:
            pass
    if _matches(0.5, hint):
        try:
            return float(word)
        except ValueError:
            pass
    return None


def exporter_parameters(cls: type[Exporter]) -> dict[str, inspect.Parameter]:
    """The keyword arguments an exporter class accepts, through its whole MRO."""
    params: dict[str, inspect.Parameter] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for name, param in inspect.signature(init).parameters.items():
            if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            params[name] = param
    return params


def _check_keys(cls: type[Exporter], table: Mapping[str, Any], path: str) -> None:
    params = exporter_parameters(cls)
    allowed = sorted(n for n in params if n != "instance_name")
    errors = ErrorCollector()
    for key in table:
        if key not in params or key == "instance_name":
            close = difflib.get_close_matches(key, allowed, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            errors.add(
                f"unknown key for exporter type {cls.name!r} ({guess}expected one of: "
                f"{', '.join(allowed)})",
                f"{path}.{key}",
            )
    hints = _type_hints(cls)
    for key, value in table.items():
        hint = hints.get(key)
        if key in params and hint is not None and not _matches(value, hint):
            errors.add(f"must be {_describe_hint(hint)}, got {_type_name(value)}", f"{path}.{key}")
    for name, param in params.items():
        if (
            param.default is inspect.Parameter.empty
            and name not in table
            and param.kind is param.KEYWORD_ONLY
        ):
            errors.add(f"required by exporter type {cls.name!r}", f"{path}.{name}")
    errors.raise_if_any()


def _type_hints(cls: type[Exporter]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            hints.update(typing.get_type_hints(init))
        except Exception:
            # Unresolvable annotations: the exporter validates its own values.
            continue
    hints.pop("return", None)
    return hints


def _type_name(value: Any) -> str:
    return type_name(value)


def _matches(value: Any, hint: Any) -> bool:
    """A forgiving check of config values against simple annotations."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or _is_union_type(hint):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, Sequence, tuple) or hint in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return False
        if args and origin is not tuple:
            return all(_matches(v, args[0]) for v in value)
        return True
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    if origin is typing.Literal:
        return value in args
    if origin is os.PathLike or hint is os.PathLike:
        return isinstance(value, (str, os.PathLike))
    if isinstance(hint, type):
        return isinstance(value, (hint, Mapping))
    return True


def _is_union_type(hint: Any) -> bool:
    return isinstance(hint, types.UnionType)


def _describe_hint(hint: Any) -> str:
    args = typing.get_args(hint)
    if args and (typing.get_origin(hint) is typing.Union or _is_union_type(hint)):
        names = [_describe_hint(a) for a in args if a is not type(None)]
        return " or ".join(names)
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if origin in (list, Sequence, tuple):
        return "a list"
    if origin in (dict, Mapping):
        return "a table"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return getattr(hint, "__name__", str(hint))
