"""Retry policy for exports, as an immutable value (in the style of urllib3's ``Retry``).

A delivery channel starts each batch with the exporter's policy and calls
`Retry.increment` after each retryable failure; the returned value says
how long to wait (`Retry.get_backoff_time`) and whether to give up
(`Retry.is_exhausted`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import attrs

from obshub._config_errors import type_name

__all__ = ["PolicyError", "Retry", "parse_retry_after"]


class PolicyError(ValueError):
    """A retry setting out of range; ``key`` names the setting."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _number(attribute: attrs.Attribute[Any], value: Any, integer: bool = False) -> None:
    wanted = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        kind = "an integer" if integer else "a number"
        raise PolicyError(attribute.name, f"must be {kind}, got {type_name(value)}")


def _non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    _number(attribute, value)
    if value < 0:
        raise PolicyError(attribute.name, f"must be >= 0, got {value}")


def _at_least_one(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    _number(attribute, value, integer=True)
    if value < 1:
        raise PolicyError(attribute.name, f"must be >= 1, got {value}")


def _fraction(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    _number(attribute, value)
    if not 0 <= value <= 1:
        raise PolicyError(attribute.name, f"must be between 0 and 1, got {value}")


@attrs.frozen
class Retry:
    """How often and how patiently a failed export is retried.

    - ``max_attempts``: attempts in all, the first one included (1 = no retry).
    - ``initial_backoff``: seconds before the first retry; doubles each time.
    - ``max_backoff``: cap of one wait.
    - ``max_elapsed``: give up once this many seconds passed since the first
      attempt (0 = no time limit).
    - ``jitter``: each wait is randomised by up to this fraction, so that many
      processes recovering from one outage do not retry in lockstep.
    - ``max_retry_after``: cap on a server's ``Retry-After``.

    ``attempts`` and ``started`` are the state of one batch's retries.
    """

    max_attempts: int = attrs.field(default=6, validator=_at_least_one)
    initial_backoff: float = attrs.field(default=0.5, validator=_non_negative)
    max_backoff: float = attrs.field(default=30.0, validator=_non_negative)
    max_elapsed: float = attrs.field(default=300.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.2, validator=_fraction)
    max_retry_after: float = attrs.field(default=300.0, validator=_non_negative)
    attempts: int = 0
    started: float | None = None
    retry_after: float | None = None

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> Retry:
        """Build from a config table (the keys above, no state keys)."""
        allowed = {
            "max_attempts",
            "initial_backoff",
            "max_backoff",
            "max_elapsed",
            "jitter",
            "max_retry_after",
        }
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise KeyError(unknown[0])
        return cls(**table)

    def increment(self, retry_after: float | None = None, now: float | None = None) -> Retry:
        """The state after one more failed attempt (``retry_after`` from the server)."""
        now = time.monotonic() if now is None else now
        return attrs.evolve(
            self,
            attempts=self.attempts + 1,
            started=self.started if self.started is not None else now,
            retry_after=retry_after,
        )

    def is_exhausted(self, now: float | None = None) -> bool:
        """True when no attempt is left or the time budget would be overrun."""
        if self.attempts >= self.max_attempts:
            return True
        if self.max_elapsed and self.started is not None:
            now = time.monotonic() if now is None else now
            return now - self.started + self.get_backoff_time(random_fn=lambda: 0.0) > (
                self.max_elapsed
            )
        return False

    def get_backoff_time(self, random_fn: Callable[[], float] = random.random) -> float:
        """Seconds to wait before the next attempt.

        A server's ``Retry-After`` wins (capped at ``max_retry_after``);
        otherwise ``initial_backoff * 2**(attempts-1)`` capped at
        ``max_backoff``, randomised by ``jitter``.
        """
        if self.attempts == 0:
            return 0.0
        if self.retry_after is not None:
            return max(0.0, min(self.retry_after, self.max_retry_after))
        base = min(self.max_backoff, self.initial_backoff * 2 ** (self.attempts - 1))
        spread = base * self.jitter
        wait: float = base - spread + 2 * spread * random_fn()
        return max(0.0, min(self.max_backoff, wait))  # jitter never passes the cap


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)
