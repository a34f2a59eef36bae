"""The delivery policy, decided without threads: one outcome, one decision."""

from __future__ import annotations

import pytest

from obshub import ExportError, Retry
from obshub._delivery.policy import Crashed, GiveUp, Pause, Refused, RetryIn, decide, halves

NO_JITTER = Retry(max_attempts=3, initial_backoff=0.5, jitter=0.0, max_elapsed=0)


def decided(error: BaseException, retry: Retry = NO_JITTER, **kw: bool) -> object:
    options = {"can_spool": False, "stopping": False} | kw
    return decide(error, retry, now=100.0, **options)


def test_a_retryable_error_is_retried_after_the_backoff() -> None:
    decision = decided(ExportError("503", retryable=True, status=503))
    assert isinstance(decision, RetryIn)
    assert decision.wait == 0.5
    assert decision.retry.attempts == 1


def test_the_servers_retry_after_replaces_the_backoff() -> None:
    decision = decided(ExportError("429", retryable=True, retry_after=7.0, status=429))
    assert isinstance(decision, RetryIn)
    assert decision.wait == 7.0


def test_retries_run_out_into_the_spool_when_there_is_one() -> None:
    retry = NO_JITTER.increment(now=100.0).increment(now=100.0)
    error = ExportError("503", retryable=True, status=503)
    spooled = decided(error, retry, can_spool=True)
    assert spooled == GiveUp(error, attempts=3, spool=True)
    failed = decided(error, retry, can_spool=False)
    assert failed == GiveUp(error, attempts=3, spool=False)


def test_a_stopping_channel_gives_up_instead_of_waiting() -> None:
    error = ExportError("503", retryable=True)
    assert decided(error, stopping=True, can_spool=True) == GiveUp(error, attempts=1, spool=True)


def test_a_refused_client_pauses_sends() -> None:
    error = ExportError("401", status=401, pause=30.0)
    assert decided(error) == Pause(30.0, error)


@pytest.mark.parametrize("status", [400, 422])
def test_a_refusal_of_the_content_is_isolated(status: int) -> None:
    error = ExportError("bad span", status=status)
    assert error.rejected
    assert decided(error) == Refused(error)


@pytest.mark.parametrize("status", [404, 415, None])
def test_other_non_retryable_errors_fail_at_once_and_are_never_spooled(status: int | None) -> None:
    error = ExportError("no", status=status)
    assert decided(error, can_spool=True) == GiveUp(error, attempts=1, spool=False)


def test_an_exporter_can_say_rejected_for_any_status() -> None:
    error = ExportError("row too large", rejected=True)
    assert decided(error) == Refused(error)


def test_any_other_exception_is_an_exporter_bug() -> None:
    bug = KeyError("oops")
    assert decided(bug) == Crashed(bug)


def test_a_refused_part_is_halved_second_half_first() -> None:
    assert halves([1, 2, 3, 4, 5]) == ([3, 4, 5], [1, 2])
