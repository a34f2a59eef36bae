"""Queued records into what exporters receive: span events and scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from obshub._serialization import describe
from obshub.spans import Score, SpanEvent

__all__ = ["ITEM_SIZE", "build", "describe"]

#: Estimated bytes of a queued item that carries no estimate of its own (a score,
#: a replayed event); recorded spans carry ``size`` (see ``obshub._size``).
ITEM_SIZE = 1024


def build(
    items: Sequence[Any], on_failure: Callable[[BaseException], None]
) -> tuple[list[SpanEvent], list[Score], int]:
    """(events, scores, dropped by a processor) from queued items.

    A recorded span is built into its `SpanEvent` here, on the worker (the
    snapshot, JSON-safe values, processors); replayed events and scores pass as
    they are. A record whose build raises is reported to ``on_failure`` and
    left out; one a processor dropped is counted in the third value.
    """
    events: list[SpanEvent] = []
    scores: list[Score] = []
    skipped = 0
    for item in items:
        if isinstance(item, Score):
            scores.append(item)
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
                events.append(event)
    return events, scores, skipped
