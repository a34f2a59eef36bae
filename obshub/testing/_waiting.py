"""Waiting without sleeps: `wait_for`, `wait_for_events`, and the receivers' `wait_for_count`.

Every wait of the kit blocks on a condition (or, for a bare predicate, re-checks
it at short, growing intervals) and raises `TimeoutError` saying what it waited
for and what did arrive; none returns a bool to be asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from obshub._builtin.memory import MemoryExporter
from obshub.spans import EventKind, SpanEvent

__all__ = ["DEFAULT_TIMEOUT", "wait_for", "wait_for_count", "wait_for_events"]

#: Seconds the helpers wait by default: generous, as waits normally take milliseconds.
DEFAULT_TIMEOUT = 5.0

_T = TypeVar("_T")


def wait_for(
    predicate: Callable[[], _T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    condition: threading.Condition | None = None,
    message: str | None = None,
) -> _T:
    """Wait until ``predicate()`` is truthy and return its value.

    With ``condition`` (e.g. `RecordingExporter.condition`), the wait
    blocks on it and wakes when it is notified: no polling. Without one, the
    predicate is re-checked at short, growing intervals. Raises
    `TimeoutError` (with ``message``) when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    if condition is not None:
        with condition:
            result = condition.wait_for(predicate, timeout)
    else:
        pause = threading.Event()
        delay = 0.001
        result = predicate()
        while not result:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            pause.wait(min(delay, remaining))
            delay = min(delay * 2, 0.05)
            result = predicate()
    if not result:
        raise TimeoutError(message or f"condition not met within {timeout:g} s")
    return result


def wait_for_events(
    exporter: MemoryExporter,
    count: int,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    kind: EventKind | str | None = EventKind.ENDED,
) -> list[SpanEvent]:
    """Wait until ``exporter`` received ``count`` events of ``kind``; return them.

    ``kind`` is ``ended`` by default (one per finished span), like
    `MemoryExporter.wait_for`; ``None`` counts every kind. Blocks on the
    exporter's condition (no polling); raises `TimeoutError` saying
    what did arrive.
    """
    wanted = None if kind is None else EventKind(kind)
    if not exporter.wait_for(count, timeout, kind=wanted):
        got = [f"{e.kind.value}:{e.span.name}" for e in exporter.events]
        what = "events" if wanted is None else f"{wanted.value} events"
        raise TimeoutError(
            f"waited {timeout:g} s for {count} {what}; received {len(got)} events: {got}"
        )
    return [e for e in list(exporter.events) if wanted is None or e.kind is wanted]


def wait_for_count(
    items: Callable[[], Sequence[_T]],
    count: int,
    *,
    condition: threading.Condition,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "items",
) -> list[_T]:
    """Wait until ``items()`` holds at least ``count`` entries; return them all.

    The wait convention of every test receiver in obshub and its plugins
    (``wait_for_requests``, ``wait_for_spans``, ``wait_for_observations``, ...):
    ``items`` is called holding ``condition`` (which the receiver notifies
    when it records something), the whole list is returned, oldest first, and
    `TimeoutError` says how many ``what`` were expected and how many arrived.
    """
    with condition:
        arrived = condition.wait_for(lambda: len(items()) >= count, timeout)
        got = list(items())
    if not arrived:
        raise TimeoutError(f"waited {timeout:g} s for {count} {what}; {len(got)} arrived")
    return got
