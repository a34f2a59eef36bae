"""The exporter's settings: from arguments, else the ``OTEL_EXPORTER_OTLP_*`` variables.

The environment variables are the ones every OpenTelemetry SDK reads, with
the precedence the OpenTelemetry specification gives them: the traces-specific
variable wins over the generic one, and an explicit setting wins over both.
Only the endpoint is special: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is the
full traces URL, used as it is, while ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a
base URL to which ``/v1/traces`` is appended.

Header values may be secrets: nothing here puts one in an error message or a
log event (invalid entries are reported by position, never by content).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

import obshub
from obshub.plugin import positive_seconds

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_COMPRESSION",
    "DEFAULT_ENDPOINT",
    "DEFAULT_PROTOCOL",
    "DEFAULT_TIMEOUT",
    "ENV",
    "PROTOCOLS",
    "RESERVED_HEADERS",
    "TRACES_PATH",
    "Settings",
    "parse_key_values",
    "resolve",
]

#: Where OTLP/HTTP receivers take traces, below their base URL.
TRACES_PATH = "/v1/traces"
#: A local OpenTelemetry Collector's OTLP/HTTP receiver.
DEFAULT_ENDPOINT = f"http://localhost:4318{TRACES_PATH}"
DEFAULT_TIMEOUT = 10.0
DEFAULT_COMPRESSION = "gzip"
DEFAULT_PROTOCOL = "http/protobuf"
COMPRESSIONS = ("gzip", "none")
PROTOCOLS = ("http/protobuf", "http/json")
#: Headers the exporter sets itself from ``protocol`` and ``compression``.
RESERVED_HEADERS = frozenset({"content-type", "content-encoding", "content-length"})

#: The environment variables of each setting, the one that wins first.
ENV: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {
        "endpoint": ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        "headers": ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
        "compression": (
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ),
        "timeout": ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
        "protocol": ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        "resource_attributes": ("OTEL_RESOURCE_ATTRIBUTES",),
    }
)
_BASE_ENDPOINT_VAR = "OTEL_EXPORTER_OTLP_ENDPOINT"
# RFC 9110 token: what a header name may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE_CHARS = re.compile(r"[\r\n\x00]")

#: ``warn(event, **keys)``: how settings report what they ignored.
Warn = Callable[..., None]


@attrs.frozen
class Settings:
    """Resolved settings. ``sources`` says where each came from (``argument``,
    ``env <VAR>`` or ``default``); ``headers`` never shows up in a repr."""

    endpoint: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    compression: str
    timeout: float
    protocol: str
    resource_attributes: Mapping[str, Any]
    sources: Mapping[str, str]


def parse_key_values(raw: str) -> tuple[dict[str, str], list[int]]:
    """Parse the ``key1=value1,key2=value2`` form of the OTLP environment variables.

    Values are percent-decoded and both sides stripped of blanks; empty items
    are skipped. Returns the pairs (a later key wins) and the 1-based
    positions of malformed items (no ``=``, or an empty key).
    """
    pairs: dict[str, str] = {}
    malformed: list[int] = []
    for position, item in enumerate(raw.split(","), start=1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            malformed.append(position)
            continue
        pairs[key] = unquote(value.strip())
    return pairs, malformed


def _first_env(setting: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    for var in ENV[setting]:
        value = environ.get(var, "").strip()
        if value:
            return var, value
    return None


def _check_url(url: str, key: str, origin: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        # The value is not echoed: it may hold user info or a token in its query.
        where = "" if origin == "argument" else f" (from {origin})"
        raise obshub.ConfigError(
            f"must be an http:// or https:// URL such as {DEFAULT_ENDPOINT}{where}", key
        )
    return url


def _endpoint(given: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    if given is not None:
        if not isinstance(given, str):
            raise obshub.ConfigError(f"must be a string, got {type(given).__name__}", "endpoint")
        if given.strip():
            return _check_url(given.strip(), "endpoint", "argument"), "argument"
    found = _first_env("endpoint", environ)
    if found is None:
        return DEFAULT_ENDPOINT, "default"
    var, value = found
    if var == _BASE_ENDPOINT_VAR:
        # The specification: the generic variable is a base URL, and the
        # signal's path is appended to it (after any path it already has).
        value = value.rstrip("/") + TRACES_PATH
    return _check_url(value, "endpoint", f"env {var}"), f"env {var}"


def _header_problem(name: str, value: str) -> str | None:
    if not _TOKEN.match(name):
        return "not a valid header name"
    if name.lower() in RESERVED_HEADERS:
        return "set by the exporter from protocol and compression"
    if _BAD_VALUE_CHARS.search(value):
        return "the value holds a line break or NUL"
    return None


def _headers(
    given: Mapping[str, Any] | None, environ: Mapping[str, str], warn: Warn
) -> tuple[dict[str, str], str]:
    merged: dict[str, str] = {}
    sources: list[str] = []
    # Generic first, so the traces-specific variable overrides it key by key.
    for var in reversed(ENV["headers"]):
        raw = environ.get(var, "")
        if not raw.strip():
            continue
        pairs, malformed = parse_key_values(raw)
        if malformed:
            warn("env_headers_ignored", variable=var, positions=malformed, reason="expected k=v")
        for name, value in pairs.items():
            problem = _header_problem(name, value)
            if problem is not None:
                warn("env_header_ignored", variable=var, header=name.lower(), reason=problem)
                continue
            merged[name.lower()] = value
        sources.append(f"env {var}")
    if given is not None:
        if not isinstance(given, Mapping):
            raise obshub.ConfigError(f"must be a table, got {type(given).__name__}", "headers")
        for name, value in given.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise obshub.ConfigError(
                    f"must be a string, got {type(value).__name__}", f"headers.{name}"
                )
            problem = _header_problem(name, value)
            if problem is not None:
                raise obshub.ConfigError(problem, f"headers.{name}")
            merged[name.lower()] = value
        sources.append("argument")
    return merged, " + ".join(sources) or "default"


def _choice(
    setting: str,
    given: str | None,
    allowed: tuple[str, ...],
    default: str,
    environ: Mapping[str, str],
    warn: Warn,
) -> tuple[str, str]:
    if given is not None:
        if given not in allowed:
            hint = ""
            if setting == "protocol" and given == "grpc":
                hint = " (obshub-otlp speaks OTLP/HTTP: use http/protobuf and port 4318)"
            raise obshub.ConfigError(f"must be one of {', '.join(allowed)}{hint}", setting)
        return given, "argument"
    found = _first_env(setting, environ)
    if found is None:
        return default, "default"
    var, value = found
    value = value.lower()
    if value not in allowed:
        warn(
            "env_setting_ignored",
            variable=var,
            value=value,
            expected=list(allowed),
            using=default,
        )
        return default, "default"
    return value, f"env {var}"


def _timeout(given: float | None, environ: Mapping[str, str], warn: Warn) -> tuple[float, str]:
    if given is not None:
        return positive_seconds(given, "timeout"), "argument"
    found = _first_env("timeout", environ)
    if found is None:
        return DEFAULT_TIMEOUT, "default"
    var, value = found
    try:
        millis = float(value)
    except ValueError:
        millis = 0.0
    if not millis > 0 or millis == float("inf"):
        warn("env_setting_ignored", variable=var, value=value, expected="milliseconds > 0")
        return DEFAULT_TIMEOUT, "default"
    # The variables are in milliseconds; the setting is in seconds like every obshub timeout.
    return millis / 1000, f"env {var}"


def _attribute_value_ok(value: object) -> bool:
    scalar = (str, bool, int, float)
    if isinstance(value, scalar):
        return True
    if isinstance(value, (list, tuple)):
        return all(isinstance(item, scalar) for item in value)
    return False


def _resource_attributes(
    given: Mapping[str, Any] | None, environ: Mapping[str, str], warn: Warn
) -> tuple[dict[str, Any], str]:
    merged: dict[str, Any] = {}
    sources: list[str] = []
    (var,) = ENV["resource_attributes"]
    raw = environ.get(var, "")
    if raw.strip():
        pairs, malformed = parse_key_values(raw)
        if malformed:
            warn("env_resource_ignored", variable=var, positions=malformed, reason="expected k=v")
        merged.update(pairs)
        sources.append(f"env {var}")
    if given is not None:
        if not isinstance(given, Mapping):
            raise obshub.ConfigError(
                f"must be a table, got {type(given).__name__}", "resource_attributes"
            )
        for key, value in given.items():
            if not isinstance(key, str) or not key:
                raise obshub.ConfigError("keys must be non-empty strings", "resource_attributes")
            if not _attribute_value_ok(value):
                raise obshub.ConfigError(
                    "must be a string, number, boolean or a list of them, "
                    f"got {type(value).__name__}",
                    f"resource_attributes.{key}",
                )
            merged[key] = list(value) if isinstance(value, tuple) else value
        sources.append("argument")
    return merged, " + ".join(sources) or "default"


def resolve(
    *,
    endpoint: str | None,
    headers: Mapping[str, Any] | None,
    compression: str | None,
    timeout: float | None,
    protocol: str | None,
    resource_attributes: Mapping[str, Any] | None,
    environ: Mapping[str, str],
    warn: Warn,
) -> Settings:
    """Resolve every setting: the argument if given, else its variables, else the default.

    Headers and resource attributes merge key by key instead (the generic
    variable, then the traces one, then the argument; the last one wins).
    Raises `obshub.ConfigError` for an invalid argument or endpoint; other
    invalid variables are reported through ``warn`` and ignored, as the
    OpenTelemetry specification asks of SDKs.
    """
    endpoint_value, endpoint_source = _endpoint(endpoint, environ)
    header_values, header_source = _headers(headers, environ, warn)
    compression_value, compression_source = _choice(
        "compression", compression, COMPRESSIONS, DEFAULT_COMPRESSION, environ, warn
    )
    timeout_value, timeout_source = _timeout(timeout, environ, warn)
    protocol_value, protocol_source = _choice(
        "protocol", protocol, PROTOCOLS, DEFAULT_PROTOCOL, environ, warn
    )
    resource, resource_source = _resource_attributes(resource_attributes, environ, warn)
    return Settings(
        endpoint=endpoint_value,
        headers=types.MappingProxyType(header_values),
        compression=compression_value,
        timeout=timeout_value,
        protocol=protocol_value,
        resource_attributes=types.MappingProxyType(resource),
        sources=types.MappingProxyType(
            {
                "endpoint": endpoint_source,
                "headers": header_source,
                "compression": compression_source,
                "timeout": timeout_source,
                "protocol": protocol_source,
                "resource_attributes": resource_source,
            }
        ),
    )
