"""Sampling: which traces are recorded, decided once per trace from its id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from obshub._config_errors import ConfigError, type_name

__all__ = ["STRATEGIES", "Sampler"]

STRATEGIES = ("always", "never", "ratio")
_BOUND = 1 << 64


@attrs.frozen
class Sampler:
    """``always``, ``never``, or ``ratio`` with a ``probability`` in [0, 1].

    The ratio decision uses the low 64 bits of the trace id, as OpenTelemetry's
    ``TraceIdRatioBased`` does, so every process that sees the same trace id
    takes the same decision, and a trace is never half recorded.
    """

    strategy: str = "always"
    probability: float = 1.0

    @classmethod
    def from_config(cls, value: str | Mapping[str, Any] | Sampler | None) -> Sampler:
        """Build from ``"always"``, ``"never"`` or ``{strategy=..., probability=...}``."""
        if value is None:
            return cls()
        if isinstance(value, Sampler):
            return value
        if isinstance(value, str):
            value = {"strategy": value}
        if not isinstance(value, Mapping):
            raise ConfigError(f"must be a string or a table, got {type_name(value)}")
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

    def should_sample(self, trace_id: str) -> bool:
        """True when the trace with this 32-hex-digit id is recorded."""
        if self.strategy == "always":
            return True
        if self.strategy == "never":
            return False
        return int(trace_id[16:], 16) < self.probability * _BOUND
