"""``memory``: keeps every event and score in a list, for tests and notebooks."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from obshub._exporters import Exporter
from obshub.spans import EventKind, Score, Span, SpanEvent

__all__ = ["MemoryExporter"]


class MemoryExporter(Exporter):
    """Records what it receives. ``wait_for(n)`` blocks until n ended spans arrived.

    It takes every event kind (started, updated, ended) and scores. Memory grows
    with what it records: use it in tests and notebooks, not in production.
    """

    name: ClassVar[str] = "memory"
    event_kinds: ClassVar[frozenset[EventKind]] = frozenset(EventKind)

    def __init__(self, **common: Any) -> None:
        common.setdefault("realtime", True)
        super().__init__(**common)
        self._cond = threading.Condition()
        self.events: list[SpanEvent] = []
        self.scores: list[Score] = []
        self.batches: list[int] = []

    def export(self, events: Sequence[SpanEvent]) -> None:
        with self._cond:
            self.events.extend(events)
            self.batches.append(len(events))
            self._cond.notify_all()

    def export_scores(self, scores: Sequence[Score]) -> None:
        with self._cond:
            self.scores.extend(scores)
            self._cond.notify_all()

    def spans(self) -> list[Span]:
        """The ended spans, in the order they arrived."""
        with self._cond:
            return [e.span for e in self.events if e.kind is EventKind.ENDED]

    def span(self, name: str) -> Span:
        """The ended span called ``name`` (KeyError if none, ValueError if several)."""
        found = [s for s in self.spans() if s.name == name]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise ValueError(f"{len(found)} spans are called {name!r}")
        return found[0]

    def traces(self) -> dict[str, list[Span]]:
        """Ended spans grouped by trace id."""
        grouped: dict[str, list[Span]] = {}
        for span in self.spans():
            grouped.setdefault(span.trace_id, []).append(span)
        return grouped

    def wait_for(
        self, count: int, timeout: float = 5.0, kind: EventKind | None = EventKind.ENDED
    ) -> bool:
        """Wait until ``count`` events of ``kind`` (None: any kind) arrived."""
        deadline = time.monotonic() + timeout

        def arrived() -> int:
            return sum(1 for e in self.events if kind is None or e.kind is kind)

        with self._cond:
            while arrived() < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_for_scores(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` scores arrived."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.scores) >= count, timeout)

    def clear(self) -> None:
        """Forget everything recorded."""
        with self._cond:
            self.events.clear()
            self.scores.clear()
            self.batches.clear()
