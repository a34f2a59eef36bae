"""A channel: one exporter instance's bounded queue and the threads that empty it.

The application thread only calls `Channel.put` — two length checks, an
addition and a deque append, never a lock or a network call. Everything else
happens on the channel's threads: the worker builds and sends batches (through
`Sender`, which applies the delivery policy), the spill thread writes queue
overflow to the spool, and the replay thread sends the spool again (`Replayer`).
A slow or hung backend never delays the application, and one exporter's
trouble never reaches another's channel.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from obshub import _worker_token as worker_token
from obshub._delivery.keep import Keeper
from obshub._delivery.records import SIZED_FROM, Sized, Stage, describe, size_of
from obshub._delivery.replay import Replayer
from obshub._delivery.sender import Sender
from obshub._delivery.spool import Spool
from obshub._delivery.stats import ChannelStats, Counters, ExporterFlush, Losses
from obshub._exporters import Exporter
from obshub._logging import RateLimitedLog
from obshub._sampling import TailRule
from obshub.spans import Score, SpanEvent

__all__ = ["Channel", "shut_down"]

#: Items spilled to disk per spool append when the queue overflows.
_SPILL_CHUNK = 512

_channels: weakref.WeakSet[Channel] = weakref.WeakSet()
#: True in a delivery helper process (`obshub._delivery.process`), set around
#: its fork: the helper must not restart the application's thread channels.
forking_helper = False


class FlushRequest:
    """A marker put in the queue: everything before it is handled when it is reached."""

    __slots__ = ("base", "done", "losses")

    def __init__(self, base: Losses) -> None:
        self.done = threading.Event()
        self.base = base
        self.losses = Losses()

    @property
    def ok(self) -> bool:
        return self.done.is_set() and not any(self.losses)


class Channel:
    """The queue and threads that deliver one exporter instance's items.

    The queue is bounded twice: by ``max_queue_size`` items and by about
    ``max_queue_bytes``. Bytes are estimated (``obshub._size``) for the items
    queued while ``SIZED_FROM`` or more wait, a backlog: while the exporter
    keeps up, recording pays nothing for the estimate.

    With a spool (``spool_dir``), what cannot be delivered goes to disk instead
    of being lost: batches whose retries ran out, batches held while the
    backend refuses this client (401/403), items that overflow a full queue,
    and what is still queued when shutdown times out. The replay thread sends
    the spool again at start-up, after the backend recovers, and every
    ``REPLAY_INTERVAL``.
    """

    def __init__(
        self,
        exporter: Exporter,
        config_name: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        tail: TailRule | None = None,
    ) -> None:
        self.exporter = exporter
        #: The config's tail rule: every channel of the config holds and decides on its own.
        self.tail = tail
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
        self.spool: Spool | None = None
        if exporter.spool_dir is not None:
            self.spool = Spool(
                Path(exporter.spool_dir) / f"{config_name}.{exporter.instance_name}",
                max_bytes=exporter.spool_max_bytes,
                log=self._log,
            )
        self._reset_state()
        _channels.add(self)
        self._start()

    def _reset_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._overflow: deque[Any] = deque()
        self._wake = threading.Event()
        self._room = threading.Event()
        self._spill_wake = threading.Event()
        self._stop = threading.Event()
        # Held while the replay feeds the queue and while stop() closes it, so
        # nothing is queued after stop() took what was left.
        self._feed_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._closed = False
        self._stopped = False
        self._pending_flushes = 0
        self._in_flight: list[Any] = []
        # Estimated bytes queued. ``+=`` on the application threads and ``-=`` on
        # the worker are single bytecodes on an int attribute, which the GIL does
        # not interrupt; the figure is an estimate either way.
        self._bytes = 0
        self._limited = RateLimitedLog()
        self.counters = Counters()
        self._reported = Losses()  # losses at the last answered flush
        self.keeper = Keeper(
            self.name,
            self.spool,
            self.counters,
            self._log,
            self._limited,
            Stage(
                self.exporter,
                self._log,
                self._limited,
                () if self.tail is None else (self.tail,),
                self._monotonic,
            ),
        )
        self.replayer: Replayer | None = None
        if self.spool is not None:
            self.replayer = Replayer(
                self.spool,
                self,
                self.keeper,
                paused_for=self._paused_for,
                monotonic=self._monotonic,
            )
        self.sender = Sender(
            self.exporter,
            self.keeper,
            self._limited,
            stop=self._stop,
            wake_replay=self.replayer.wake if self.replayer is not None else threading.Event(),
            queued=lambda: len(self._queue),
            monotonic=self._monotonic,
        )
        self._threads: list[threading.Thread] = []

    def _start(self) -> None:
        base = f"obshub-{self.config_name}.{self.exporter.instance_name}"
        targets: list[tuple[str, Callable[[], None]]] = [(base, self._run)]
        if self.replayer is not None:
            replayer = self.replayer
            targets.append((f"{base}-spill", self._spill_loop))
            targets.append((f"{base}-replay", lambda: replayer.loop(self._stop)))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- application side -----------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue one item; spill or drop it (counted) when the queue is full or closed."""
        queue = self._queue
        waiting = len(queue)
        if waiting >= self._maxsize or self._bytes >= self._max_bytes or self._closed:
            self._overflowing(item)
            return
        if waiting >= SIZED_FROM:
            size = size_of(item)
            self._bytes += size
            item = Sized(item, size)
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
        if self._closed:
            self.keeper.drop(1, "closed")
            return
        by_bytes = self._bytes >= self._max_bytes
        limit = "max_queue_bytes" if by_bytes else "max_queue_size"
        self.keeper.drop(
            1,
            "queue_full",
            max_queue_size=self._maxsize,
            max_queue_bytes=self._max_bytes,
            limit=limit,
            hint=(
                f"the exporter cannot keep up with what is recorded: raise {limit}, "
                "or set spool_dir to keep the overflow on disk"
            ),
        )

    # -- flush ----------------------------------------------------------------

    def request_flush(self) -> FlushRequest:
        """Ask the worker to send everything queued now; wait on the result's ``done``."""
        request = FlushRequest(self._reported)
        if self._stopped:
            self._answer(request)
            return request
        with self._pending_lock:
            self._pending_flushes += 1
        self._queue.append(request)
        self._wake.set()
        return request

    def _answer(self, request: FlushRequest) -> None:
        now = self.counters.losses()
        self._reported = now
        request.losses = now.since(request.base)
        request.done.set()

    def flush_result(self, request: FlushRequest) -> ExporterFlush:
        """What ``request`` found (pending and timed out if it was not answered yet)."""
        if request.done.is_set():
            return ExporterFlush.of(self.name, request.losses)
        losses = self.counters.losses().since(request.base)
        return ExporterFlush.of(self.name, losses, pending=max(1, self.pending()))

    def flush(self, timeout: float | None) -> ExporterFlush:
        """Send everything queued now; truthy when it all reached the backend in time."""
        request = self.request_flush()
        request.done.wait(timeout)
        return self.flush_result(request)

    def flush_until(self, deadline: float | None) -> bool:
        """Flush, waiting until ``deadline`` at most; False also when the channel stops."""
        request = self.request_flush()
        while not request.done.is_set():
            if self._stopped:
                return False
            remaining = None if deadline is None else deadline - self._monotonic()
            if remaining is not None and remaining <= 0:
                return False
            request.done.wait(1.0 if remaining is None else min(1.0, remaining))
        return request.ok

    # -- replay -------------------------------------------------------------------------

    def replay(self, timeout: float | None = None) -> int:
        """Re-send what the spool holds now (see `Replayer.replay`); items queued again."""
        if self.replayer is None:
            return 0
        return self.replayer.replay(timeout)

    def feed(self, items: Sequence[SpanEvent | Score], deadline: float | None = None) -> int:
        """Queue ready-made events and scores (replay), waiting for room; returns how many."""
        return self.feed_until(items, deadline)[1]

    def feed_until(
        self, items: Sequence[SpanEvent | Score], deadline: float | None
    ) -> tuple[int, int]:
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
                queue.append(item)
            queued += 1
            self.counters.count(replayed=1)
        self._wake.set()
        return len(items), queued

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """True once `stop` began: nothing more is queued."""
        return self._stopped

    @property
    def paused(self) -> bool:
        """True while the backend refuses this client and sends wait."""
        return self.sender.paused

    def _paused_for(self) -> float:
        return self.sender.paused_until - self._monotonic()

    def close(self) -> None:
        """Stop taking new items (they are counted as dropped)."""
        self._closed = True

    def stop(self, timeout: float | None) -> bool:
        """Stop the threads (after a flush, normally); False if the worker did not stop in time.

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
        if self.replayer is not None:
            self.replayer.wake.set()
        self._room.set()
        deadline = None if timeout is None else self._monotonic() + timeout
        alive = False
        for index, thread in enumerate(self._threads):
            if thread is threading.current_thread():
                continue
            remaining = None if deadline is None else max(0.0, deadline - self._monotonic())
            thread.join(timeout if index == 0 else remaining)
            if index == 0:
                alive = thread.is_alive()
        left: list[Any] = []
        queue = self._queue
        while queue:
            item = queue.popleft()
            if isinstance(item, FlushRequest):
                self._answer(item)  # its items were not delivered: spooled or dropped below
            else:
                left.append(item.item if type(item) is Sized else item)
        self._bytes = 0
        overflow = self._overflow
        while overflow:
            left.append(overflow.popleft())
        if alive:
            # An export that never returned: spooling its batch may duplicate
            # it at the backend if it does return, which ids make harmless.
            # From now on it is counted where it went (spooled or dropped), not
            # as queued.
            left.extend(self._in_flight)
            self._in_flight = []
        if left:
            self.keeper.save(left, "shutdown_timeout")
        held = self.keeper.release(everything=True)  # traces a tail sampler still held
        if held:
            self.keeper.save(held, "shutdown_timeout")
        if self.spool is not None:
            self.spool.close()
        return not alive

    def shutdown(self, timeout: float | None) -> bool:
        """Close, flush within ``timeout``, stop the worker; True if all was delivered."""
        return shut_down(self, timeout, self._monotonic)

    def pending(self) -> int:
        """Items queued, overflowing to disk, or in flight now."""
        queued = sum(1 for item in list(self._queue) if not isinstance(item, FlushRequest))
        return queued + len(self._in_flight) + len(self._overflow)

    def stats(self) -> ChannelStats:
        """A snapshot of the counters."""
        counters = self.counters
        paused = self.paused
        return ChannelStats(
            config=self.config_name,
            exporter=self.exporter.instance_name,
            type=type(self.exporter).name,
            realtime=self._realtime,
            queued=self.pending(),
            exported=counters.exported,
            dropped=counters.dropped,
            retried=counters.retried,
            failed=counters.failed,
            spooled=counters.spooled,
            replayed=counters.replayed,
            evicted=self.spool.evicted if self.spool is not None else 0,
            rejected=counters.rejected,
            tail_overflow=self.keeper.tail_overflow,
            paused=paused,
            state="paused" if paused else "running",
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
        # With a tail sampler, the worker also wakes to decide the traces held
        # past their time limit when nothing else arrives.
        stage = self.keeper.stage
        tick = None if stage is None or stage.tail is None else min(1.0, stage.tail.max_wait)
        while not self._stop.is_set():
            if tick is not None:
                self._release_expired()
            if not self._due(deadline):
                self._wake.clear()
                # Re-check after clearing: an item may have arrived in between.
                if not self._due(deadline):
                    if self._realtime:
                        self._wake.wait(tick)
                    else:
                        now = self._monotonic()
                        if now >= deadline:
                            deadline = now + self._interval
                        wait = max(0.0, deadline - now)
                        self._wake.wait(wait if tick is None else min(tick, wait))
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
            if type(item) is Sized:
                size += item.size
                item = item.item
            elif isinstance(item, FlushRequest):
                self._bytes -= size
                size = 0
                self._send(items)
                items = []
                self._in_flight = items
                self._answer_flush(item)
                continue
            items.append(item)
        self._bytes -= size
        self._send(items)
        self._in_flight = []

    def _release_expired(self) -> None:
        released = self.keeper.release()
        if released:
            with worker_token.hold():
                self.sender.deliver(self.exporter.export, released, "spans")

    def _answer_flush(self, request: FlushRequest) -> None:
        # Held traces: those past their time limit are decided now; after
        # close() (shutdown) every one of them is.
        released = self.keeper.release(everything=self._closed)
        if released:
            self.sender.deliver(self.exporter.export, released, "spans")
        try:
            self.exporter.flush()
        except Exception as exc:
            self._limited(self._log, "error", "exporter_flush_failed", error=describe(exc))
        with self._pending_lock:
            self._pending_flushes -= 1
        self._answer(request)

    def _send(self, items: list[Any]) -> None:
        if not items:
            return
        events, scores = self.keeper.build(items)
        if events:
            self.sender.deliver(self.exporter.export, events, "spans")
        if scores:
            self.sender.deliver(self.exporter.export_scores, scores, "scores")

    def _close_exporter(self) -> None:
        try:
            self.exporter.shutdown()
        except Exception as exc:
            self._limited(self._log, "error", "exporter_shutdown_failed", error=describe(exc))

    def _spill_loop(self) -> None:
        overflow = self._overflow
        while not self._stop.is_set():
            self._spill_wake.wait()
            self._spill_wake.clear()
            while overflow and not self._stop.is_set():
                chunk: list[Any] = []
                while overflow and len(chunk) < _SPILL_CHUNK:
                    chunk.append(overflow.popleft())
                self.keeper.save(chunk, "queue_full")

    # -- fork -------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child starts empty: the parent still owns what it had queued."""
        if self._stopped:
            return
        if self.spool is not None:
            self.spool.reset_after_fork()
        self._reset_state()
        self._start()


class Closable(Protocol):
    """What `shut_down` needs of a channel (a thread or a process channel)."""

    def close(self) -> None: ...
    def flush(self, timeout: float | None) -> ExporterFlush: ...
    def stop(self, timeout: float | None) -> bool: ...


def shut_down(channel: Closable, timeout: float | None, monotonic: Callable[[], float]) -> bool:
    """Close ``channel``, flush it within ``timeout``, stop it; True if all was delivered."""
    deadline = None if timeout is None else monotonic() + timeout
    channel.close()
    ok = channel.flush(timeout).delivered
    remaining = None if deadline is None else max(0.0, deadline - monotonic())
    return channel.stop(remaining) and ok


def _reinit_channels_after_fork() -> None:
    if forking_helper:
        return
    for channel in list(_channels):
        channel._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_channels_after_fork)
