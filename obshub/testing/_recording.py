"""`RecordingExporter`: a memory exporter that also records how it was called."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from obshub._builtin.memory import MemoryExporter
from obshub.spans import EventKind, SpanEvent

__all__ = ["RecordingExporter"]


class RecordingExporter(MemoryExporter):
    """A `MemoryExporter` that also records how it was called.

    Besides ``events``, ``scores``, ``spans()``, ``span(name)``, ``traces()``
    and ``wait_for(...)`` it keeps ``export_calls`` (including failed ones),
    ``flushes``, ``shutdowns`` and ``threads`` (names of the threads that
    called `export`). ``event_kinds`` chooses which events it asks the
    hub for (default: all three). `fail_next` makes the next exports
    raise, to test how code copes with a failing backend.
    """

    name: ClassVar[str] = "recording"

    def __init__(
        self, *, event_kinds: Iterable[EventKind | str] | None = None, **common: Any
    ) -> None:
        super().__init__(**common)
        if event_kinds is not None:
            # Per instance, like the jsonl exporter's ``events`` setting.
            self.event_kinds = frozenset(EventKind(k) for k in event_kinds)  # type: ignore[misc]
        self.export_calls = 0
        self.flushes = 0
        self.shutdowns = 0
        self.threads: set[str] = set()
        self._failures: deque[Exception] = deque()

    @property
    def condition(self) -> threading.Condition:
        """Notified whenever something is recorded (for `wait_for`)."""
        return self._cond

    def fail_next(self, *errors: Exception) -> None:
        """Raise ``errors`` from the next exports, one per call, in order.

        ``fail_next(ExportError("down", retryable=True))`` makes the channel
        retry; the batch is recorded only once an export succeeds.
        """
        with self._cond:
            self._failures.extend(errors)

    def export(self, events: Sequence[SpanEvent]) -> None:
        """Record ``events`` (or raise the next error given to `fail_next`)."""
        with self._cond:
            self.export_calls += 1
            self.threads.add(threading.current_thread().name)
            error = self._failures.popleft() if self._failures else None
            self._cond.notify_all()
        if error is not None:
            raise error
        super().export(events)

    def flush(self) -> None:
        """Count the call."""
        with self._cond:
            self.flushes += 1
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Count the call."""
        with self._cond:
            self.shutdowns += 1
            self._cond.notify_all()
