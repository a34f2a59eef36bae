"""Delivery channels: one bounded queue and one worker thread per exporter instance.

The application thread only calls :meth:`Channel.put` — a length check and a
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
from typing import Any, Protocol

import attrs

from obshub._logging import RateLimitedLog
from obshub.exporters import Exporter, ExportError
from obshub.spans import Score, SpanEvent

__all__ = ["Channel", "ChannelStats"]


class Deliverable(Protocol):
    """A queued span record: turns itself into the event exporters receive."""

    def build_event(self) -> SpanEvent | None: ...


@attrs.frozen
class ChannelStats:
    """Counters of one exporter instance (events and scores alike).

    - ``queued``: waiting in the queue or being exported right now;
    - ``exported``: accepted by the exporter;
    - ``dropped``: never handed to the exporter (queue full, hub shut down,
      left behind when shutdown timed out);
    - ``retried``: re-sent after a retryable failure (counted per attempt);
    - ``failed``: given up after a non-retryable failure or exhausted retries;
    - ``spooled``: written to the disk spool instead of being lost.
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


class _FlushRequest:
    """A marker put in the queue: everything before it is handled when it is reached."""

    __slots__ = ("done", "failed_before", "ok")

    def __init__(self, failed_before: int) -> None:
        self.done = threading.Event()
        self.failed_before = failed_before
        self.ok = False


_channels: weakref.WeakSet[Channel] = weakref.WeakSet()


class Channel:
    """The queue and worker that deliver one exporter instance's items."""

    def __init__(
        self,
        exporter: Exporter,
        config_name: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exporter = exporter
        self.config_name = config_name
        self._monotonic = monotonic
        self._realtime = exporter.realtime
        self._max_batch = exporter.batch.max_size
        self._interval = exporter.batch.interval
        self._maxsize = exporter.max_queue_size
        self._wants_scores = exporter.supports_scores()
        self._log = exporter.log
        self._debug = exporter.log_level == "debug"
        self._limited = RateLimitedLog()
        self._reset_state()
        _channels.add(self)
        self._start()

    def _reset_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._counter_lock = threading.Lock()
        self._closed = False
        self._stopped = False
        self._pending_flushes = 0
        self._in_flight = 0
        self._exported = 0
        self._dropped = 0
        self._retried = 0
        self._failed = 0
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run,
            name=f"obshub-{self.config_name}.{self.exporter.instance_name}",
            daemon=True,
        )
        self._thread.start()

    # -- application side -----------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue one item; drop it (counted) when the queue is full or closed."""
        queue = self._queue
        if len(queue) >= self._maxsize or self._closed:
            self._drop(1, "closed" if self._closed else "queue_full")
            return
        queue.append(item)
        if self._realtime or len(queue) >= self._max_batch:
            wake = self._wake
            if not wake.is_set():
                wake.set()

    def put_score(self, score: Score) -> None:
        """Queue a score if the exporter takes scores."""
        if self._wants_scores:
            self.put(score)

    def _drop(self, count: int, reason: str) -> None:
        with self._counter_lock:
            self._dropped += count
            total = self._dropped
        self._limited(
            self._log,
            "warning",
            "events_dropped",
            reason=reason,
            count=count,
            dropped_total=total,
            max_queue_size=self._maxsize,
        )

    # -- control ------------------------------------------------------------

    def request_flush(self) -> _FlushRequest:
        """Ask the worker to send everything queued now; wait on the result's ``done``."""
        request = _FlushRequest(self._failed)
        if self._stopped:
            request.ok = not self._queue
            request.done.set()
            return request
        with self._counter_lock:
            self._pending_flushes += 1
        self._queue.append(request)
        self._wake.set()
        return request

    def flush(self, timeout: float | None) -> bool:
        """Send everything queued now; True when it all reached the exporter in time."""
        request = self.request_flush()
        return request.done.wait(timeout) and request.ok

    def close(self) -> None:
        """Stop taking new items (they are counted as dropped)."""
        self._closed = True

    def stop(self, timeout: float | None) -> bool:
        """Stop the worker (after a flush, normally); False if it did not stop in time.

        Whatever is still queued, or stuck in an export that did not return,
        is counted as dropped.
        """
        if self._stopped:
            return True
        self._closed = True
        self._stopped = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        alive = False
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            alive = thread.is_alive()
        left = 0
        for item in self._queue:
            if isinstance(item, _FlushRequest):
                item.done.set()  # ok stays False: its items were not delivered
            else:
                left += 1
        if alive:
            left += self._in_flight
        if left:
            self._drop(left, "shutdown_timeout")
        return not alive

    def shutdown(self, timeout: float | None) -> bool:
        """Close, flush within ``timeout``, stop the worker; True if all was delivered."""
        deadline = None if timeout is None else self._monotonic() + timeout
        self.close()
        ok = self.flush(timeout)
        remaining = None if deadline is None else max(0.0, deadline - self._monotonic())
        return self.stop(remaining) and ok

    def stats(self) -> ChannelStats:
        """A snapshot of the counters."""
        queued = sum(1 for item in self._queue if not isinstance(item, _FlushRequest))
        return ChannelStats(
            config=self.config_name,
            exporter=self.exporter.instance_name,
            type=type(self.exporter).name,
            realtime=self._realtime,
            queued=queued + self._in_flight,
            exported=self._exported,
            dropped=self._dropped,
            retried=self._retried,
            failed=self._failed,
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
            self._drain_once()
            deadline = self._monotonic() + self._interval
        self._close_exporter()

    def _drain_once(self) -> None:
        """Send up to one batch; answer any flush request met on the way."""
        queue = self._queue
        items: list[Any] = []
        while queue and len(items) < self._max_batch:
            item = queue.popleft()
            if isinstance(item, _FlushRequest):
                self._send(items)
                items = []
                self._answer_flush(item)
                continue
            items.append(item)
            self._in_flight = len(items)
        self._send(items)

    def _answer_flush(self, request: _FlushRequest) -> None:
        try:
            self.exporter.flush()
        except Exception as exc:
            self._limited(self._log, "error", "exporter_flush_failed", error=_describe(exc))
        with self._counter_lock:
            self._pending_flushes -= 1
        request.ok = self._failed == request.failed_before
        request.done.set()

    def _send(self, items: list[Any]) -> None:
        if not items:
            return
        events: list[SpanEvent] = []
        scores: list[Score] = []
        for item in items:
            if isinstance(item, Score):
                scores.append(item)
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
        if events:
            self._deliver(self.exporter.export, events, "spans")
        if scores:
            self._deliver(self.exporter.export_scores, scores, "scores")
        self._in_flight = 0

    def _deliver(self, fn: Callable[[Sequence[Any]], None], batch: list[Any], what: str) -> bool:
        retry = self.exporter.retry
        count = len(batch)
        while True:
            started = time.perf_counter()
            try:
                fn(batch)
            except ExportError as exc:
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
                        if self._stop.wait(wait):
                            return self._give_up(batch, what, exc, retry.attempts)
                        continue
                # A retryable failure was already counted in ``retry.attempts``.
                made = retry.attempts if exc.retryable else retry.attempts + 1
                return self._give_up(batch, what, exc, made)
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
                return False
            self._count("exported", count)
            if self._debug:
                # A broken log pipeline must not kill the worker.
                with contextlib.suppress(Exception):
                    self._log.debug(
                        "batch_sent",
                        what=what,
                        count=count,
                        duration_ms=round((time.perf_counter() - started) * 1000, 3),
                        attempts=retry.attempts + 1,
                    )
            return True

    def _give_up(self, batch: list[Any], what: str, exc: ExportError, attempts: int) -> bool:
        self._count("failed", len(batch))
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
        )
        return False

    def _count(self, name: str, n: int) -> None:
        with self._counter_lock:
            setattr(self, f"_{name}", getattr(self, f"_{name}") + n)

    def _close_exporter(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception as exc:
            self._limited(self._log, "error", "exporter_shutdown_failed", error=_describe(exc))

    # -- fork -------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child starts empty: the parent still owns what it had queued."""
        if self._stopped:
            return
        self._reset_state()
        self._start()


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
