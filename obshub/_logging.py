"""Structured logging for obshub and its exporters.

The library never calls ``structlog.configure()``: it logs through whatever the
application configured (``structlog.testing.capture_logs()`` included). Each
exporter gets a logger bound with ``exporter=<instance name>`` and filtered at
its own ``log_level``. Every event of these loggers and of the library's own
has its string values scrubbed (`obshub._redact.scrub`: URL passwords and
secret query parameters, ``Authorization``-like values and ``Bearer`` tokens
masked) before any processor sees it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

import structlog

from obshub._redact import scrub, scrub_value

__all__ = [
    "LEVELS",
    "RateLimitedLog",
    "exporter_logger",
    "get_logger",
    "parse_level",
    "reset_rate_limits",
]

#: Level names users may write, and the stdlib level each one means.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def parse_level(name: str) -> int:
    """The stdlib level for ``name`` (case-insensitive); ValueError if unknown."""
    try:
        return LEVELS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"must be one of {', '.join(LEVELS)}") from None


#: The methods of a structlog logger that take an event name first.
_EVENT_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "critical", "fatal", "exception", "msg"}
)


class _Scrubbed:
    """A structlog logger whose events have their string values scrubbed first."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def bind(self, **values: Any) -> _Scrubbed:
        return _Scrubbed(self._inner.bind(**values))

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in _EVENT_METHODS:
            return method

        def scrubbed(event: Any = None, *args: Any, **values: Any) -> Any:
            if isinstance(event, str):
                event = scrub(event)
            return method(event, *args, **{k: scrub_value(v) for k, v in values.items()})

        return scrubbed


def get_logger(**bound: Any) -> Any:
    """The library's own logger (plugins, hub, CLI), unfiltered, scrubbing its events."""
    return _Scrubbed(structlog.get_logger("obshub", **bound))


_scrubbing_classes: dict[int, type[Any]] = {}


def _scrubbing_logger_class(level: int) -> type[Any]:
    """structlog's filtering logger for ``level``, scrubbing what it passes on."""
    found = _scrubbing_classes.get(level)
    if found is not None:
        return found
    base: type[Any] = structlog.make_filtering_bound_logger(level)

    def _proxy_to_logger(self: Any, method_name: str, event: Any = None, **event_kw: Any) -> Any:
        if isinstance(event, str):
            event = scrub(event)
        clean = {key: scrub_value(value) for key, value in event_kw.items()}
        return base._proxy_to_logger(self, method_name, event, **clean)

    made: type[Any] = type(
        f"Scrubbing{base.__name__}", (base,), {"_proxy_to_logger": _proxy_to_logger}
    )
    _scrubbing_classes[level] = made
    return made


def exporter_logger(name: str, level: int, **bound: Any) -> Any:
    """A logger bound with ``exporter=name`` that drops events below ``level``.

    String values of its events (and nested in dicts and lists) are scrubbed
    of URL and header secrets first.
    """
    return structlog.wrap_logger(
        None,
        wrapper_class=_scrubbing_logger_class(level),
        logger_factory_args=("obshub",),
        exporter=name,
        **bound,
    )


_MAX_KEYS = 1024
# Every live RateLimitedLog, for reset_rate_limits() (tests); weak, so limiters die with
# their channels.
_LIMITERS: weakref.WeakSet[RateLimitedLog] = weakref.WeakSet()
_LIMITERS_LOCK = threading.Lock()


def reset_rate_limits() -> None:
    """Reset every `RateLimitedLog` alive (``obshub.testing.reset_rate_limits``)."""
    with _LIMITERS_LOCK:
        limiters = list(_LIMITERS)
    for limiter in limiters:
        limiter.reset()


class RateLimitedLog:
    """Logs a recurring problem once per ``interval`` seconds, with a count.

    The first occurrence is logged at once; later ones within the interval are
    counted and reported as ``suppressed=N`` with the next line that is logged.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        with _LIMITERS_LOCK:
            _LIMITERS.add(self)

    def reset(self) -> None:
        """Forget what was logged: the next occurrence of each problem is logged at once."""
        with self._lock:
            self._last.clear()
            self._suppressed.clear()

    def __call__(
        self, log: Any, method: str, event: str, *, limit_key: str = "", **kw: Any
    ) -> None:
        """Log ``event`` unless it (with the same ``limit_key``) was logged lately."""
        now = time.monotonic()
        key = f"{event}\x00{limit_key}"
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            if len(self._last) >= _MAX_KEYS:
                # Bounded memory even with endless distinct keys (e.g. typos in field names).
                self._last.clear()
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            kw["suppressed"] = suppressed
        try:
            getattr(log, method)(event, **kw)
        except Exception:  # a broken log pipeline must not hurt the application
            return
