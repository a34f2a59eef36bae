"""Replaying the spool: what was kept on disk goes through the channel's queue again.

A pass claims every replayable segment (oldest first), queues its items,
waits for the channel to send them, and deletes the segment. A segment is
deleted only once every item of it was queued — the channel then owns them:
delivered, spooled again, or counted. When a shutdown or a deadline
interrupts a pass, what it had not queued is written back to the spool before
the segment goes, so an interruption can duplicate but never lose.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from obshub._delivery.keep import Keeper
from obshub._delivery.spool import Spool
from obshub.spans import Score, SpanEvent

__all__ = ["REPLAY_INTERVAL", "Replayer"]

#: Seconds between replay passes while the spool holds segments and sends succeed.
REPLAY_INTERVAL = 30.0


class Queue(Protocol):
    """What a replay needs of its channel."""

    @property
    def stopped(self) -> bool: ...

    def feed_until(
        self, items: Sequence[SpanEvent | Score], deadline: float | None
    ) -> tuple[int, int]: ...

    def flush_until(self, deadline: float | None) -> bool: ...


class Replayer:
    """Replay passes over one channel's spool; one pass at a time."""

    def __init__(
        self,
        spool: Spool,
        queue: Queue,
        keeper: Keeper,
        *,
        paused_for: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self.spool = spool
        self.queue = queue
        self.keeper = keeper
        self.paused_for = paused_for
        self.monotonic = monotonic
        self.wake = threading.Event()
        self._lock = threading.Lock()

    def loop(self, stop: threading.Event) -> None:
        """The replay thread: a pass at start, on a wake-up, and every `REPLAY_INTERVAL`."""
        while not stop.is_set():
            self.replay()
            wait = REPLAY_INTERVAL
            paused_for = self.paused_for()
            if paused_for > 0:
                wait = min(wait, paused_for)
            self.wake.wait(wait)
            self.wake.clear()

    def replay(self, timeout: float | None = None) -> int:
        """One pass; returns how many items were queued again.

        Returns within ``timeout`` (None: until done or stopped), leaving the
        rest on disk; stops early when the backend fails again or the channel
        stops. Safe to call from any thread; a second caller waits for the pass
        under way, at most until its own deadline.
        """
        if self.queue.stopped or self.paused_for() > 0:
            return 0
        deadline = None if timeout is None else self.monotonic() + timeout
        if not self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return 0
        try:
            spool = self.spool
            queued = 0
            segments = spool.claim()
            for index, path in enumerate(segments):
                go_on, fed = self._replay_segment(path, deadline)
                queued += fed
                if not go_on:
                    for rest in segments[index + 1 :]:
                        spool.release(rest)
                    break
            if queued:
                self.keeper.note("spool_replayed", count=queued, segments=len(segments))
            return queued
        finally:
            self._lock.release()

    def _replay_segment(self, path: Path, deadline: float | None) -> tuple[bool, int]:
        """Queue one claimed segment; (go on with the next one?, items queued)."""
        spool = self.spool
        if self.queue.stopped or (deadline is not None and self.monotonic() >= deadline):
            spool.release(path)
            return False, 0
        items = spool.read(path)
        consumed, queued = self.queue.feed_until(items, deadline)
        if consumed < len(items):
            # Stopped or out of time: the rest goes back to disk before the
            # segment goes, so a crash in between can only duplicate, never lose.
            try:
                spool.append(items[consumed:])
            except OSError as exc:
                self.keeper.limited(
                    self.keeper.log, "error", "spool_write_failed", error=exc.strerror
                )
                spool.release(path)  # all of it stays (what was queued may be sent twice)
                return False, queued
            spool.done(path)
            if self.queue.stopped:
                spool.close()  # stop() may have closed the spool already: keep it replayable
            return False, queued
        # Still failing, stopped or out of time: what was queued is the channel's
        # now (delivered, spooled again, or counted); stop this pass after it.
        go_on = self.queue.flush_until(deadline)
        spool.done(path)
        return go_on, queued

    def after_fork(self) -> None:
        """In a forked child: a fresh lock and wake-up (the parent's may be held)."""
        self._lock = threading.Lock()
        self.wake = threading.Event()
