"""Queued records into what exporters receive: span events and scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from obshub._exporters import Exporter
from obshub._logging import RateLimitedLog
from obshub._serialization import describe
from obshub.spans import Score, SpanEvent

__all__ = ["ITEM_SIZE", "Stage", "build", "describe"]

#: Estimated bytes of a queued item that carries no estimate of its own (a score,
#: a replayed event); recorded spans carry ``size`` (see ``obshub._size``).
ITEM_SIZE = 1024


class Stage:
    """What one exporter alone does to what its config built: its sampler and processors.

    Runs on the exporter's worker. The config's event is shared with the
    other exporters and read-only: a processor returns a new span
    (``attrs.evolve``) and the exporter gets a new event around it; the
    shared one is untouched.
    """

    __slots__ = ("_limited", "_log", "_name", "processors", "sampler")

    def __init__(self, exporter: Exporter, log: Any, limited: RateLimitedLog) -> None:
        self.sampler = exporter.sampler
        self.processors = exporter.processors
        self._name = exporter.instance_name
        self._log = log
        self._limited = limited

    @property
    def active(self) -> bool:
        """True when the exporter has a sampler or processors of its own."""
        return self.sampler is not None or bool(self.processors)

    def keeps_score(self, score: Score) -> bool:
        """False for the score of a trace this exporter's sampler left out."""
        sampler = self.sampler
        return sampler is None or score.trace_id is None or sampler.should_sample(score.trace_id)

    def __call__(self, event: SpanEvent) -> SpanEvent | None:
        """The event this exporter receives, or None when its sampler or a processor drops it."""
        original = span = event.span
        sampler = self.sampler
        if sampler is not None and not sampler.should_sample(span.trace_id):
            return None
        for processor in self.processors:
            try:
                result = processor.process(span)
            except Exception as exc:
                self._limited(
                    self._log,
                    "error",
                    "processor_failed",
                    exporter=self._name,
                    processor=type(processor).__name__,
                    error=describe(exc),
                )
                return None
            if result is None:
                return None
            span = result
        if span is original:
            return event
        return SpanEvent(
            kind=event.kind,
            span=span,
            config_name=event.config_name,
            service_name=event.service_name,
        )


def build(
    items: Sequence[Any],
    on_failure: Callable[[BaseException], None],
    stage: Stage | None = None,
) -> tuple[list[SpanEvent], list[Score], int]:
    """(events, scores, dropped by a sampler or processor) from queued items.

    A recorded span is built into its `SpanEvent` here, on the worker (the
    snapshot, JSON-safe values, the config's processors), then goes through
    the exporter's own ``stage``; replayed events and scores pass as they are
    (a replayed event went through the stage before it was spooled). A record
    whose build raises is reported to ``on_failure`` and left out; one a
    sampler or processor dropped is counted in the third value.
    """
    events: list[SpanEvent] = []
    scores: list[Score] = []
    skipped = 0
    for item in items:
        if isinstance(item, Score):
            if stage is None or stage.keeps_score(item):
                scores.append(item)
            else:
                skipped += 1
        elif isinstance(item, SpanEvent):  # replayed from the spool or a file
            events.append(item)
        else:
            try:
                event = item.build_event()
                if event is not None and stage is not None:
                    event = stage(event)
            except Exception as exc:
                on_failure(exc)
                continue
            if event is None:
                skipped += 1
            else:
                events.append(event)
    return events, scores, skipped
