"""Sampling: which traces are recorded, decided once per trace from its id."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from obshub._config_errors import ConfigError, type_name

if TYPE_CHECKING:
    from obshub.spans import Span

__all__ = ["STRATEGIES", "SampleFunction", "Sampler", "TailRule", "ratio_keeps"]

STRATEGIES = ("always", "never", "ratio", "tail")
_TAIL_KEYS = (
    "strategy",
    "keep",
    "slower_than",
    "costlier_than",
    "match",
    "ratio",
    "max_traces",
    "max_spans",
    "max_wait",
)
_LEVELS = ("error", "warning")
#: A sampler in code: called with the 32-hex-digit trace id, true keeps the trace.
SampleFunction = Callable[[str], bool]
_BOUND = 1 << 64


@attrs.frozen
class Sampler:
    """``always``, ``never``, ``ratio`` with a ``probability`` in [0, 1], or a function.

    A function (``sampling=my_function`` in code, or a sampler a plugin
    registered by name, ``sampling = { type = "name", ... }``) is called with
    the trace id and keeps the trace when it returns true; a function that
    raises keeps it (nothing is lost to a bug in a sampler).

    The ratio decision uses the low 64 bits of the trace id, as OpenTelemetry's
    ``TraceIdRatioBased`` does, so every process that sees the same trace id
    takes the same decision, and a trace is never half recorded.
    """

    strategy: str = "always"
    probability: float = 1.0
    function: SampleFunction | None = attrs.field(default=None, eq=False)
    #: With ``strategy = "tail"``: the rule decided when each trace completes.
    tail: TailRule | None = None

    @classmethod
    def from_config(
        cls,
        value: str | Mapping[str, Any] | Sampler | SampleFunction | None,
        named: Callable[[str], Callable[..., SampleFunction] | None] | None = None,
    ) -> Sampler:
        """Build from ``"always"``, ``"never"``, ``{strategy=..., probability=...}`` or a function.

        ``named`` looks up the sampler factories plugins registered, for
        ``{type = "name", option = ...}``.
        """
        if value is None:
            return cls()
        if isinstance(value, Sampler):
            return value
        if callable(value):
            return cls(strategy="function", function=value)
        if isinstance(value, Mapping) and "type" in value:
            return cls._named(value, named)
        if isinstance(value, str):
            value = {"strategy": value}
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a string or a table, got {type_name(value)}")
        if value.get("strategy") == "tail":
            return cls(strategy="tail", tail=TailRule.from_config(value))
        unknown = sorted(set(value) - {"strategy", "probability"})
        if unknown:
            raise ConfigError("unknown key (expected strategy, probability)", unknown[0])
        strategy = value.get("strategy", "always")
        if strategy not in STRATEGIES:
            raise ConfigError(f"must be one of {', '.join(STRATEGIES)}", "strategy")
        if strategy != "ratio":
            if "probability" in value:
                raise ConfigError('only allowed with strategy = "ratio"', "probability")
            return cls(strategy=strategy, probability=1.0 if strategy == "always" else 0.0)
        if "probability" not in value:
            raise ConfigError('required with strategy = "ratio"', "probability")
        probability = value["probability"]
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise ConfigError(f"must be a number, got {type_name(probability)}", "probability")
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"must be between 0 and 1, got {probability}", "probability")
        return cls(strategy="ratio", probability=float(probability))

    @classmethod
    def _named(
        cls,
        value: Mapping[str, Any],
        named: Callable[[str], Callable[..., SampleFunction] | None] | None,
    ) -> Sampler:
        options = dict(value)
        type_name = options.pop("type")
        factory = None if named is None or not isinstance(type_name, str) else named(type_name)
        if factory is None:
            raise ConfigError(
                f"unknown sampler type {type_name!r} (none registered under that name)", "type"
            )
        try:
            function = factory(**options)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid settings for sampler {type_name!r}: {exc}") from None
        if not callable(function):
            raise ConfigError(f"sampler {type_name!r} did not return a function", "type")
        return cls(strategy="function", function=function)

    @property
    def keeps_all(self) -> bool:
        """True when every trace is kept (nothing to decide)."""
        return self.strategy == "always"

    def should_sample(self, trace_id: str) -> bool:
        """True when the trace with this 32-hex-digit id is recorded.

        A tail sampler records every trace: its decision is taken on the
        exporter workers when the trace completes (see `TailRule`).
        """
        if self.strategy in ("always", "tail"):
            return True
        if self.strategy == "never":
            return False
        if self.function is not None:
            try:
                return bool(self.function(trace_id))
            except Exception:
                return True
        return ratio_keeps(trace_id, self.probability)


def ratio_keeps(trace_id: str, probability: float) -> bool:
    """The ratio decision for a trace: the same in every process and exporter.

    Compares the low 64 bits of the trace id to ``probability * 2**64``, so a
    trace kept at 5% is also kept at 10%.
    """
    try:
        low = int(trace_id[16:], 16)
    except ValueError:
        return True
    return low < probability * _BOUND


def _number(value: Any, key: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"must be a number, got {type(value).__name__}", key)
    if not value >= minimum:
        raise ConfigError(f"must be >= {minimum:g}, got {value}", key)
    return float(value)


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"must be an integer >= 1, got {value!r}", key)
    return value


@attrs.frozen
class TailRule:
    """Tail sampling: which complete traces are kept, decided on the exporter's worker.

    A trace is held until its root span ends, then kept when any of its spans
    is at a level in ``keep`` (``"error"`` also matches a span with an error),
    took longer than ``slower_than`` seconds, when its spans cost more than
    ``costlier_than`` in total, or when a span's attribute or metadata key
    named in ``match`` has that value (or one of a list of values); the rest
    is kept by ``ratio`` of the trace id, as a head ratio would (the same
    traces in every exporter and process).

    Bounded: at most ``max_traces`` traces and ``max_spans`` events in all are
    held (per exporter), none longer than ``max_wait`` seconds. A trace pushed out by these
    limits is decided by the head rule (the ratio) and counted as overflow;
    what arrives of it later follows that decision.
    """

    keep: frozenset[str] = frozenset(_LEVELS)
    slower_than: float | None = None
    costlier_than: float | None = None
    match: Mapping[str, Any] = attrs.field(factory=dict)
    ratio: float = 0.0
    max_traces: int = 10_000
    max_spans: int = 100_000
    max_wait: float = 60.0

    @classmethod
    def from_config(cls, value: Mapping[str, Any]) -> TailRule:
        """From a ``{strategy = "tail", ...}`` table."""
        unknown = sorted(set(value) - set(_TAIL_KEYS))
        if unknown:
            raise ConfigError(f"unknown key (expected one of: {', '.join(_TAIL_KEYS)})", unknown[0])
        options: dict[str, Any] = {}
        keep = value.get("keep", list(_LEVELS))
        if isinstance(keep, str):
            keep = [keep]
        if not isinstance(keep, (list, tuple)) or any(k not in _LEVELS for k in keep):
            raise ConfigError(f"must be a list of: {', '.join(_LEVELS)}", "keep")
        options["keep"] = frozenset(keep)
        for key in ("slower_than", "costlier_than"):
            if value.get(key) is not None:
                options[key] = _number(value[key], key)
        ratio = _number(value.get("ratio", 0.0), "ratio")
        if ratio > 1.0:
            raise ConfigError(f"must be between 0 and 1, got {ratio}", "ratio")
        options["ratio"] = ratio
        match = value.get("match", {})
        if not isinstance(match, Mapping):
            raise ConfigError("must be a table of attribute = value", "match")
        options["match"] = dict(match)
        for key in ("max_traces", "max_spans"):
            if key in value:
                options[key] = _count(value[key], key)
        if "max_wait" in value:
            options["max_wait"] = _number(value["max_wait"], "max_wait", 0.001)
        return cls(**options)

    def head(self, trace_id: str) -> bool:
        """The decision for a trace that could not be held whole: its ratio."""
        return ratio_keeps(trace_id, self.ratio)

    def decide(self, trace_id: str, spans: Sequence[Span]) -> bool:
        """Keep the complete trace made of ``spans``?"""
        cost = 0.0
        for span in spans:
            if span.level.value in self.keep or ("error" in self.keep and span.error is not None):
                return True
            slower_than = self.slower_than
            end = span.end_time
            if (
                slower_than is not None
                and end is not None
                and end - span.start_time > slower_than * 1e9
            ):
                return True
            if span.cost is not None:
                cost += span.cost.total or (span.cost.input or 0.0) + (span.cost.output or 0.0)
            if self.match and self._matches(span):
                return True
        if self.costlier_than is not None and cost > self.costlier_than:
            return True
        return self.head(trace_id)

    def _matches(self, span: Span) -> bool:
        for key, wanted in self.match.items():
            for table in (span.attributes, span.metadata):
                if key in table:
                    found = table[key]
                    if found == wanted or (isinstance(wanted, list) and found in wanted):
                        return True
        return False
