"""Helpers for plugin authors: the one obshub module an exporter plugin needs beside ``obshub``.

Everything a backend plugin would otherwise write again (or reach into
obshub's private modules for) is here, documented in ``docs/plugin-utilities.md``:

- `distribution_version`: the installed version of a distribution, for a
  ``__version__`` or a ``User-Agent``;
- `positive_seconds`: validate a duration setting, raising `obshub.ConfigError`
  with the key;
- `AuthPause`: the pause after a backend refuses the credentials (401/403),
  doubling while refusals repeat;
- `Scrubber`, `safe_url`, `scrubbed_error`, `scrubbed_result`: keep
  credentials out of messages, errors and ``obshub check`` output;
- `json_string`: compact JSON text, for bodies and attribute values;
- `send_splitting`, `truncated_span`, `too_large_error`: what to do with an
  HTTP 413 (halve the batch, then truncate a single span's large fields);
- `RateLimitedLog`: a recurring problem logged once per interval, with a count;
- `waiting`: around a block of an exporter worker that only waits (a thread
  pool, a sleep), so that other workers' Python code runs meanwhile.

Sending HTTP itself is `obshub.http` (``post``, ``get``, ``user_agent``,
``proxy_setting``, ...); the test kit is `obshub.testing`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import attrs

from obshub._config_errors import ConfigError
from obshub._dist import UNKNOWN_VERSION, distribution_version
from obshub._exporters import (
    DEFAULT_BATCH,
    DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_MAX_QUEUE_SIZE,
    CheckResult,
    ExportError,
)
from obshub._json import json_string
from obshub._logging import RateLimitedLog
from obshub._oversize import (
    TRUNCATE_ABOVE_BYTES,
    TRUNCATED_KEY,
    send_splitting,
    too_large_error,
    truncated_span,
    truncation_marker,
)
from obshub._plugins import PluginRegistry
from obshub._redact import Scrubber, safe_url
from obshub._serialization import DEFAULT_LIMITS, Limits, clean_text, to_jsonable
from obshub._worker_token import released as waiting

__all__ = [
    "AUTH_PAUSE_INITIAL",
    "AUTH_PAUSE_MAX",
    "AUTH_STATUSES",
    "DEFAULT_BATCH",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_MAX_QUEUE_SIZE",
    "TRUNCATED_KEY",
    "TRUNCATE_ABOVE_BYTES",
    "UNKNOWN_VERSION",
    "AuthPause",
    "Limits",
    "PluginRegistry",
    "RateLimitedLog",
    "Scrubber",
    "clean_text",
    "distribution_version",
    "json_string",
    "positive_seconds",
    "safe_url",
    "scrubbed_error",
    "scrubbed_result",
    "send_splitting",
    "to_jsonable",
    "too_large_error",
    "truncated_span",
    "truncation_marker",
    "waiting",
]

#: The statuses that mean "credentials refused".
AUTH_STATUSES = frozenset({401, 403})
#: The first pause after refused credentials, in seconds (a plugin's ``auth_cooldown``).
AUTH_PAUSE_INITIAL = 30.0
#: The longest pause: repeated refusals double it up to this.
AUTH_PAUSE_MAX = 600.0


def positive_seconds(value: object, key: str) -> float:
    """``value`` as a float, when it is a finite number of seconds > 0.

    Raises `obshub.ConfigError` naming ``key`` otherwise (booleans, strings,
    zero, negative numbers, NaN and infinity). The value is not echoed.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or not math.isfinite(value)
    ):
        raise ConfigError("must be a number of seconds > 0", key)
    return float(value)


class AuthPause:
    """How long sends pause after a backend refuses the credentials (HTTP 401/403).

    Retrying at once would only repeat the refusal (and hammer the backend with
    bad keys), so the exporter raises `refused`'s error: the delivery channel
    holds the batch (or spools it) for ``pause`` seconds, then probes with it.
    The first refusal pauses ``initial`` seconds, each repeat twice as long up
    to ``maximum``; `succeeded` (call it after any successful request) starts
    over. Safe to use from several threads.
    """

    __slots__ = ("_lock", "_next", "initial", "maximum")

    def __init__(
        self,
        initial: float = AUTH_PAUSE_INITIAL,
        maximum: float = AUTH_PAUSE_MAX,
        *,
        key: str = "auth_cooldown",
    ) -> None:
        self.initial = positive_seconds(initial, key)
        self.maximum = max(self.initial, float(maximum))
        self._next = self.initial
        self._lock = threading.Lock()

    @property
    def next_pause(self) -> float:
        """The pause the next refusal gets."""
        return self._next

    def refused(self, message: str, status: int | None) -> ExportError:
        """The error for a refusal: not retryable, pausing sends; the next pause doubles.

        The message ends with ``"; sends pause for 30 s"``.
        """
        with self._lock:
            pause = self._next
            self._next = min(pause * 2, self.maximum)
        return ExportError(
            f"{message}; sends pause for {pause:g} s", retryable=False, status=status, pause=pause
        )

    def succeeded(self) -> None:
        """A request went through: the next refusal pauses ``initial`` seconds again."""
        with self._lock:
            self._next = self.initial

    def __repr__(self) -> str:
        return f"AuthPause(initial={self.initial:g}, maximum={self.maximum:g})"


def scrubbed_error(exc: ExportError, scrub: Callable[[str], str]) -> ExportError:
    """A copy of ``exc`` whose message went through ``scrub`` (say a `Scrubber`).

    Everything the delivery channel reads (``retryable``, ``retry_after``,
    ``status``, ``pause``, ``rejected``, ``items``) is kept. Raise it
    ``from None``: the original, unscrubbed, must not travel as its cause.
    """
    return ExportError(
        scrub(str(exc)),
        retryable=exc.retryable,
        retry_after=exc.retry_after,
        status=exc.status,
        pause=exc.pause,
        rejected=exc.rejected,
        items=exc.items,
    )


def scrubbed_result(result: CheckResult, scrub: Callable[[str], str]) -> CheckResult:
    """``result`` with its message and string details through ``scrub``.

    For ``check()``: whatever a server echoed back, no credential leaves in
    what ``obshub check`` prints.
    """
    return attrs.evolve(
        result,
        message=scrub(result.message),
        details={
            key: scrub(value) if isinstance(value, str) else value
            for key, value in result.details.items()
        },
    )
