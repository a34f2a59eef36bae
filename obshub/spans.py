"""The span model: immutable snapshots of what an AI application did.

Everything an exporter receives is built from these frozen value classes. They
are created on the exporter worker threads, never on the application thread, so
their validation and normalisation cost nothing where latency matters.
"""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Mapping
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


class SpanType(str, enum.Enum):
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

    def __str__(self) -> str:
        return self.value

    # str's hash (equal to the value's) instead of Enum's Python-level one:
    # these are dict keys on the recording hot path.
    __hash__ = str.__hash__


class Level(str, enum.Enum):
    """Severity of a span, as Langfuse and most LLM backends show it."""

    DEBUG = "debug"
    DEFAULT = "default"
    WARNING = "warning"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value

    # str's hash (equal to the value's) instead of Enum's Python-level one:
    # these are dict keys on the recording hot path.
    __hash__ = str.__hash__


class EventKind(str, enum.Enum):
    """The moment of a span's life an event reports."""

    STARTED = "started"
    UPDATED = "updated"
    ENDED = "ended"

    def __str__(self) -> str:
        return self.value

    # str's hash (equal to the value's) instead of Enum's Python-level one:
    # these are dict keys on the recording hot path.
    __hash__ = str.__hash__


class ScoreDataType(str, enum.Enum):
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

    def __str__(self) -> str:
        return self.value

    # str's hash (equal to the value's) instead of Enum's Python-level one:
    # these are dict keys on the recording hot path.
    __hash__ = str.__hash__


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
    details: Mapping[str, int] = attrs.field(default=_EMPTY, converter=freeze)

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

    trace_id: str
    span_id: str
    name: str
    type: SpanType = SpanType.GENERIC
    parent_span_id: str | None = None
    start_time: int = 0
    end_time: int | None = None
    input: Any = attrs.field(default=None, converter=freeze)
    output: Any = attrs.field(default=None, converter=freeze)
    metadata: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=freeze)
    attributes: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=freeze)
    tags: tuple[str, ...] = ()
    session_id: str | None = None
    user_id: str | None = None
    is_event: bool = False
    error: SpanError | None = None
    level: Level = Level.DEFAULT
    status_message: str | None = None
    model: str | None = None
    provider: str | None = None
    parameters: Mapping[str, Any] = attrs.field(default=_EMPTY, converter=freeze)
    usage: Usage | None = None
    cost: Cost | None = None
    completion_start_time: int | None = None
    prompt: Prompt | None = None
    trace_name: str | None = None
    trace_metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze)
    trace_attributes: Mapping[str, Any] = attrs.field(factory=dict, converter=freeze)

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
        # Written out by hand: attrs.asdict() with a value serializer was most
        # of the JSONL exporter's worker time.
        usage = self.usage
        cost = self.cost
        prompt = self.prompt
        error = self.error
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "name": self.name,
            "type": self.type.value,
            "parent_span_id": self.parent_span_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "input": self.input,
            "output": self.output,
            "metadata": self.metadata,
            "attributes": self.attributes,
            "tags": list(self.tags),
            "session_id": self.session_id,
            "user_id": self.user_id,
            "is_event": self.is_event,
            "error": None
            if error is None
            else {"message": error.message, "type": error.type, "stack": error.stack},
            "level": self.level.value,
            "status_message": self.status_message,
            "model": self.model,
            "provider": self.provider,
            "parameters": self.parameters,
            "usage": None
            if usage is None
            else {
                "input": usage.input,
                "output": usage.output,
                "total": usage.total,
                "cached_input": usage.cached_input,
                "cache_write": usage.cache_write,
                "reasoning": usage.reasoning,
                "details": dict(usage.details),
            },
            "cost": None
            if cost is None
            else {"input": cost.input, "output": cost.output, "total": cost.total},
            "completion_start_time": self.completion_start_time,
            "prompt": None if prompt is None else {"name": prompt.name, "version": prompt.version},
            "trace_name": self.trace_name,
            "trace_metadata": self.trace_metadata,
            "trace_attributes": self.trace_attributes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Span:
        """Rebuild a snapshot from `to_dict` output."""
        known = {f.name for f in attrs.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["type"] = SpanType(kwargs.get("type", "generic"))
        kwargs["level"] = Level(kwargs.get("level", "default"))
        kwargs["tags"] = tuple(kwargs.get("tags") or ())
        for name, factory in (("usage", Usage.coerce), ("cost", Cost.coerce)):
            if kwargs.get(name) is not None:
                kwargs[name] = factory(kwargs[name])
        if kwargs.get("prompt") is not None:
            kwargs["prompt"] = Prompt.coerce(kwargs["prompt"])
        if kwargs.get("error") is not None:
            kwargs["error"] = SpanError(**kwargs["error"])
        for name in ("metadata", "attributes", "parameters", "trace_metadata", "trace_attributes"):
            if kwargs.get(name) is None:
                kwargs[name] = {}
        return cls(**kwargs)


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
    # for their encoders to share work (see ``obshub.otlp.encode_spans``).
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
    # Accept "numeric" as well as "NUMERIC".
    return ScoreDataType(str(value).upper())


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
