"""The Langfuse SDK's environment switches, as defaults for the ``langfuse`` exporter.

Langfuse's own SDK reads ``LANGFUSE_TRACING_ENABLED``, ``LANGFUSE_SAMPLE_RATE``,
``LANGFUSE_DEBUG``, ``LANGFUSE_FLUSH_AT``, ``LANGFUSE_FLUSH_INTERVAL``,
``LANGFUSE_TIMEOUT`` and ``LANGFUSE_MEDIA_UPLOAD_ENABLED``; so does this exporter.
A setting given as an argument (or a config key, which arrives as one) always
wins; the variable fills in only what was not given, and a default the rest.
`resolve_switches` also says where each value came from (``obshub check``
shows it).

An unparsable variable is ignored (with a warning naming the variable and what
it expects), so that a value meant for another tool cannot stop the
application's hub from starting.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import Any

import attrs

from obshub import Batch
from obshub.plugin import DEFAULT_BATCH

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_TIMEOUT",
    "SWITCHES",
    "Switches",
    "parse_bool",
    "resolve_switches",
]

#: Seconds per request when neither ``timeout`` nor ``LANGFUSE_TIMEOUT`` says otherwise.
DEFAULT_TIMEOUT = 10.0
DEFAULT_SAMPLE_RATE = 1.0

#: The variable behind each setting (``batch.*`` and ``log_level``/``enabled`` are
#: the base class's common keys).
SWITCHES: Mapping[str, str] = types.MappingProxyType(
    {
        "enabled": "LANGFUSE_TRACING_ENABLED",
        "sample_rate": "LANGFUSE_SAMPLE_RATE",
        "log_level": "LANGFUSE_DEBUG",
        "batch.max_size": "LANGFUSE_FLUSH_AT",
        "batch.interval": "LANGFUSE_FLUSH_INTERVAL",
        "timeout": "LANGFUSE_TIMEOUT",
        "media_upload": "LANGFUSE_MEDIA_UPLOAD_ENABLED",
    }
)

#: Where a value came from: the constructor argument or config key, or the default.
ARGUMENT = "argument/config"
DEFAULT = "default"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(text: str) -> bool | None:
    """``true``/``1``/``yes``/``on`` or ``false``/``0``/``no``/``off`` (any case); else None."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _parse_positive_int(text: str) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 1 else None


def _parse_positive_float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _parse_ratio(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


_EXPECTED = {
    "enabled": "true or false",
    "sample_rate": "a number between 0 and 1",
    "log_level": "true or false",
    "batch.max_size": "an integer >= 1",
    "batch.interval": "a number of seconds > 0",
    "timeout": "a number of seconds > 0",
    "media_upload": "true or false",
}
_PARSERS: Mapping[str, Any] = {
    "enabled": parse_bool,
    "sample_rate": _parse_ratio,
    "log_level": parse_bool,
    "batch.max_size": _parse_positive_int,
    "batch.interval": _parse_positive_float,
    "timeout": _parse_positive_float,
    "media_upload": parse_bool,
}


@attrs.frozen
class Switches:
    """The resolved switches.

    ``common`` is what to pass to `obshub.Exporter.__init__` (the given
    common keys, plus ``enabled``, ``log_level`` and ``batch`` from the
    environment where not given). ``sources`` names, per setting, where its
    value came from: ``argument/config``, ``env LANGFUSE_…`` or ``default``;
    ``values`` holds the values themselves. ``ignored`` lists
    ``(variable, value, expected)`` for variables that could not be parsed.
    """

    common: Mapping[str, Any]
    timeout: float
    sample_rate: float
    media_upload: bool
    values: Mapping[str, Any]
    sources: Mapping[str, str]
    ignored: tuple[tuple[str, str, str], ...]

    @property
    def disabled_by_env(self) -> bool:
        """True when ``LANGFUSE_TRACING_ENABLED`` (not an argument) turned the exporter off."""
        return self.values["enabled"] is False and self.sources["enabled"].startswith("env ")


def resolve_switches(
    common: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    timeout: float | None,
    sample_rate: float | None,
    media_upload: bool | None,
) -> Switches:
    """Fill what the caller did not give from the environment, then from the defaults.

    ``common`` holds the common keys exactly as given (a key absent or None
    was not given). Values given are passed through unvalidated: the
    exporter and its base class validate them with the key in the message.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    ignored: list[tuple[str, str, str]] = []

    def from_env(setting: str) -> Any:
        var = SWITCHES[setting]
        raw = environ.get(var)
        if raw is None or not raw.strip():
            return None
        parsed = _PARSERS[setting](raw)
        if parsed is None:
            ignored.append((var, raw, _EXPECTED[setting]))
            return None
        sources[setting] = f"env {var}"
        return parsed

    def pick(setting: str, given: Any, default: Any) -> Any:
        if given is not None:
            sources[setting] = ARGUMENT
            values[setting] = given
            return given
        found = from_env(setting)
        if found is None:
            sources[setting] = DEFAULT
            found = default
        values[setting] = found
        return found

    out = dict(common)
    out["enabled"] = pick("enabled", common.get("enabled"), True)
    debug_given = common.get("log_level")
    if debug_given is not None:
        pick("log_level", debug_given, "info")
    else:
        debug = from_env("log_level")
        if debug is None:
            sources["log_level"] = DEFAULT
        values["log_level"] = "debug" if debug else "info"
        out["log_level"] = values["log_level"]
    out["batch"] = _batch(common.get("batch"), pick)
    resolved_timeout = pick("timeout", timeout, DEFAULT_TIMEOUT)
    resolved_rate = pick("sample_rate", sample_rate, DEFAULT_SAMPLE_RATE)
    resolved_media = pick("media_upload", media_upload, True)
    return Switches(
        common=out,
        timeout=resolved_timeout,
        sample_rate=resolved_rate,
        media_upload=resolved_media,
        values=values,
        sources=sources,
        ignored=tuple(ignored),
    )


def _batch(given: Any, pick: Any) -> Any:
    """The ``batch`` to pass on: as given when complete, else completed per key."""
    if isinstance(given, Batch):
        pick("batch.max_size", given.max_size, None)
        pick("batch.interval", given.interval, None)
        return given
    if given is not None and not isinstance(given, Mapping):
        return given  # the base class names the mistake
    table = dict(given or {})
    table["max_size"] = pick("batch.max_size", table.get("max_size"), DEFAULT_BATCH.max_size)
    table["interval"] = pick("batch.interval", table.get("interval"), DEFAULT_BATCH.interval)
    return table
