"""Delivery channels: one bounded queue and one worker thread per exporter instance.

The application thread only calls `Channel.put` — a length check and a
deque append, never a lock or a network call. Everything else (building the
span snapshot, serialisation, redaction, encoding, the export itself, retries)
happens on the channel's worker thread, so a slow or hung backend never delays
the application, and one exporter's trouble never reaches another's channel.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from obshub import _worker_token as worker_token
from obshub._logging import RateLimitedLog
from obshub.exporters import Exporter, ExportError
from obshub.spans import Score, SpanEvent
from obshub.spool import DEAD_LETTER_FILE, Spool, SpoolWriteError

__all__ = ["Channel", "ChannelStats", "ExporterFlush", "FlushResult"]


@attrs.frozen
class ChannelStats:
    """Counters of one exporter instance (events and scores alike).

    - ``queued``: waiting in the queue or being exported right now;
    - ``exported``: accepted by the exporter;
    - ``dropped``: lost without reaching the exporter or the spool (queue full
      with no spool, hub shut down, left behind when shutdown timed out);
    - ``retried``: re-sent after a retryable failure (counted per attempt);
    - ``failed``: given up (a non-retryable failure, an exporter bug, or
      retries exhausted with no spool);
    - ``spooled``: written to the disk spool instead of being lost;
    - ``replayed``: read back from the spool (or a file) and queued again;
    - ``evicted``: deleted from a full spool, oldest first;
    - ``rejected``: refused by the backend for their content (e.g. a 400 for
      one bad span), isolated from the rest of their batch and kept in the
      spool directory's ``dead-letter.jsonl`` when there is a spool;
    - ``paused``: the backend refused this client (401/403) and sends wait.
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
    paused: bool = False


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
    ``result.rejected`` (totals), ``result.exporters[name]`` (per exporter),
    ``result.timed_out``.
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
        """Items dropped (queue full, shut down) since the previous flush."""
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
        problems = [
            f"{name}: "
            + ", ".join(
                f"{field}={getattr(e, field)}"
                for field in ("dropped", "failed", "spooled", "rejected", "pending", "timed_out")
                if getattr(e, field)
            )
            for name, e in self.exporters.items()
            if not e.delivered
        ]
        return f"FlushResult(ok=False, {'; '.join(problems)})"


class _FlushRequest:
    """A marker put in the queue: everything before it is handled when it is reached."""

    __slots__ = ("base", "done", "losses")

    def __init__(self, base: tuple[int, ...]) -> None:
        self.done = threading.Event()
        self.base = base
        self.losses: tuple[int, ...] = (0, 0, 0, 0)

    @property
    def ok(self) -> bool:
        return self.done.is_set() and not any(self.losses)


_channels: weakref.WeakSet[Channel] = weakref.WeakSet()

#: Seconds between replay passes while the spool holds segments and sends succeed.
REPLAY_INTERVAL = 30.0
#: Items spilled to disk per spool append when the queue overflows.
_SPILL_CHUNK = 512
#: Estimated bytes of a queued item that carries no estimate of its own (a score,
#: a replayed event).
_ITEM_SIZE = 1024


class Channel:
    """The queue and worker that deliver one exporter instance's items.

    The queue is bounded twice: by ``max_queue_size`` items and by about
    ``max_queue_bytes`` (each item's size is estimated on the application
    thread from the lengths of the values it carries, see `approx_size`).

    With a spool (``spool_dir``), what cannot be delivered goes to disk instead
    of being lost: batches whose retries ran out, batches held while the
    backend refuses this client (401/403), items that overflow a full queue
    (written by a spill thread, never by the application thread), and what is
    still queued when shutdown times out. A replay thread sends the spool again
    at start-up, after the backend recovers, and every ``REPLAY_INTERVAL``.
    """

    def __init__(
        self,
        exporter: Exporter,
        config_name: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exporter = exporter
        self.config_name = config_name
        self.name = f"{config_name}/{exporter.instance_name}"
        self._monotonic = monotonic
        self._realtime = exporter.realtime
        self._max_batch = exporter.batch.max_size
        self._interval = exporter.batch.interval
        self._maxsize = exporter.max_queue_size
        self._max_bytes = exporter.max_queue_bytes
        self._wants_scores = exporter.supports_scores()
        self._log = exporter.log
        self._debug = exporter.log_level == "debug"
        self._limited = RateLimitedLog()
        self.spool: Spool | None = None
        if exporter.spool_dir is not None:
            self.spool = Spool(
                Path(exporter.spool_dir) / f"{config_name}.{exporter.instance_name}",
                max_bytes=exporter.spool_max_bytes,
                log=self._log,
            )
        self._replay_lock = threading.Lock()
        self._reset_state()
        _channels.add(self)
        self._start()

    def _reset_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._overflow: deque[Any] = deque()
        self._wake = threading.Event()
        self._room = threading.Event()
        self._spill_wake = threading.Event()
        self._replay_wake = threading.Event()
        self._stop = threading.Event()
        self._counter_lock = threading.Lock()
        # Held while the replay feeds the queue and while stop() closes it, so
        # nothing is queued after stop() took what was left.
        self._feed_lock = threading.Lock()
        self._closed = False
        self._stopped = False
        self._pending_flushes = 0
        self._in_flight: list[Any] = []
        self._paused_until = 0.0
        self._backlog = False  # spooled since the last successful send: replay on recovery
        # Estimated bytes queued. ``+=`` on the application threads and ``-=`` on
        # the worker are single bytecodes on an int attribute, which the GIL does
        # not interrupt; the figure is an estimate either way.
        self._bytes = 0
        self._exported = 0
        self._dropped = 0
        self._retried = 0
        self._failed = 0
        self._spooled = 0
        self._replayed = 0
        self._rejected = 0
        self._reported: tuple[int, ...] = (0, 0, 0, 0)  # losses at the last answered flush
        self._thread: threading.Thread | None = None
        self._spill_thread: threading.Thread | None = None
        self._replay_thread: threading.Thread | None = None

    def _start(self) -> None:
        base = f"obshub-{self.config_name}.{self.exporter.instance_name}"
        self._thread = threading.Thread(target=self._run, name=base, daemon=True)
        self._thread.start()
        if self.spool is not None:
            self._spill_thread = threading.Thread(
                target=self._spill_loop, name=f"{base}-spill", daemon=True
            )
            self._spill_thread.start()
            self._replay_thread = threading.Thread(
                target=self._replay_loop, name=f"{base}-replay", daemon=True
            )
            self._replay_thread.start()

    # -- application side -----------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue one item; spill or drop it (counted) when the queue is full or closed."""
        queue = self._queue
        if len(queue) >= self._maxsize or self._bytes >= self._max_bytes or self._closed:
            self._overflowing(item)
            return
        self._bytes += getattr(item, "size", _ITEM_SIZE)
        queue.append(item)
        if self._realtime or len(queue) >= self._max_batch:
            wake = self._wake
            if not wake.is_set():
                wake.set()

    def put_score(self, score: Score) -> None:
        """Queue a score if the exporter takes scores."""
        if self._wants_scores:
            self.put(score)

    def _overflowing(self, item: Any) -> None:
        # The application thread never touches the disk: the spill thread does,
        # from a second queue of the same bound.
        if self.spool is not None and not self._stopped and len(self._overflow) < self._maxsize:
            self._overflow.append(item)
            if not self._spill_wake.is_set():
                self._spill_wake.set()
            return
        self._drop(1, "closed" if self._closed else "queue_full")

    def _drop(self, count: int, reason: str) -> None:
        with self._counter_lock:
            self._dropped += count
            total = self._dropped
        extra: dict[str, Any] = {}
        if reason == "queue_full":
            by_bytes = self._bytes >= self._max_bytes
            extra = {
                "max_queue_size": self._maxsize,
                "max_queue_bytes": self._max_bytes,
                "limit": "max_queue_bytes" if by_bytes else "max_queue_size",
                "hint": (
                    "the exporter cannot keep up with what is recorded: raise "
                    f"{'max_queue_bytes' if by_bytes else 'max_queue_size'}, or set "
                    "spool_dir to keep the overflow on disk"
                ),
            }
        self._limited(
            self._log,
            "warning",
            "events_dropped",
            limit_key=reason,
            reason=reason,
            count=count,
            dropped_total=total,
            **extra,
        )

    # -- control ------------------------------------------------------------

    def _losses(self) -> tuple[int, ...]:
        return (self._dropped, self._failed, self._spooled, self._rejected)

    def request_flush(self) -> _FlushRequest:
        """Ask the worker to send everything queued now; wait on the result's ``done``."""
        request = _FlushRequest(self._reported)
        if self._stopped:
            self._answer(request)
            return request
        with self._counter_lock:
            self._pending_flushes += 1
        self._queue.append(request)
        self._wake.set()
        return request

    def _answer(self, request: _FlushRequest) -> None:
        with self._counter_lock:
            now = self._losses()
            self._reported = now
        request.losses = _minus(now, request.base)
        request.done.set()

    def flush_result(self, request: _FlushRequest) -> ExporterFlush:
        """What ``request`` found (pending and timed out if it was not answered yet)."""
        if request.done.is_set():
            dropped, failed, spooled, rejected = request.losses
            return ExporterFlush(self.name, dropped, failed, spooled, rejected)
        dropped, failed, spooled, rejected = _minus(self._losses(), request.base)
        pending = self.pending()
        return ExporterFlush(self.name, dropped, failed, spooled, rejected, pending, True)

    def pending(self) -> int:
        """Items queued, overflowing to disk, or in flight now."""
        queued = sum(1 for item in list(self._queue) if not isinstance(item, _FlushRequest))
        return queued + len(self._in_flight) + len(self._overflow)

    def flush(self, timeout: float | None) -> ExporterFlush:
        """Send everything queued now; truthy when it all reached the backend in time."""
        request = self.request_flush()
        request.done.wait(timeout)
        return self.flush_result(request)

    def close(self) -> None:
        """Stop taking new items (they are counted as dropped)."""
        self._closed = True

    def stop(self, timeout: float | None) -> bool:
        """Stop the worker (after a flush, normally); False if it did not stop in time.

        Whatever is still queued, overflowing, or stuck in an export that did
        not return is spooled when a spool is configured, else counted as
        dropped. A spool replay under way keeps what it has not queued on disk.
        """
        if self._stopped:
            return True
        self._closed = True
        with self._feed_lock:
            self._stopped = True
        self._stop.set()
        self._wake.set()
        self._spill_wake.set()
        self._replay_wake.set()
        self._room.set()
        deadline = None if timeout is None else self._monotonic() + timeout
        thread = self._thread
        alive = False
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            alive = thread.is_alive()
        for helper in (self._spill_thread, self._replay_thread):
            if helper is not None and helper is not threading.current_thread():
                remaining = None if deadline is None else max(0.0, deadline - self._monotonic())
                helper.join(remaining)
        left: list[Any] = []
        queue = self._queue
        while queue:
            item = queue.popleft()
            if isinstance(item, _FlushRequest):
                self._answer(item)  # its items were not delivered: spooled or dropped below
            else:
                left.append(item)
        overflow = self._overflow
        while overflow:
            left.append(overflow.popleft())
        if alive:
            # An export that never returned: spooling its batch may duplicate
            # it at the backend if it does return, which ids make harmless.
            left.extend(self._in_flight)
        if left:
            self._save(left, "shutdown_timeout")
        if self.spool is not None:
            self.spool.close()
        return not alive

    def shutdown(self, timeout: float | None) -> bool:
        """Close, flush within ``timeout``, stop the worker; True if all was delivered."""
        deadline = None if timeout is None else self._monotonic() + timeout
        self.close()
        ok = self.flush(timeout).delivered
        remaining = None if deadline is None else max(0.0, deadline - self._monotonic())
        return self.stop(remaining) and ok

    @property
    def paused(self) -> bool:
        """True while the backend refuses this client and sends wait."""
        return self._monotonic() < self._paused_until

    def stats(self) -> ChannelStats:
        """A snapshot of the counters."""
        return ChannelStats(
            config=self.config_name,
            exporter=self.exporter.instance_name,
            type=type(self.exporter).name,
            realtime=self._realtime,
            queued=self.pending(),
            exported=self._exported,
            dropped=self._dropped,
            retried=self._retried,
            failed=self._failed,
            spooled=self._spooled,
            replayed=self._replayed,
            evicted=self.spool.evicted if self.spool is not None else 0,
            rejected=self._rejected,
            paused=self.paused,
        )

    # -- worker side --------------------------------------------------------

    def _due(self, deadline: float) -> bool:
        if self._stop.is_set() or self._pending_flushes:
            return True
        size = len(self._queue)
        if not size:
            return False
        return self._realtime or size >= self._max_batch or self._monotonic() >= deadline

    def _run(self) -> None:
        deadline = self._monotonic() + self._interval
        while not self._stop.is_set():
            if not self._due(deadline):
                self._wake.clear()
                # Re-check after clearing: an item may have arrived in between.
                if not self._due(deadline):
                    if self._realtime:
                        self._wake.wait()
                    else:
                        now = self._monotonic()
                        if now >= deadline:
                            deadline = now + self._interval
                        self._wake.wait(max(0.0, deadline - now))
                    continue
            if self._stop.is_set():
                break
            with worker_token.hold():
                self._drain_once()
            self._room.set()
            deadline = self._monotonic() + self._interval
        self._close_exporter()

    def _drain_once(self) -> None:
        """Send up to one batch; answer any flush request met on the way."""
        queue = self._queue
        items: list[Any] = []
        self._in_flight = items
        size = 0
        while queue and len(items) < self._max_batch:
            item = queue.popleft()
            if isinstance(item, _FlushRequest):
                self._bytes -= size
                size = 0
                self._send(items)
                items = []
                self._in_flight = items
                self._answer_flush(item)
                continue
            size += getattr(item, "size", _ITEM_SIZE)
            items.append(item)
        self._bytes -= size
        self._send(items)
        self._in_flight = []

    def _answer_flush(self, request: _FlushRequest) -> None:
        try:
            self.exporter.flush()
        except Exception as exc:
            self._limited(self._log, "error", "exporter_flush_failed", error=_describe(exc))
        with self._counter_lock:
            self._pending_flushes -= 1
        self._answer(request)

    def _events_and_scores(self, items: list[Any]) -> tuple[list[SpanEvent], list[Score]]:
        events: list[SpanEvent] = []
        scores: list[Score] = []
        for item in items:
            if isinstance(item, Score):
                scores.append(item)
                continue
            if isinstance(item, SpanEvent):  # replayed from the spool or a file
                events.append(item)
                continue
            try:
                event = item.build_event()
            except Exception as exc:
                self._count("failed", 1)
                self._limited(self._log, "error", "event_build_failed", error=_describe(exc))
                continue
            if event is not None:
                events.append(event)
            else:
                # A processor chose to drop it: handled, not lost.
                self._count("exported", 1)
        return events, scores

    def _send(self, items: list[Any]) -> None:
        if not items:
            return
        events, scores = self._events_and_scores(items)
        if events:
            self._deliver(self.exporter.export, events, "spans")
        if scores:
            self._deliver(self.exporter.export_scores, scores, "scores")

    def _deliver(self, fn: Callable[[Sequence[Any]], None], batch: list[Any], what: str) -> None:
        """Send ``batch``; when the backend refuses its content, isolate what it refuses."""
        refusal = self._attempt(fn, batch, what)
        if refusal is None:
            return
        if refusal.items is not None:
            # The exporter knows which items were refused; the others went through.
            named = [item for item in batch if any(item is r for r in refusal.items)]
            self._count("exported", len(batch) - len(named))
            self._reject(named or batch, what, refusal)
            return
        if len(batch) == 1:
            self._reject(batch, what, refusal)
            return
        # Halve the refused batch until each refused part is one item; the rest is
        # delivered. The request budget bounds the work when most items are refused:
        # what is still unresolved when it runs out is kept whole, never dropped.
        budget = len(batch)
        refused: list[tuple[list[Any], ExportError]] = [(batch, refusal)]
        isolated = 0
        while refused:
            part, error = refused.pop()
            if len(part) == 1 or budget <= 0 or self._stop.is_set():
                isolated += len(part)
                self._reject(part, what, error)
                continue
            middle = len(part) // 2
            for half in (part[middle:], part[:middle]):
                budget -= 1
                again = self._attempt(fn, half, what)
                if again is not None:
                    refused.append((half, again))
        with contextlib.suppress(Exception):  # a broken log pipeline must not kill the worker
            self._log.info(
                "batch_isolated",
                what=what,
                count=len(batch),
                rejected=isolated,
                requests=len(batch) - budget + 1,
            )

    def _attempt(
        self, fn: Callable[[Sequence[Any]], None], batch: list[Any], what: str
    ) -> ExportError | None:
        """Send ``batch`` with retries and pauses; the error when its content was refused.

        Every other outcome is settled here: exported, or given up (spooled,
        or counted as failed).
        """
        retry = self.exporter.retry
        count = len(batch)
        while True:
            if not self._wait_while_paused(batch, what):
                return None
            started = time.perf_counter()
            try:
                fn(batch)
            except ExportError as exc:
                if exc.pause is not None:
                    self._pause(exc, count, what)
                    continue
                if exc.rejected and not exc.retryable:
                    return exc
                if exc.retryable:
                    retry = retry.increment(exc.retry_after, now=self._monotonic())
                    if not retry.is_exhausted(now=self._monotonic()) and not self._stop.is_set():
                        wait = retry.get_backoff_time()
                        self._count("retried", count)
                        self._limited(
                            self._log,
                            "warning",
                            "export_retry",
                            what=what,
                            count=count,
                            attempt=retry.attempts,
                            wait_s=round(wait, 3),
                            status=exc.status,
                            error=str(exc),
                        )
                        with worker_token.released():
                            stopped = self._stop.wait(wait)
                        if stopped:
                            self._give_up(batch, what, exc, retry.attempts)
                            return None
                        continue
                # A retryable failure was already counted in ``retry.attempts``.
                made = retry.attempts if exc.retryable else retry.attempts + 1
                self._give_up(batch, what, exc, made)
                return None
            except Exception as exc:  # an exporter bug: contained, counted, logged
                self._count("failed", count)
                self._limited(
                    self._log,
                    "error",
                    "exporter_crashed",
                    what=what,
                    count=count,
                    error=_describe(exc),
                )
                return None
            self._succeeded(count, what, started, retry.attempts + 1)
            return None

    def _reject(self, items: list[Any], what: str, error: ExportError) -> None:
        """Keep items the backend refused (dead-letter file with a spool); count them."""
        kept = 0
        where = None
        spool = self.spool
        if spool is not None:
            rejection = {
                "status": error.status,
                "reason": str(error),
                "exporter": self.name,
                "at": _utc_now(),
            }
            try:
                kept = spool.dead_letter(items, rejection)
            except Exception as exc:  # the disk refused, or an item would not encode
                error_text = exc.strerror if isinstance(exc, OSError) else _describe(exc)
                self._limited(self._log, "error", "dead_letter_write_failed", error=error_text)
            if kept:
                where = str(spool.directory / DEAD_LETTER_FILE)
            else:
                self._limited(
                    self._log,
                    "error",
                    "dead_letter_full",
                    limit_key="full",
                    count=len(items),
                    max_bytes=spool.max_bytes // 4,
                )
        self._count("rejected", len(items))
        self._limited(
            self._log,
            "error",
            "export_rejected",
            what=what,
            count=len(items),
            status=error.status,
            error=str(error),
            dead_letter=where,
        )

    def _succeeded(self, count: int, what: str, started: float, attempts: int) -> None:
        self._count("exported", count)
        if self._paused_until:
            self._paused_until = 0.0
            # A broken log pipeline must not kill the worker.
            with contextlib.suppress(Exception):
                self.exporter.log.info("export_resumed", what=what, count=count)
            self._replay_wake.set()
        elif self._backlog:
            # The backend is back after batches were spooled: send them now, not
            # at the next REPLAY_INTERVAL.
            self._backlog = False
            self._replay_wake.set()
        if self._debug:
            # A broken log pipeline must not kill the worker.
            with contextlib.suppress(Exception):
                self._log.debug(
                    "batch_sent",
                    what=what,
                    count=count,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    attempts=attempts,
                )

    def _pause(self, exc: ExportError, count: int, what: str) -> None:
        pause = exc.pause or 0.0
        first = not self._paused_until
        self._paused_until = self._monotonic() + pause
        if self.spool is not None:
            # The held batch goes to the spool: the replay thread probes once the
            # pause is over, even if nothing new is recorded.
            self._replay_wake.set()
        self._limited(
            self._log,
            "error",
            "export_paused",
            limit_key=str(exc.status),
            what=what,
            status=exc.status,
            pause_s=round(pause, 3),
            held=count + len(self._queue),
            first=first,
            error=str(exc),
        )

    def _wait_while_paused(self, batch: list[Any], what: str) -> bool:
        """Wait out a pause; False when the batch was spooled or dropped instead."""
        while True:
            remaining = self._paused_until - self._monotonic()
            if remaining <= 0:
                return True
            if self.spool is not None or self._stop.is_set():
                # Held back on disk instead of in memory; replayed after the resume.
                self._save(batch, "paused")
                return False
            with worker_token.released():
                stopped = self._stop.wait(remaining)
            if stopped:
                self._save(batch, "paused")
                return False

    def _give_up(self, batch: list[Any], what: str, exc: ExportError, attempts: int) -> None:
        spool_it = exc.retryable and self.spool is not None
        self._limited(
            self._log,
            "error",
            "export_failed",
            what=what,
            count=len(batch),
            attempts=attempts,
            retryable=exc.retryable,
            status=exc.status,
            error=str(exc),
            spooled=spool_it,
        )
        if spool_it:
            self._save(batch, "retries_exhausted")
        else:
            self._count("failed", len(batch))

    def _save(self, items: Sequence[Any], reason: str) -> None:
        """Spool ``items`` (queued records, events or scores), or count them as lost.

        ``spooled`` counts exactly what a replay can read back; what the disk
        refused is counted as ``dropped``.
        """
        if not items:
            return
        if self.spool is None:
            if reason == "paused":
                self._count("failed", len(items))
            else:
                self._drop(len(items), reason)
            return
        built: list[SpanEvent | Score] = []
        if any(not isinstance(i, (SpanEvent, Score)) for i in items):
            events, scores = self._events_and_scores(list(items))
            built.extend(events)
            built.extend(scores)
        else:
            built.extend(items)
        try:
            written = self.spool.append(built)
        except Exception as exc:  # the disk refused (OSError), or an item would not encode
            written = exc.written if isinstance(exc, SpoolWriteError) else 0
            error = exc.strerror if isinstance(exc, OSError) else _describe(exc)
            self._limited(self._log, "error", "spool_write_failed", error=error)
            self._drop(len(built) - written, "spool_write_failed")
            if not written:
                return
        self._count("spooled", written)
        if reason != "queue_full":
            self._backlog = True  # the backend failed: replay as soon as it answers again
        self._limited(
            self._log,
            "warning",
            "events_spooled",
            limit_key=reason,
            reason=reason,
            count=written,
            spooled_total=self._spooled,
        )

    def _count(self, name: str, n: int) -> None:
        with self._counter_lock:
            setattr(self, f"_{name}", getattr(self, f"_{name}") + n)

    def _close_exporter(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception as exc:
            self._limited(self._log, "error", "exporter_shutdown_failed", error=_describe(exc))

    # -- spill and replay (with a spool only) ------------------------------------------

    def _spill_loop(self) -> None:
        overflow = self._overflow
        while not self._stop.is_set():
            self._spill_wake.wait()
            self._spill_wake.clear()
            while overflow and not self._stop.is_set():
                chunk: list[Any] = []
                while overflow and len(chunk) < _SPILL_CHUNK:
                    chunk.append(overflow.popleft())
                self._save(chunk, "queue_full")

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            self.replay()
            wait = REPLAY_INTERVAL
            paused_for = self._paused_until - self._monotonic()
            if paused_for > 0:
                wait = min(wait, paused_for)
            self._replay_wake.wait(wait)
            self._replay_wake.clear()

    def replay(self, timeout: float | None = None) -> int:
        """Re-send what the spool holds; returns how many items were queued again.

        Returns within ``timeout`` (None: until done or stopped), leaving the
        rest on disk; stops early when the backend fails again or the channel
        stops. A segment is deleted only once every item of it was queued (the
        channel then owns them: delivered, spooled again, or counted); what a
        pass could not queue is written back to the spool first. Safe to call
        from any thread; one pass at a time.
        """
        spool = self.spool
        if spool is None or self._stopped or self._monotonic() < self._paused_until:
            return 0
        deadline = None if timeout is None else self._monotonic() + timeout
        if not self._replay_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return 0  # another pass holds it past our deadline
        try:
            queued = 0
            segments = spool.claim()
            for index, path in enumerate(segments):
                finished = self._replay_segment(spool, path, deadline)
                queued += finished[1]
                if not finished[0]:
                    for rest in segments[index + 1 :]:
                        spool.release(rest)
                    break
            if queued:
                with contextlib.suppress(Exception):  # a broken log pipeline
                    self.exporter.log.info("spool_replayed", count=queued, segments=len(segments))
            return queued
        finally:
            self._replay_lock.release()

    def _replay_segment(self, spool: Spool, path: Path, deadline: float | None) -> tuple[bool, int]:
        """Queue one claimed segment; (go on with the next one?, items queued)."""
        if self._stopped or (deadline is not None and self._monotonic() >= deadline):
            spool.release(path)
            return False, 0
        items = spool.read(path)
        consumed, queued = self._feed(items, deadline)
        if consumed < len(items):
            # Stopped or out of time: the rest goes back to disk before the
            # segment goes, so a crash in between can only duplicate, never lose.
            try:
                spool.append(items[consumed:])
            except OSError as exc:
                self._limited(self._log, "error", "spool_write_failed", error=exc.strerror)
                spool.release(path)  # all of it stays (what was queued may be sent twice)
                return False, queued
            spool.done(path)
            if self._stopped:
                spool.close()  # stop() may have closed the spool already: keep it replayable
            return False, queued
        if not self._flush_until(deadline):
            # Still failing, stopped, or out of time: what was queued is the
            # channel's now (delivered, spooled again, or counted); stop here.
            spool.done(path)
            return False, queued
        spool.done(path)
        return True, queued

    def feed(self, items: Sequence[SpanEvent | Score], deadline: float | None = None) -> int:
        """Queue ready-made events and scores (replay), waiting for room; returns how many."""
        return self._feed(items, deadline)[1]

    def _feed(self, items: Sequence[SpanEvent | Score], deadline: float | None) -> tuple[int, int]:
        """(items consumed: queued or not wanted, items queued), until stopped or the deadline."""
        queued = 0
        queue = self._queue
        for index, item in enumerate(items):
            if isinstance(item, Score) and not self._wants_scores:
                continue
            if isinstance(item, SpanEvent) and item.kind not in self.exporter.event_kinds:
                continue
            while len(queue) >= self._maxsize // 2 or len(queue) >= self._max_batch * 4:
                if self._stopped or (deadline is not None and self._monotonic() >= deadline):
                    self._wake.set()
                    return index, queued
                self._room.clear()
                self._wake.set()
                wait = 0.5 if deadline is None else min(0.5, deadline - self._monotonic())
                self._room.wait(max(0.0, wait))
            with self._feed_lock:
                if self._stopped:
                    return index, queued
                self._bytes += _ITEM_SIZE
                queue.append(item)
            queued += 1
            self._count("replayed", 1)
        self._wake.set()
        return len(items), queued

    def _flush_until(self, deadline: float | None) -> bool:
        request = self.request_flush()
        while not request.done.is_set():
            if self._stopped:
                return False
            remaining = None if deadline is None else deadline - self._monotonic()
            if remaining is not None and remaining <= 0:
                return False
            request.done.wait(1.0 if remaining is None else min(1.0, remaining))
        return request.ok

    # -- fork -------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child starts empty: the parent still owns what it had queued."""
        if self._stopped:
            return
        self._replay_lock = threading.Lock()
        if self.spool is not None:
            self.spool.reset_after_fork()
        self._reset_state()
        self._start()


def _minus(now: tuple[int, ...], base: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n - b for n, b in zip(now, base, strict=True))


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


def _reinit_channels_after_fork() -> None:
    for channel in list(_channels):
        channel._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_channels_after_fork)
