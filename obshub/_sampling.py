"""Sampling: which traces are recorded, decided once per trace from its id."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from obshub._config_errors import ConfigError

__all__ = ["STRATEGIES", "SampleFunction", "Sampler", "ratio_keeps"]

STRATEGIES = ("always", "never", "ratio")
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
            raise ConfigError(f"must be a string or a table, got {type(value).__name__}")
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
            raise ConfigError(f"must be a number, got {type(probability).__name__}", "probability")
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
        """True when the trace with this 32-hex-digit id is recorded."""
        if self.strategy == "always":
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
