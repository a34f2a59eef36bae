"""The span model: immutable snapshots of what an AI application did.

Everything an exporter receives is built from these frozen value classes. They
are created on the exporter worker threads, never on the application thread, so
their validation and normalisation cost nothing where latency matters.
"""

from __future__ import annotations

import enum
import random
import types
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from obshub._frozen import FrozenDict, FrozenList, freeze, thaw

#: The default of every empty mapping field: read-only, so one instance serves all.
_EMPTY: Mapping[str, Any] = FrozenDict()

__all__ = [
    "Cost",
    "EventKind",
    "FrozenDict",
    "FrozenList",
    "Level",
    "Prompt",
    "Score",
    "ScoreDataType",
    "Span",
    "SpanError",
    "SpanEvent",
    "SpanType",
    "Usage",
    "freeze",
    "new_span_id",
    "new_trace_id",
    "thaw",
]


class ValueEnum(str, enum.Enum):
    """A string enum whose ``str()`` is its value (the base of obshub's enums).

    A member is also found by its value in any case (``Level("ERROR")``).
    """

    def __str__(self) -> str:
        return str.__str__(self)  # the value

    # str's hash (equal to the value's) instead of Enum's Python-level one:
    # these are dict keys on the recording hot path.
    __hash__ = str.__hash__

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            folded = value.casefold()
            for member in cls:
                if member.value.casefold() == folded:
                    return member
        return None


class SpanType(ValueEnum):
    """What kind of work a span records."""

    AGENT_RUN = "agent_run"
    WORKFLOW_RUN = "workflow_run"
    WORKFLOW_STEP = "workflow_step"
    MODEL_GENERATION = "model_generation"
    MODEL_STEP = "model_step"
    TOOL_CALL = "tool_call"
    MCP_TOOL_CALL = "mcp_tool_call"
    EMBEDDING = "embedding"
    RETRIEVAL = "retrieval"
    GUARDRAIL = "guardrail"
    EVALUATOR = "evaluator"
    GENERIC = "generic"


class Level(ValueEnum):
    """Severity of a span, as Langfuse and most LLM backends show it."""

    DEBUG = "debug"
    DEFAULT = "default"
    WARNING = "warning"
    ERROR = "error"


class EventKind(ValueEnum):
    """The moment of a span's life an event reports."""

    STARTED = "started"
    UPDATED = "updated"
    ENDED = "ended"


class ScoreDataType(ValueEnum):
    """How a score's value is to be read.

    ``NUMERIC`` a number, ``BOOLEAN`` true or false, ``CATEGORICAL`` one label
    of a fixed set, ``TEXT`` free-form text (a reviewer's note), ``CORRECTION``
    the corrected output the application should have given. Only the first
    three are inferred from a value; ``TEXT`` and ``CORRECTION`` are asked for.
    """

    NUMERIC = "NUMERIC"
    BOOLEAN = "BOOLEAN"
    CATEGORICAL = "CATEGORICAL"
    TEXT = "TEXT"
    CORRECTION = "CORRECTION"


# Ids are random like OpenTelemetry's: 128-bit trace ids, 64-bit span ids, as
# lowercase hex. `random.getrandbits` is re-seeded by CPython after fork.
_getrandbits = random.getrandbits


def new_trace_id() -> str:
    """A new W3C trace id: 32 lowercase hex characters, never all zeros."""
    # to_bytes().hex() is about twice as fast as f"{n:032x}".
    return (_getrandbits(128) or 1).to_bytes(16, "big").hex()


def new_span_id() -> str:
    """A new W3C span id: 16 lowercase hex characters, never all zeros."""
    return (_getrandbits(64) or 1).to_bytes(8, "big").hex()


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return int(value)
    raise TypeError(f"expected a token count, got {type(value).__name__}")


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if number - number == 0.0:  # NaN and infinities are not JSON
            return number
        raise ValueError(f"expected a finite number, got {number}")
    raise TypeError(f"expected a number, got {type(value).__name__}")


@attrs.frozen
class FieldInfo:
    """What obshub knows about a field of `Span` (its ``metadata["obshub"]``).

    ``kind`` says what the value is, and so how the worker makes it safe, how
    `Span.to_dict` writes it and `Span.from_dict` reads it back: ``"id"`` a
    generated hex id, ``"text"`` a string, ``"texts"`` a tuple of strings,
    ``"json"`` any JSON-safe value, ``"table"`` a JSON-safe mapping, ``"time"``
    nanoseconds since the epoch, ``"flag"`` a bool, ``"enum"`` a member of
    ``value_class``, ``"record"`` an instance of the attrs class
    ``value_class``, ``"value"`` anything else (kept as it is).
    """

    kind: str
    value_class: type | None = None
    #: A caller may set it through ``hub.span(...)`` or ``span.update(...)``.
    settable: bool = False
    #: It belongs to the whole trace: set on any span, seen on every span.
    trace: bool = False
    #: An update merges a dict into the old value instead of replacing it.
    merges: bool = False
    #: A snapshot takes it from the values recorded on the live span.
    recorded: bool = False


def _kind(
    kind: str,
    value_class: type | None = None,
    *,
    settable: bool = False,
    trace: bool = False,
    merges: bool = False,
    recorded: bool | None = None,
) -> dict[str, FieldInfo]:
    """A field's metadata; a settable field is recorded unless it is trace-level."""
    if recorded is None:
        recorded = settable and not trace
    return {"obshub": FieldInfo(kind, value_class, settable, trace, merges, recorded)}


_PLAIN = FieldInfo("value")


def field_info(field: attrs.Attribute[Any]) -> FieldInfo:
    """The `FieldInfo` of an attrs field (kind ``"value"`` when it has none)."""
    info = field.metadata.get("obshub", _PLAIN)
    return info if isinstance(info, FieldInfo) else _PLAIN


@attrs.frozen
class Usage:
    """Token counts of a model call, as providers report them.

    ``input`` includes ``cached_input`` and ``cache_write``; ``output`` includes
    ``reasoning``. Exporters convert to their backend's convention (Langfuse,
    for one, wants non-cached input apart from cached input). Provider-specific
    counts that have no field here (audio tokens, ...) are kept in ``details``.
    """

    input: int | None = attrs.field(default=None, converter=_optional_int)
    output: int | None = attrs.field(default=None, converter=_optional_int)
    total: int | None = attrs.field(default=None, converter=_optional_int)
    cached_input: int | None = attrs.field(default=None, converter=_optional_int)
    cache_write: int | None = attrs.field(default=None, converter=_optional_int)
    reasoning: int | None = attrs.field(default=None, converter=_optional_int)
    details: Mapping[str, int] = attrs.field(
        default=_EMPTY, converter=freeze, metadata=_kind("table")
    )

    @classmethod
    def coerce(cls, value: Usage | Mapping[str, Any]) -> Usage:
        """Build from a dict such as ``{"input": 812, "output": 95}``."""
        if isinstance(value, Usage):
            return value
        kwargs: dict[str, Any] = {}
        details: dict[str, int] = {}
        for key, count in value.items():
            if key in _USAGE_KEYS:
                kwargs[key] = count
            elif key == "details" and isinstance(count, Mapping):
                details.update((str(k), int(v)) for k, v in count.items() if _is_finite_number(v))
            elif _is_finite_number(count):
                details[str(key)] = int(count)
        return cls(**kwargs, details=details)

    def total_tokens(self) -> int | None:
        """``total`` when given, else input + output when either is known."""
        if self.total is not None:
            return self.total
        if self.input is None and self.output is None:
            return None
        return (self.input or 0) + (self.output or 0)


_USAGE_KEYS = frozenset({"input", "output", "total", "cached_input", "cache_write", "reasoning"})


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value - value == 0


@attrs.frozen
class Cost:
    """Cost of a model call, in the currency the application uses (usually USD)."""

    input: float | None = attrs.field(default=None, converter=_optional_float)
    output: float | None = attrs.field(default=None, converter=_optional_float)
    total: float | None = attrs.field(default=None, converter=_optional_float)

    @classmethod
    def coerce(cls, value: Cost | Mapping[str, Any]) -> Cost:
        """Build from a dict such as ``{"input": 0.002, "output": 0.001}``."""
        if isinstance(value, Cost):
            return value
        return cls(**{k: v for k, v in value.items() if k in ("input", "output", "total")})


def _prompt_version(value: Any) -> int | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value)  # keeps the snapshot JSON-safe


@attrs.frozen
class Prompt:
    """The managed prompt a generation used (name and version)."""

    name: str
    version: int | str | None = attrs.field(default=None, converter=_prompt_version)

    @classmethod
    def coerce(cls, value: Prompt | Mapping[str, Any] | str) -> Prompt:
        """Build from ``{"name": ..., "version": ...}`` or a bare name."""
        if isinstance(value, Prompt):
            return value
        if isinstance(value, str):
            return cls(name=value)
        return cls(name=str(value["name"]), version=value.get("version"))


@attrs.frozen
class SpanError:
    """An exception that left a span."""

    message: str
    type: str
    stack: str | None = None


@attrs.frozen
class Span:
    """An immutable snapshot of a span at one moment of its life.

    Times are integers: nanoseconds since the Unix epoch, as OpenTelemetry
    keeps them. ``input``, ``output``, ``metadata``, ``attributes`` and
    ``parameters`` are already JSON-safe (and redacted, where the config asks
    for it) and read-only all the way down: their dicts and lists are
    `FrozenDict` and `FrozenList` (``dict`` and ``list`` subclasses whose
    mutating methods raise ``TypeError``), because every exporter of the config
    receives this same snapshot. Values given as plain dicts and lists are
    frozen when the span is built; `thaw` makes a mutable copy.

    Trace-level values are on every span: ``session_id``, ``user_id``,
    ``tags``, ``trace_name``, and ``trace_metadata`` / ``trace_attributes``
    (the root span's ``metadata`` / ``attributes``; on the root, its own). A
    span other than the root sees them as they were when its snapshot was
    built, so a value set on the root after a child was delivered is not on
    that child.
    """

    trace_id: str = attrs.field(metadata=_kind("id"))
    span_id: str = attrs.field(metadata=_kind("id"))
    name: str = attrs.field(metadata=_kind("text", settable=True))
    type: SpanType = attrs.field(default=SpanType.GENERIC, metadata=_kind("enum", SpanType))
    parent_span_id: str | None = attrs.field(default=None, metadata=_kind("id"))
    start_time: int = attrs.field(default=0, metadata=_kind("time"))
    end_time: int | None = attrs.field(default=None, metadata=_kind("time"))
    input: Any = attrs.field(default=None, converter=freeze, metadata=_kind("json", settable=True))
    output: Any = attrs.field(default=None, converter=freeze, metadata=_kind("json", settable=True))
    metadata: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=freeze, metadata=_kind("table", settable=True, merges=True)
    )
    attributes: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=freeze, metadata=_kind("table", settable=True, merges=True)
    )
    tags: tuple[str, ...] = attrs.field(
        default=(), metadata=_kind("texts", settable=True, trace=True)
    )
    session_id: str | None = attrs.field(
        default=None, metadata=_kind("text", settable=True, trace=True)
    )
    user_id: str | None = attrs.field(
        default=None, metadata=_kind("text", settable=True, trace=True)
    )
    is_event: bool = attrs.field(default=False, metadata=_kind("flag"))
    error: SpanError | None = attrs.field(
        default=None, metadata=_kind("record", SpanError, recorded=True)
    )
    level: Level = attrs.field(default=Level.DEFAULT, metadata=_kind("enum", Level, settable=True))
    status_message: str | None = attrs.field(default=None, metadata=_kind("text", settable=True))
    model: str | None = attrs.field(default=None, metadata=_kind("text", settable=True))
    provider: str | None = attrs.field(default=None, metadata=_kind("text", settable=True))
    parameters: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=freeze, metadata=_kind("table", settable=True, merges=True)
    )
    usage: Usage | None = attrs.field(default=None, metadata=_kind("record", Usage, settable=True))
    cost: Cost | None = attrs.field(default=None, metadata=_kind("record", Cost, settable=True))
    completion_start_time: int | None = attrs.field(
        default=None, metadata=_kind("time", settable=True)
    )
    prompt: Prompt | None = attrs.field(
        default=None, metadata=_kind("record", Prompt, settable=True)
    )
    trace_name: str | None = attrs.field(default=None, metadata=_kind("text"))
    trace_metadata: Mapping[str, Any] = attrs.field(
        factory=dict, converter=freeze, metadata=_kind("table")
    )
    trace_attributes: Mapping[str, Any] = attrs.field(
        factory=dict, converter=freeze, metadata=_kind("table")
    )

    @property
    def is_root(self) -> bool:
        """True for the span that starts a trace."""
        return self.parent_span_id is None

    @property
    def duration_ns(self) -> int | None:
        """End minus start in nanoseconds, or None while the span runs."""
        return None if self.end_time is None else self.end_time - self.start_time

    @property
    def duration_ms(self) -> float | None:
        """End minus start in milliseconds, or None while the span runs."""
        ns = self.duration_ns
        return None if ns is None else ns / 1e6

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the JSONL exporter's format).

        The returned dict is new on each call; the values of ``input``,
        ``output``, ``metadata``, ``attributes`` and ``parameters`` in it are
        the snapshot's own read-only ones, shared, not copied (`thaw` makes a
        mutable copy).
        """
        # Replaced below by a function generated from the field table
        # (_compile_to_dict): a dict literal, as fast as one written by hand.
        raise NotImplementedError  # pragma: no cover

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Span:
        """Rebuild a snapshot from `to_dict` output."""
        return cls(**_span_kwargs(data))


# -- the field table ---------------------------------------------------------------
# Everything that lists the span's fields is derived from `Span`'s own
# ``attrs.field(metadata=_kind(...))``: adding a field is one edit there.


def _fields_where(test: Callable[[FieldInfo], bool]) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(Span) if test(field_info(f)))


#: Every field a caller may set through ``hub.span(...)`` or ``span.update(...)``.
SETTABLE_FIELDS = _fields_where(lambda info: info.settable)
#: Fields that belong to the whole trace (set on any span, seen on every span).
TRACE_FIELDS = _fields_where(lambda info: info.trace)
#: Fields whose values merge on update instead of being replaced.
MERGED_FIELDS = _fields_where(lambda info: info.merges)
#: The fields a snapshot takes from the values recorded on its live span, with
#: what they are (see `FieldInfo`); the others are identity and trace-level values.
RECORDED_FIELDS: Mapping[str, FieldInfo] = types.MappingProxyType(
    {f.name: field_info(f) for f in attrs.fields(Span) if field_info(f).recorded}
)


def _value_source(owner: str, field: attrs.Attribute[Any]) -> str:
    kind = field_info(field).kind
    value = f"{owner}.{field.name}"
    if kind == "enum":
        return f"{value}.value"
    if kind == "texts":
        return f"list({value})"
    return value


def _compile_to_dict(cls: type) -> Callable[[Any], dict[str, Any]]:
    """``cls.to_dict`` as one dict literal, generated from the field table once.

    A hand-written literal is about 14 times faster than ``attrs.asdict`` with
    a value serializer (most of the JSONL exporter's worker time); generating
    the same literal keeps that speed without a second list of the fields.
    Nested records become dicts of their fields (their tables plain dicts).
    """
    lines = ["def to_dict(self):"]
    items = []
    for field in attrs.fields(cls):
        info = field_info(field)
        if info.kind == "record" and info.value_class is not None:
            local = f"_{field.name}"
            lines.append(f"    {local} = self.{field.name}")
            inner = ", ".join(
                f"{sub.name!r}: dict({local}.{sub.name})"
                if field_info(sub).kind == "table"
                else f"{sub.name!r}: {_value_source(local, sub)}"
                for sub in attrs.fields(info.value_class)
            )
            items.append(f"{field.name!r}: None if {local} is None else {{{inner}}}")
        else:
            items.append(f"{field.name!r}: {_value_source('self', field)}")
    lines.append("    return {" + ", ".join(items) + "}")
    namespace: dict[str, Any] = {}
    # The source is built above from the class's own field names, nothing else.
    exec(compile("\n".join(lines), f"<{cls.__name__}.to_dict>", "exec"), namespace)
    function: Callable[[Any], dict[str, Any]] = namespace["to_dict"]
    function.__module__ = cls.__module__
    function.__qualname__ = f"{cls.__name__}.to_dict"
    function.__doc__ = cls.to_dict.__doc__  # type: ignore[attr-defined]
    return function


Span.to_dict = _compile_to_dict(Span)  # type: ignore[method-assign,assignment]


def _span_kwargs(data: Mapping[str, Any]) -> dict[str, Any]:
    """`Span` arguments from a `Span.to_dict` record (what JSON turned into lists and strings)."""
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(Span):
        if field.name not in data:
            continue
        value = data[field.name]
        info = field_info(field)
        cls: Any = info.value_class
        if info.kind == "enum":
            value = cls(value)
        elif info.kind == "texts":
            value = tuple(value or ())
        elif info.kind == "table" and value is None:
            value = {}
        elif info.kind == "record" and value is not None:
            value = cls.coerce(value) if hasattr(cls, "coerce") else cls(**value)
        kwargs[field.name] = value
    return kwargs


def _serialize_value(_inst: Any, _field: Any, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


@attrs.frozen
class SpanEvent:
    """One moment of a span's life, as handed to exporters.

    ``kind`` is started, updated or ended; event spans (``span.is_event``)
    arrive once, as ended. ``config_name`` and ``service_name`` name the
    configuration that handled the trace.
    """

    kind: EventKind
    span: Span
    config_name: str
    service_name: str
    # Set by the hub when several exporters receive this very event: a place
    # for their encoders to share work (see ``obshub_otlp.encoding.encode_spans``).
    _shared: dict[Any, Any] | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def share_work(self) -> None:
        """Mark the event as received by several exporters (the hub does this)."""
        if self._shared is None:
            object.__setattr__(self, "_shared", {})

    def shared_cache(self) -> dict[Any, Any] | None:
        """A dict exporters may memoise per-event results in, or None if not shared.

        Keys must say everything the cached value depends on (e.g. the
        exporter type and its mapping options), since other exporters read it.
        """
        return self._shared

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the JSONL exporter writes one per line)."""
        return {
            "kind": self.kind.value,
            "config": self.config_name,
            "service": self.service_name,
            "span": self.span.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpanEvent:
        """Rebuild an event from `to_dict` output."""
        return cls(
            kind=EventKind(data["kind"]),
            span=Span.from_dict(data["span"]),
            config_name=str(data.get("config", "default")),
            service_name=str(data.get("service", "unknown_service")),
        )


ScoreValue = float | int | bool | str


def _infer_data_type(value: ScoreValue) -> ScoreDataType:
    if isinstance(value, bool):
        return ScoreDataType.BOOLEAN
    if isinstance(value, (int, float)):
        return ScoreDataType.NUMERIC
    return ScoreDataType.CATEGORICAL


def _data_type(value: ScoreDataType | str) -> ScoreDataType:
    # Accepts "numeric" as well as "NUMERIC" (see ValueEnum).
    return ScoreDataType(str(value))


def _new_score_id() -> str:
    return uuid.uuid4().hex


@attrs.frozen
class Score:
    """An evaluation of a trace, a span or a session (human or automatic).

    ``data_type`` is inferred from ``value`` when not given: bool → BOOLEAN,
    number → NUMERIC, string → CATEGORICAL. ``id`` is stable, so re-sending a
    score is idempotent at the backend. ``timestamp`` is when it was recorded
    (ns since the epoch).

    ``backend_fields`` holds what only some backend understands, keyed by
    exporter type, e.g. ``{"langfuse": {"config_id": "...", "queue_id": "..."}}``;
    each exporter reads its own entry and ignores the others.
    """

    name: str
    value: ScoreValue
    trace_id: str | None = None
    span_id: str | None = None
    session_id: str | None = None
    data_type: ScoreDataType = attrs.field(converter=_data_type)
    comment: str | None = None
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=freeze)
    id: str = attrs.field(factory=_new_score_id)
    timestamp: int | None = None
    config_name: str | None = None
    backend_fields: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, converter=freeze)

    @data_type.default
    def _default_data_type(self) -> ScoreDataType:
        return _infer_data_type(self.value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return attrs.asdict(self, value_serializer=_serialize_value)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        """Rebuild a score from `to_dict` output."""
        known = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


#: Version of the record format shared by the JSONL exporter and the disk spool.
RECORD_VERSION = 1


def item_record(item: SpanEvent | Score) -> dict[str, Any]:
    """The JSON record of an event or a score (one JSONL / spool line).

    Events: ``{"v": 1, "kind": "ended", "config": ..., "service": ..., "span": {...}}``;
    scores: ``{"v": 1, "kind": "score", "config": ..., "score": {...}}``.
    """
    if isinstance(item, Score):
        return {
            "v": RECORD_VERSION,
            "kind": "score",
            "config": item.config_name,
            "score": item.to_dict(),
        }
    return {"v": RECORD_VERSION, **item.to_dict()}


def record_to_item(record: Mapping[str, Any]) -> SpanEvent | Score:
    """Rebuild an event or a score from `item_record` output."""
    if record.get("kind") == "score":
        return Score.from_dict(record["score"])
    return SpanEvent.from_dict(record)


def time_to_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch from a datetime, epoch seconds or ns int."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1_000_000) * 1000
    if isinstance(value, bool):
        raise TypeError("expected a datetime or a timestamp, got bool")
    if isinstance(value, int):
        # An int this large is nanoseconds; smaller ones are epoch seconds.
        return value if value > 10**14 else value * 1_000_000_000
    if isinstance(value, float):
        return int(value * 1e9)
    raise TypeError(f"expected a datetime or a timestamp, got {type(value).__name__}")


def ns_to_iso(ns: int) -> str:
    """ISO 8601 in UTC with microseconds, e.g. ``2026-11-27T14:13:49.123456Z``."""
    seconds, rem = divmod(ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rem // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
