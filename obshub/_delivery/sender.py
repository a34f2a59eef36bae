"""Sending one batch: the worker's job, carried out as the delivery policy decides.

`Sender.deliver` calls the exporter, asks `policy.decide` what to do about a
failure, and does it — waits and retries, pauses, halves a refused batch to
isolate what the backend refuses, gives up to the spool or as failed — until
every item of the batch is settled and counted.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from obshub import _worker_token as worker_token
from obshub._delivery.keep import Keeper
from obshub._delivery.policy import Crashed, GiveUp, Pause, Refused, RetryIn, decide, halves
from obshub._delivery.records import describe
from obshub._exporters import Exporter, ExportError
from obshub._logging import RateLimitedLog

__all__ = ["Sender"]

Send = Callable[[Sequence[Any]], None]


class Sender:
    """Delivers batches for one channel; owns its pause state."""

    def __init__(
        self,
        exporter: Exporter,
        keeper: Keeper,
        limited: RateLimitedLog,
        *,
        stop: threading.Event,
        wake_replay: threading.Event,
        queued: Callable[[], int],
        monotonic: Callable[[], float],
    ) -> None:
        self.exporter = exporter
        self.keeper = keeper
        self.counters = keeper.counters
        self.log = exporter.log
        self.limited = limited
        self.debug = exporter.log_level == "debug"
        self.stop = stop
        self.wake_replay = wake_replay
        self.queued = queued
        self.monotonic = monotonic
        #: Monotonic time until which the backend refuses this client (0: not paused).
        self.paused_until = 0.0

    @property
    def paused(self) -> bool:
        """True while the backend refuses this client and sends wait."""
        return self.monotonic() < self.paused_until

    def deliver(self, send: Send, batch: list[Any], what: str) -> None:
        """Send ``batch``; when the backend refuses its content, isolate what it refuses."""
        refusal = self._attempt(send, batch, what)
        if refusal is None:
            return
        if refusal.items is not None:
            # The exporter knows which items were refused; the others went through.
            named = [item for item in batch if any(item is r for r in refusal.items)]
            self.counters.count(exported=len(batch) - len(named))
            self.keeper.reject(named or batch, what, refusal)
            return
        if len(batch) == 1:
            self.keeper.reject(batch, what, refusal)
            return
        # Halve the refused batch until each refused part is one item; the rest is
        # delivered. The request budget bounds the work when most items are refused:
        # what is still unresolved when it runs out is kept whole, never dropped.
        budget = len(batch)
        refused: list[tuple[list[Any], ExportError]] = [(batch, refusal)]
        isolated = 0
        while refused:
            part, error = refused.pop()
            if len(part) == 1 or budget <= 0 or self.stop.is_set():
                isolated += len(part)
                self.keeper.reject(part, what, error)
                continue
            for half in halves(part):
                budget -= 1
                again = self._attempt(send, half, what)
                if again is not None:
                    refused.append((half, again))
        self.keeper.note(
            "batch_isolated",
            what=what,
            count=len(batch),
            rejected=isolated,
            requests=len(batch) - budget + 1,
        )

    def _attempt(self, send: Send, batch: list[Any], what: str) -> ExportError | None:
        """Send ``batch`` with retries and pauses; the error when its content was refused.

        Every other outcome is settled here: exported, or given up (spooled,
        or counted as failed).
        """
        retry = self.exporter.retry
        count = len(batch)
        while True:
            if not self._wait_while_paused(batch):
                return None
            started = time.perf_counter()
            try:
                send(batch)
            except Exception as exc:
                decision = decide(
                    exc,
                    retry,
                    now=self.monotonic(),
                    can_spool=self.keeper.spool is not None,
                    stopping=self.stop.is_set(),
                )
            else:
                self._succeeded(count, what, started, retry.attempts + 1)
                return None
            if isinstance(decision, RetryIn):
                retry = decision.retry
                self.counters.count(retried=count)
                self._retry_log(decision, what, count)
                with worker_token.released():
                    stopped = self.stop.wait(decision.wait)
                if stopped:
                    self._give_up(batch, what, GiveUp(decision.error, retry.attempts, True))
                    return None
            elif isinstance(decision, Pause):
                self._pause(decision, count, what)
            elif isinstance(decision, Refused):
                return decision.error
            elif isinstance(decision, GiveUp):
                self._give_up(batch, what, decision)
                return None
            else:
                self._crashed(decision, count, what)
                return None

    def _retry_log(self, decision: RetryIn, what: str, count: int) -> None:
        self.limited(
            self.log,
            "warning",
            "export_retry",
            what=what,
            count=count,
            attempt=decision.retry.attempts,
            wait_s=round(decision.wait, 3),
            status=decision.error.status,
            error=str(decision.error),
        )

    def _crashed(self, decision: Crashed, count: int, what: str) -> None:
        # An exporter bug: contained, counted, logged.
        self.counters.count(failed=count)
        self.limited(
            self.log,
            "error",
            "exporter_crashed",
            what=what,
            count=count,
            error=describe(decision.error),
        )

    def _succeeded(self, count: int, what: str, started: float, attempts: int) -> None:
        self.counters.count(exported=count)
        if self.paused_until:
            self.paused_until = 0.0
            with contextlib.suppress(Exception):  # a broken log pipeline must not kill us
                self.exporter.log.info("export_resumed", what=what, count=count)
            self.wake_replay.set()
        elif self.keeper.backlog:
            # The backend is back after batches were spooled: send them now, not
            # at the next replay interval.
            self.keeper.backlog = False
            self.wake_replay.set()
        if self.debug:
            with contextlib.suppress(Exception):  # a broken log pipeline must not kill us
                self.log.debug(
                    "batch_sent",
                    what=what,
                    count=count,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    attempts=attempts,
                )

    def _pause(self, decision: Pause, count: int, what: str) -> None:
        first = not self.paused_until
        self.paused_until = self.monotonic() + decision.seconds
        if self.keeper.spool is not None:
            # The held batch goes to the spool: the replay thread probes once the
            # pause is over, even if nothing new is recorded.
            self.wake_replay.set()
        self.limited(
            self.log,
            "error",
            "export_paused",
            limit_key=str(decision.error.status),
            what=what,
            status=decision.error.status,
            pause_s=round(decision.seconds, 3),
            held=count + self.queued(),
            first=first,
            error=str(decision.error),
        )

    def _wait_while_paused(self, batch: list[Any]) -> bool:
        """Wait out a pause; False when the batch was spooled or dropped instead."""
        while True:
            remaining = self.paused_until - self.monotonic()
            if remaining <= 0:
                return True
            if self.keeper.spool is not None or self.stop.is_set():
                # Held back on disk instead of in memory; replayed after the resume.
                self.keeper.save(batch, "paused")
                return False
            with worker_token.released():
                stopped = self.stop.wait(remaining)
            if stopped:
                self.keeper.save(batch, "paused")
                return False

    def _give_up(self, batch: list[Any], what: str, decision: GiveUp) -> None:
        spool_it = decision.spool and self.keeper.spool is not None
        self.limited(
            self.log,
            "error",
            "export_failed",
            what=what,
            count=len(batch),
            attempts=decision.attempts,
            retryable=decision.error.retryable,
            status=decision.error.status,
            error=str(decision.error),
            spooled=spool_it,
        )
        if spool_it:
            self.keeper.save(batch, "retries_exhausted")
        else:
            self.counters.count(failed=len(batch))
