"""Tail sampling on an exporter's worker: traces held until complete, then kept or dropped.

`TailBuffer` holds the events of each open trace (bounded in traces, events
and time) and decides when the root span ends, with every `TailRule` that
applies to the exporter (its config's, then its own): a trace is kept when
all of them keep it. What the bounds push out is decided by the head rule (the
ratios, by trace id) and counted in ``overflow``; events of a trace that arrive
after its decision follow it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from obshub._sampling import TailRule
from obshub.spans import EventKind, SpanEvent

__all__ = ["TailBuffer"]


class _Held:
    __slots__ = ("events", "since")

    def __init__(self, since: float) -> None:
        self.since = since
        self.events: list[SpanEvent] = []


class TailBuffer:
    """The open traces of one exporter (worker thread only: no lock)."""

    def __init__(self, rules: Sequence[TailRule], monotonic: Callable[[], float]) -> None:
        self.rules = tuple(rules)
        self.max_traces = min(r.max_traces for r in self.rules)
        self.max_events = min(r.max_spans for r in self.rules)
        self.max_wait = min(r.max_wait for r in self.rules)
        self._monotonic = monotonic
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._decided: OrderedDict[str, bool] = OrderedDict()
        self._events = 0
        #: Traces decided by the head rule because a bound pushed them out.
        self.overflow = 0

    @property
    def held(self) -> int:
        """Events held now."""
        return self._events

    def decision(self, trace_id: str) -> bool | None:
        """The decision taken for a trace, if it was taken and is still remembered."""
        return self._decided.get(trace_id)

    def offer(self, event: SpanEvent, out: list[SpanEvent]) -> int:
        """Hold ``event``, or settle its trace (kept events go to ``out``); the count dropped."""
        span = event.span
        trace_id = span.trace_id
        decided = self._decided.get(trace_id)
        if decided is not None:
            if decided:
                out.append(event)
                return 0
            return 1
        held = self._held.get(trace_id)
        if held is None:
            held = self._held[trace_id] = _Held(self._monotonic())
        held.events.append(event)
        self._events += 1
        if event.kind is EventKind.ENDED and span.parent_span_id is None:
            del self._held[trace_id]
            self._events -= len(held.events)
            ended = [e.span for e in held.events if e.kind is EventKind.ENDED]
            keep = all(rule.decide(trace_id, ended) for rule in self.rules)
            return self._settle(trace_id, held, keep, out)
        dropped = 0
        while self._held and (len(self._held) > self.max_traces or self._events > self.max_events):
            dropped += self._push_out(out)
        return dropped

    def expire(self, out: list[SpanEvent], everything: bool = False) -> int:
        """Decide (head rule) the traces held longer than ``max_wait``, or all of them."""
        dropped = 0
        if everything:
            while self._held:
                dropped += self._push_out(out)
            return dropped
        limit = self._monotonic() - self.max_wait
        while self._held and next(iter(self._held.values())).since <= limit:
            dropped += self._push_out(out)
        return dropped

    def _push_out(self, out: list[SpanEvent]) -> int:
        trace_id, held = self._held.popitem(last=False)
        self._events -= len(held.events)
        self.overflow += 1
        keep = all(rule.head(trace_id) for rule in self.rules)
        return self._settle(trace_id, held, keep, out)

    def _settle(self, trace_id: str, held: _Held, keep: bool, out: list[SpanEvent]) -> int:
        decided = self._decided
        decided[trace_id] = keep
        while len(decided) > 2 * self.max_traces:
            decided.popitem(last=False)
        if keep:
            out.extend(held.events)
            return 0
        return len(held.events)
