"""What could not be delivered: kept on disk, or counted as lost — never silently gone.

`Keeper.save` writes items to the exporter's spool (or, without one, counts
them as dropped or failed); `Keeper.reject` keeps items the backend refused
for their content in the dead-letter file. Both log what they did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from obshub._delivery.records import Stage, build, describe
from obshub._delivery.spool import DEAD_LETTER_FILE, Spool, SpoolWriteError
from obshub._delivery.stats import Counters
from obshub._exporters import ExportError
from obshub._logging import RateLimitedLog
from obshub.spans import Score, SpanEvent

__all__ = ["Keeper"]


class Keeper:
    """Saves, drops and rejects for one channel; all counted in its `Counters`."""

    def __init__(
        self,
        name: str,
        spool: Spool | None,
        counters: Counters,
        log: Any,
        limited: RateLimitedLog,
        stage: Stage | None = None,
    ) -> None:
        self.name = name
        #: The exporter's own sampler and processors (None: it has none).
        self.stage = stage if stage is not None and stage.active else None
        self.spool = spool
        self.counters = counters
        self.log = log
        self.limited = limited
        #: Set when a batch went to disk because the backend failed: the next
        #: successful send wakes the replay.
        self.backlog = False

    def build(self, items: Sequence[Any]) -> tuple[list[SpanEvent], list[Score]]:
        """Events and scores from queued items; a record that fails to build is failed."""
        events, scores, skipped = build(items, self.build_failed, self.stage)
        if skipped:
            # A sampler or processor chose to drop them: handled, not lost.
            self.counters.count(exported=skipped)
        return events, scores

    @property
    def tail_overflow(self) -> int:
        """Traces the tail sampler decided by its ratio because a bound pushed them out."""
        stage = self.stage
        return 0 if stage is None or stage.tail is None else stage.tail.overflow

    def release(self, everything: bool = False) -> list[SpanEvent]:
        """Events of held traces decided now by the head rule (too old, or all at shutdown)."""
        if self.stage is None:
            return []
        events, dropped = self.stage.release(everything)
        if dropped:
            self.counters.count(exported=dropped)
        return events

    def build_failed(self, exc: BaseException) -> None:
        """Count a record that could not be built into its event as failed, and log it."""
        self.counters.count(failed=1)
        self.limited(self.log, "error", "event_build_failed", error=describe(exc))

    def drop(self, count: int, reason: str, **context: Any) -> None:
        """Count ``count`` items as dropped (gone), with a rate-limited warning."""
        self.counters.count(dropped=count)
        self.limited(
            self.log,
            "warning",
            "events_dropped",
            limit_key=reason,
            reason=reason,
            count=count,
            dropped_total=self.counters.dropped,
            **context,
        )

    def save(self, items: Sequence[Any], reason: str) -> None:
        """Spool ``items`` (queued records, events or scores), or count them as lost.

        ``spooled`` counts exactly what a replay can read back; what the disk
        refused is counted as ``dropped``.
        """
        if not items:
            return
        if self.spool is None:
            if reason == "paused":
                self.counters.count(failed=len(items))
            else:
                self.drop(len(items), reason)
            return
        built: list[SpanEvent | Score] = []
        if any(not isinstance(i, (SpanEvent, Score)) for i in items):
            events, scores = self.build(items)
            built.extend(events)
            built.extend(scores)
        else:
            built.extend(items)
        try:
            written = self.spool.append(built)
        except Exception as exc:  # the disk refused (OSError), or an item would not encode
            written = exc.written if isinstance(exc, SpoolWriteError) else 0
            error = exc.strerror if isinstance(exc, OSError) else describe(exc)
            self.limited(self.log, "error", "spool_write_failed", error=error)
            self.drop(len(built) - written, "spool_write_failed")
            if not written:
                return
        self.counters.count(spooled=written)
        if reason != "queue_full":
            self.backlog = True  # the backend failed: replay as soon as it answers again
        self.limited(
            self.log,
            "warning",
            "events_spooled",
            limit_key=reason,
            reason=reason,
            count=written,
            spooled_total=self.counters.spooled,
        )

    def reject(self, items: Sequence[Any], what: str, error: ExportError) -> None:
        """Keep items the backend refused (the dead-letter file, with a spool); count them."""
        where = None
        spool = self.spool
        if spool is not None:
            rejection = {
                "status": error.status,
                "reason": str(error),
                "exporter": self.name,
                "at": _utc_now(),
            }
            kept = 0
            try:
                kept = spool.dead_letter(items, rejection)
            except Exception as exc:  # the disk refused, or an item would not encode
                text = exc.strerror if isinstance(exc, OSError) else describe(exc)
                self.limited(self.log, "error", "dead_letter_write_failed", error=text)
            if kept:
                where = str(spool.directory / DEAD_LETTER_FILE)
            else:
                self.limited(
                    self.log,
                    "error",
                    "dead_letter_full",
                    limit_key="full",
                    count=len(items),
                    max_bytes=spool.max_bytes // 4,
                )
        self.counters.count(rejected=len(items))
        self.limited(
            self.log,
            "error",
            "export_rejected",
            what=what,
            count=len(items),
            status=error.status,
            error=str(error),
            dead_letter=where,
        )

    def note(self, event: str, **fields: Any) -> None:
        """An info line; a broken log pipeline must not kill the worker."""
        with contextlib.suppress(Exception):
            self.log.info(event, **fields)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
