"""Turning whatever the application hands us into JSON-safe values.

Runs on exporter worker threads, never on the application thread. It never
raises: a value that cannot be represented is replaced by a marker string that
says why (``<cycle>``, ``<unrepresentable Foo>``, ``...[truncated 1234 chars]``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

import attrs

from obshub._frozen import frozen_dict, frozen_list
from obshub._json import compact_json
from obshub.media import Media, MediaValue, parse_data_uri
from obshub.spans import Span, field_info

__all__ = [
    "Limits",
    "clean_span",
    "clean_text",
    "compact_json",
    "describe",
    "printable",
    "to_jsonable",
]


@attrs.frozen
class Limits:
    """How much of a value is kept.

    ``max_string`` characters per string, ``max_items`` entries per list or
    dict, ``max_depth`` levels of nesting, ``max_bytes`` bytes shown of a bytes
    value (as base64) before it is summarised. ``max_media_bytes`` bounds the
    content a `obshub.media.MediaValue` keeps for exporters that upload media
    (bytes, long data URIs); larger content becomes its marker alone.
    """

    max_string: int = 100_000
    max_items: int = 2_000
    max_depth: int = 24
    max_bytes: int = 4_096
    max_media_bytes: int = 20 * 1024 * 1024


DEFAULT_LIMITS = Limits()

#: In a conversion's ``seen`` set (the ids of the containers being converted,
#: to find cycles), this marker asks for read-only dicts and lists. No object
#: id is negative, and one set lookup per container is all it costs.
_FROZEN = -1


def to_jsonable(value: Any, limits: Limits = DEFAULT_LIMITS, *, frozen: bool = False) -> Any:
    """A copy of ``value`` made only of dict/list/str/int/float/bool/None.

    Strings are truncated with a marker, NaN and infinities become strings,
    bytes become base64 (or a summary when large), datetimes ISO 8601, sets
    sorted lists, dataclasses/attrs/pydantic objects dicts, cycles and
    unrepresentable objects markers. Media (non-text bytes, data URIs over
    ``max_string``, `obshub.Media`) become `obshub.media.MediaValue` strings.
    With ``frozen=True`` the dicts and lists are the read-only
    `obshub.spans.FrozenDict` and `FrozenList` (built in the same pass: what
    span snapshots hold).
    """
    try:
        return _convert(value, limits, 0, {_FROZEN} if frozen else set())
    except Exception as exc:  # a last guard: callers rely on this never raising
        return f"<unserializable {type(value).__name__}: {type(exc).__name__}>"


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so it has a UTF-8 form.

    Python strings may hold them (from ``surrogateescape`` decoding, broken
    JSON, some C extensions); UTF-8 files, protobuf and HTTP bodies may not.
    ``str.isascii()`` is constant-time, so ASCII text costs nothing here.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16 with surrogatepass: a lone surrogate becomes U+FFFD,
        # a valid pair (only possible via surrogatepass input) is kept as is.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def printable(value: Any, how: Callable[[Any], str] = str) -> str:
    """``str(value)`` (or ``how(value)``, e.g. ``repr``), never raising.

    The value's ``__str__`` is the caller's code; when it raises the result is
    ``<unprintable TypeName>``.
    """
    if type(value) is str and how is str:
        return value
    try:
        return how(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def describe(exc: BaseException) -> str:
    """``"Type: message"`` of an exception, never raising (its ``__str__`` may be the caller's)."""
    return f"{type(exc).__name__}: {printable(exc)}"


def clean_span(span: Span) -> Span:
    """A copy of ``span`` whose every string has a UTF-8 form (see `clean_text`).

    Texts are cleaned, JSON values and tables converted again (`to_jsonable`,
    read-only), the strings of nested records (error, prompt) cleaned; what is
    cleaned is read from the span's field table, so a new field is covered by
    its kind. For encoders that refuse lone surrogates (protobuf): a span built
    by the hub is clean already, one replayed from a file may not be.
    """
    changes: dict[str, Any] = {}
    for field in attrs.fields(Span):
        value = getattr(span, field.name)
        if value is None:
            continue
        kind = field_info(field).kind
        if kind == "text":
            changes[field.name] = clean_text(value)
        elif kind == "texts":
            changes[field.name] = tuple(clean_text(t) for t in value)
        elif kind in ("json", "table"):
            changes[field.name] = to_jsonable(value, frozen=True)
        elif kind == "record":
            texts = {
                sub.name: clean_text(text)
                for sub in attrs.fields(type(value))
                if isinstance(text := getattr(value, sub.name), str)
            }
            changes[field.name] = attrs.evolve(value, **texts)
    return attrs.evolve(span, **changes)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[truncated {len(text) - limit} chars]"


def _safe_repr(value: Any, limits: Limits) -> str:
    try:
        return _truncate(repr(value), min(limits.max_string, 2_000))
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _convert(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    # Exact-type checks first: plain str/int/float/bool/None/dict/list are what
    # applications pass almost always, and they need no isinstance() walk.
    kind = type(value)
    if kind is str:
        if not value.isascii():
            value = clean_text(value)
        if len(value) <= limits.max_string:
            return value
        return _long_string(value, limits)
    if kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if value - value == 0.0 else _float(value)
    if depth >= limits.max_depth:
        return f"<max depth {limits.max_depth} reached>"
    if kind is dict or kind is list or kind is tuple:
        ident = id(value)
        if ident in seen:
            return "<cycle>"
        seen.add(ident)
        try:
            if kind is dict:
                return _convert_mapping(value.items(), len(value), limits, depth, seen)
            return _convert_sequence(value, len(value), limits, depth, seen)
        finally:
            seen.discard(ident)
    return _convert_other(value, limits, depth, seen)


def _long_string(value: str, limits: Limits) -> str:
    """A string over ``max_string``: truncated, but a data URI keeps its content as media."""
    truncated = _truncate(value, limits.max_string)
    if (
        value.startswith("data:")
        and len(value) <= limits.max_media_bytes * 4 // 3 + 1024
        and parse_data_uri(value, decode=False) is not None
    ):
        return MediaValue(truncated, Media(data_uri=value))
    return truncated


def _bytes(value: bytes | bytearray | memoryview, limits: Limits) -> str:
    raw = value if type(value) is bytes else bytes(value)
    size = len(raw)
    if size <= limits.max_bytes:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            text = "base64:" + base64.b64encode(raw).decode("ascii")
    else:
        text = f"<{size} bytes>"
    # Not text: kept (by reference) as media, for exporters that upload it.
    return MediaValue(text, Media(data=raw)) if size <= limits.max_media_bytes else text


def _convert_other(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    if isinstance(value, MediaValue):
        return value
    if isinstance(value, Media):
        return MediaValue(value.marker(), value)
    if isinstance(value, enum.Enum):
        return _convert(value.value, limits, depth + 1, seen)
    if isinstance(value, str):
        return _truncate(str.__str__(value), limits.max_string)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes(value, limits)
    if isinstance(value, _TIMES):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, _AS_STRING):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return _float(float(value)) if value.is_finite() else str(value)

    ident = id(value)
    if ident in seen:
        return "<cycle>"
    seen.add(ident)
    try:
        return _convert_container(value, limits, depth, seen)
    finally:
        seen.discard(ident)


_TIMES = (_dt.datetime, _dt.date, _dt.time)
_AS_STRING = (uuid.UUID, PurePath, complex)


def _key(key: Any, limits: Limits) -> str:
    if isinstance(key, str):
        return clean_text(str.__str__(key))
    if isinstance(key, (int, float, bool)) or key is None:
        return str(key)
    return _safe_repr(key, limits)


def _convert_mapping(items: Any, size: int, limits: Limits, depth: int, seen: set[int]) -> Any:
    depth += 1
    out: dict[str, Any]
    if size <= limits.max_items:
        out = {
            (key if type(key) is str and key.isascii() else _key(key, limits)): _convert(
                item, limits, depth, seen
            )
            for key, item in items
        }
    else:
        out = {}
        for i, (key, item) in enumerate(items):
            if i >= limits.max_items:
                out["..."] = f"[{size - limits.max_items} more items]"
                break
            out[_key(key, limits)] = _convert(item, limits, depth, seen)
    return frozen_dict(out) if _FROZEN in seen else out


def _convert_sequence(values: Any, size: int, limits: Limits, depth: int, seen: set[int]) -> Any:
    depth += 1
    if size <= limits.max_items:
        out = [_convert(item, limits, depth, seen) for item in values]
    else:
        out = [_convert(item, limits, depth, seen) for item in values[: limits.max_items]]
        out.append(f"...[{size - limits.max_items} more items]")
    return frozen_list(out) if _FROZEN in seen else out


def _convert_container(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    if isinstance(value, Mapping):
        return _convert_mapping(value.items(), len(value), limits, depth, seen)
    if isinstance(value, (list, tuple)):
        return _convert_sequence(list(value), len(value), limits, depth, seen)
    if isinstance(value, (set, frozenset)):
        items = list(value)
        try:
            items.sort()
        except TypeError:
            items.sort(key=lambda v: _safe_repr(v, limits))
        return _convert_sequence(items, len(items), limits, depth, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)]
        return _convert_mapping(fields, len(fields), limits, depth, seen)
    if attrs.has(type(value)):
        fields = [(f.name, getattr(value, f.name, None)) for f in attrs.fields(type(value))]
        return _convert_mapping(fields, len(fields), limits, depth, seen)
    dumped = _dump_by_protocol(value)
    if dumped is not _NOTHING:
        return _convert(dumped, limits, depth + 1, seen)
    return _safe_repr(value, limits)


_NOTHING = object()


def _dump_by_protocol(value: Any) -> Any:
    """Pydantic models, numpy arrays and scalars, without importing them.

    Only methods known to be pure conversions are called: ``model_dump`` on
    classes that look like pydantic models, ``tolist``/``item`` on numpy types.
    """
    cls = type(value)
    methods: tuple[str, ...] = ()
    if hasattr(cls, "model_fields") and hasattr(cls, "model_dump"):
        methods = ("model_dump",)
    elif cls.__module__.split(".", 1)[0] == "numpy":
        methods = ("tolist", "item")
    for method in methods:
        fn = getattr(cls, method, None)
        if fn is None or not callable(fn):
            continue
        try:
            result = getattr(value, method)()
        except Exception:
            continue
        if result is not value:
            return result
    return _NOTHING
