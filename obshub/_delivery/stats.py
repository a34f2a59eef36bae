"""What a channel counts, and what a flush reports.

`Counters` is the one mutable record of a channel's outcomes, each counter a
named attribute changed only through `Counters.count` (under one lock);
`ChannelStats`, `ExporterFlush` and `FlushResult` are the frozen views that
``hub.stats()`` and ``hub.flush()`` hand out.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import attrs

__all__ = ["ChannelStats", "Counters", "ExporterFlush", "FlushResult", "Losses"]


@attrs.frozen
class ChannelStats:
    """Counters of one exporter instance (events and scores alike).

    - ``queued``: waiting in the queue or being exported right now;
    - ``exported``: accepted by the exporter;
    - ``dropped``: lost without reaching the exporter or the spool (queue full
      with no spool, hub shut down, left behind when shutdown timed out, or
      refused by a full disk);
    - ``retried``: re-sent after a retryable failure (counted per attempt);
    - ``failed``: given up (a non-retryable error other than a refusal of the
      content, an exporter bug, or retries exhausted with no spool);
    - ``spooled``: written to the disk spool instead of being lost (exactly
      what a replay can read back);
    - ``replayed``: read back from the spool (or a file) and queued again;
    - ``evicted``: deleted from a full spool, oldest first;
    - ``rejected``: refused by the backend for their content (e.g. a 400 for
      one bad span), isolated from the rest of their batch and kept in the
      spool directory's ``dead-letter.jsonl`` when there is a spool;
    - ``tail_overflow``: traces a tail sampler could not hold whole (too many
      traces or events held, or held too long), decided by its ratio instead;
    - ``paused``: the backend refused this client (401/403) and sends wait;
    - ``state``: ``"running"``, ``"paused"`` or ``"disabled"`` (an exporter
      that failed to start: every counter stays 0 and ``reason`` says why).
    """

    config: str
    exporter: str
    type: str
    realtime: bool
    queued: int
    exported: int
    dropped: int
    retried: int
    failed: int
    spooled: int = 0
    replayed: int = 0
    evicted: int = 0
    rejected: int = 0
    tail_overflow: int = 0
    paused: bool = False
    state: str = "running"
    reason: str | None = None


class Losses(NamedTuple):
    """The counters a flush reports: items that did not reach the backend."""

    dropped: int = 0
    failed: int = 0
    spooled: int = 0
    rejected: int = 0

    def since(self, base: Losses) -> Losses:
        """What was added to each counter since ``base``."""
        return Losses(*(now - then for now, then in zip(self, base, strict=True)))


class Counters:
    """A channel's outcome counters; changed only through `count`, under one lock."""

    __slots__ = (
        "_lock",
        "dropped",
        "exported",
        "failed",
        "rejected",
        "replayed",
        "retried",
        "spooled",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.exported = 0
        self.dropped = 0
        self.retried = 0
        self.failed = 0
        self.spooled = 0
        self.replayed = 0
        self.rejected = 0

    def count(
        self,
        *,
        exported: int = 0,
        dropped: int = 0,
        retried: int = 0,
        failed: int = 0,
        spooled: int = 0,
        replayed: int = 0,
        rejected: int = 0,
    ) -> None:
        """Add to the named counters."""
        with self._lock:
            self.exported += exported
            self.dropped += dropped
            self.retried += retried
            self.failed += failed
            self.spooled += spooled
            self.replayed += replayed
            self.rejected += rejected

    def losses(self) -> Losses:
        """The loss counters now."""
        with self._lock:
            return Losses(self.dropped, self.failed, self.spooled, self.rejected)


@attrs.frozen
class ExporterFlush:
    """What one exporter's flush found: losses since its previous flush, and what is left.

    ``dropped``, ``failed``, ``spooled`` and ``rejected`` count items that did
    not reach the backend (see `ChannelStats`); ``pending`` is what was still
    queued or in flight when the wait ended (``timed_out``).
    """

    exporter: str
    dropped: int = 0
    failed: int = 0
    spooled: int = 0
    rejected: int = 0
    pending: int = 0
    timed_out: bool = False

    @classmethod
    def of(cls, exporter: str, losses: Losses, pending: int = 0) -> ExporterFlush:
        """A result from loss counts (and, for a flush that did not finish, what is left)."""
        return cls(exporter, *losses, pending=pending, timed_out=pending > 0)

    @property
    def delivered(self) -> bool:
        """True when everything recorded before the flush reached the backend."""
        return not (
            self.timed_out
            or self.pending
            or self.dropped
            or self.failed
            or self.spooled
            or self.rejected
        )

    def __bool__(self) -> bool:
        return self.delivered


@attrs.frozen
class FlushResult:
    """What `Hub.flush` found, per exporter (``"<config>/<exporter>"``).

    Truthy only when every exporter delivered everything recorded before the
    flush, so ``if hub.flush(): ...`` reads as before. Otherwise the counts say
    what happened: ``result.dropped``, ``result.failed``, ``result.spooled``,
    ``result.rejected``, ``result.pending`` (totals), ``result.exporters[name]``
    (per exporter), ``result.timed_out``.
    """

    exporters: dict[str, ExporterFlush] = attrs.field(factory=dict)

    def __bool__(self) -> bool:
        return all(e.delivered for e in self.exporters.values())

    @property
    def ok(self) -> bool:
        """The same as ``bool(result)``."""
        return bool(self)

    @property
    def timed_out(self) -> bool:
        """True when the wait ended before some exporter was done."""
        return any(e.timed_out for e in self.exporters.values())

    @property
    def dropped(self) -> int:
        """Items dropped (queue full, shut down, disk full) since the previous flush."""
        return sum(e.dropped for e in self.exporters.values())

    @property
    def failed(self) -> int:
        """Items given up since the previous flush."""
        return sum(e.failed for e in self.exporters.values())

    @property
    def spooled(self) -> int:
        """Items written to disk (to be sent later) since the previous flush."""
        return sum(e.spooled for e in self.exporters.values())

    @property
    def rejected(self) -> int:
        """Items the backends refused for their content since the previous flush."""
        return sum(e.rejected for e in self.exporters.values())

    @property
    def pending(self) -> int:
        """Items still queued or in flight when the wait ended."""
        return sum(e.pending for e in self.exporters.values())

    def __repr__(self) -> str:
        if self:
            return f"FlushResult(ok=True, exporters={len(self.exporters)})"
        fields = ("dropped", "failed", "spooled", "rejected", "pending", "timed_out")
        problems = [
            f"{name}: " + ", ".join(f"{f}={getattr(e, f)}" for f in fields if getattr(e, f))
            for name, e in self.exporters.items()
            if not e.delivered
        ]
        return f"FlushResult(ok=False, {'; '.join(problems)})"
