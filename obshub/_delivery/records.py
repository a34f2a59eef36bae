"""Queued records into what exporters receive: span events and scores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from obshub._delivery.tail import TailBuffer
from obshub._exporters import Exporter
from obshub._logging import RateLimitedLog
from obshub._processors import SpanProcessor
from obshub._sampling import Sampler, TailRule
from obshub._serialization import describe
from obshub.spans import Score, SpanEvent

__all__ = ["ITEM_SIZE", "SIZED_FROM", "Sized", "Stage", "build", "describe", "size_of"]

#: Estimated bytes of a queued item that has no estimate of its own (a score, an event).
ITEM_SIZE = 1024
#: Queue length from which a channel estimates what each new item keeps alive: a
#: backlog. Below it the exporter keeps up, and recording pays nothing for the estimate.
SIZED_FROM = 1024


class Sized:
    """A queued item with the bytes the channel counted for it (items queued in a backlog)."""

    __slots__ = ("item", "size")

    def __init__(self, item: Any, size: int) -> None:
        self.item = item
        self.size = size


def size_of(item: Any) -> int:
    """Estimated bytes ``item`` keeps alive (recorded spans estimate their own values)."""
    estimate = getattr(item, "approx_size", None)
    return int(estimate()) if estimate is not None else ITEM_SIZE


class Stage:
    """What one exporter alone does to what its config built: sampling and processors.

    Runs on the exporter's worker: the exporter's head sampler (by trace id),
    the tail rules (its config's and its own: traces held in a `TailBuffer`
    until complete), then its processors on what is kept. The config's event
    is shared with the other exporters and read-only: a processor returns a
    new span (``attrs.evolve``) and the exporter gets a new event around it.
    """

    __slots__ = ("_limited", "_lock", "_log", "_name", "processors", "sampler", "tail")

    def __init__(
        self,
        exporter: Exporter,
        log: Any,
        limited: RateLimitedLog,
        tail_rules: Sequence[TailRule] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # getattr: an exporter written before these keys may not have set them.
        sampler: Sampler | None = getattr(exporter, "sampler", None)
        rules = list(tail_rules)
        if sampler is not None and sampler.tail is not None:
            rules.append(sampler.tail)
            sampler = None
        self.sampler = sampler
        self.tail = TailBuffer(rules, monotonic) if rules else None
        # The worker and, with a spool, the overflow thread build items: the
        # tail buffer is theirs in turn.
        self._lock = threading.Lock()
        self.processors: tuple[SpanProcessor, ...] = tuple(getattr(exporter, "processors", ()))
        self._name = exporter.instance_name
        self._log = log
        self._limited = limited

    @property
    def active(self) -> bool:
        """True when the exporter samples or processes on its own (or its config tail-samples)."""
        return self.sampler is not None or self.tail is not None or bool(self.processors)

    def keeps_score(self, score: Score) -> bool:
        """False for the score of a trace this exporter's sampling left out."""
        trace_id = score.trace_id
        if trace_id is None:
            return True
        if self.sampler is not None and not self.sampler.should_sample(trace_id):
            return False
        if self.tail is None:
            return True
        with self._lock:
            return self.tail.decision(trace_id) is not False

    def run(self, events: Sequence[SpanEvent]) -> tuple[list[SpanEvent], int]:
        """(what the exporter receives now, how many events were dropped)."""
        sampler = self.sampler
        tail = self.tail
        dropped = 0
        kept: list[SpanEvent] = []
        if sampler is not None:
            for event in events:
                if sampler.should_sample(event.span.trace_id):
                    kept.append(event)
                else:
                    dropped += 1
        else:
            kept = list(events)
        if tail is not None:
            offered, kept = kept, []
            with self._lock:
                for event in offered:
                    dropped += tail.offer(event, kept)
                dropped += tail.expire(kept)
        return self._process(kept, dropped)

    def release(self, everything: bool) -> tuple[list[SpanEvent], int]:
        """Traces held too long (or all of them, at shutdown), decided by the head rule."""
        if self.tail is None:
            return [], 0
        kept: list[SpanEvent] = []
        with self._lock:
            dropped = self.tail.expire(kept, everything)
        return self._process(kept, dropped)

    def _process(self, events: list[SpanEvent], dropped: int) -> tuple[list[SpanEvent], int]:
        if not self.processors:
            return events, dropped
        out: list[SpanEvent] = []
        for event in events:
            processed = self._apply(event)
            if processed is None:
                dropped += 1
            else:
                out.append(processed)
        return out, dropped

    def _apply(self, event: SpanEvent) -> SpanEvent | None:
        original = span = event.span
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
    fresh: list[SpanEvent] = []
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
            except Exception as exc:
                on_failure(exc)
                continue
            if event is None:
                skipped += 1
            else:
                fresh.append(event)
    if stage is not None:
        fresh, dropped = stage.run(fresh)
        skipped += dropped
    events.extend(fresh)
    return events, scores, skipped
