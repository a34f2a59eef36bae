"""The delivery policy: what to do after an export attempt failed. Pure — no threads, no I/O.

Given the error an exporter raised and the batch's retry state, `decide`
returns one `Decision`:

- `RetryIn`: wait, then send the same batch again (a retryable error with
  attempts and time left);
- `Pause`: the backend refuses this client (401/403): send nothing for a while;
- `Refused`: the backend refuses the batch's *content* (400/422): isolate the
  refused items;
- `GiveUp`: stop trying; ``spool`` says whether the batch goes to disk;
- `Crashed`: the exporter raised something other than `ExportError` (a bug).

The channel's sender carries the decision out; this module can be tested
without starting a worker.
"""

from __future__ import annotations

from typing import TypeVar, Union

import attrs

from obshub._exporters import ExportError
from obshub._retry import Retry

__all__ = ["Crashed", "Decision", "GiveUp", "Pause", "Refused", "RetryIn", "decide", "halves"]


@attrs.frozen
class RetryIn:
    """Send the batch again after ``wait`` seconds; ``retry`` is the new retry state."""

    wait: float
    retry: Retry
    error: ExportError


@attrs.frozen
class Pause:
    """Send nothing for ``seconds``; then probe with the held batch."""

    seconds: float
    error: ExportError


@attrs.frozen
class Refused:
    """The backend refused what is in the batch: find the items it refuses."""

    error: ExportError


@attrs.frozen
class GiveUp:
    """Stop trying after ``attempts``; spool the batch when ``spool`` is true, else it failed."""

    error: ExportError
    attempts: int
    spool: bool


@attrs.frozen
class Crashed:
    """The exporter raised something other than `ExportError`: a bug, counted as failed."""

    error: BaseException


Decision = Union[RetryIn, Pause, Refused, GiveUp, Crashed]  # noqa: UP007 - attrs classes at runtime


def decide(
    error: BaseException, retry: Retry, *, now: float, can_spool: bool, stopping: bool
) -> Decision:
    """What to do after an attempt of a batch failed with ``error``.

    ``retry`` is the batch's retry state before this failure; ``can_spool``
    says whether the channel has a spool; ``stopping`` that the channel is
    shutting down (no more waiting).
    """
    if not isinstance(error, ExportError):
        return Crashed(error)
    if error.pause is not None:
        return Pause(error.pause, error)
    if error.rejected and not error.retryable:
        return Refused(error)
    if not error.retryable:
        return GiveUp(error, attempts=retry.attempts + 1, spool=False)
    retry = retry.increment(error.retry_after, now=now)
    if not stopping and not retry.is_exhausted(now=now):
        return RetryIn(retry.get_backoff_time(), retry, error)
    # A retryable failure was already counted in ``retry.attempts``.
    return GiveUp(error, attempts=retry.attempts, spool=can_spool)


_T = TypeVar("_T")


def halves(part: list[_T]) -> tuple[list[_T], list[_T]]:
    """A refused part split for isolation: the second half first, then the first."""
    middle = len(part) // 2
    return part[middle:], part[:middle]
