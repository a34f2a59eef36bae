"""The retry policy: exponential backoff with jitter, Retry-After, attempt and time budgets."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from obshub import Retry
from obshub._retry import PolicyError, parse_retry_after


def failed(policy: Retry, times: int, now: float = 0.0, retry_after: float | None = None) -> Retry:
    for _ in range(times):
        policy = policy.increment(retry_after, now=now)
    return policy


def test_the_default_policy_is_patient_but_bounded() -> None:
    policy = Retry()
    assert policy.max_attempts == 6
    assert policy.initial_backoff == 0.5
    assert policy.max_backoff == 30.0
    assert policy.max_elapsed == 300.0
    assert 0 < policy.jitter < 1


def test_there_is_no_wait_before_the_first_attempt() -> None:
    assert Retry().get_backoff_time() == 0.0


def test_the_backoff_doubles_after_each_failure_up_to_max_backoff() -> None:
    policy = Retry(initial_backoff=1.0, max_backoff=5.0, jitter=0.0, max_attempts=10)
    waits = [failed(policy, n).get_backoff_time() for n in range(1, 6)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_spreads_the_wait_around_the_backoff() -> None:
    policy = failed(Retry(initial_backoff=1.0, jitter=0.2), 2)
    assert policy.get_backoff_time(random_fn=lambda: 0.0) == pytest.approx(1.6)
    assert policy.get_backoff_time(random_fn=lambda: 0.5) == pytest.approx(2.0)
    assert policy.get_backoff_time(random_fn=lambda: 1.0) == pytest.approx(2.4)


def test_jitter_never_makes_a_wait_longer_than_max_backoff() -> None:
    policy = failed(Retry(initial_backoff=10.0, max_backoff=10.0, jitter=0.5), 3)
    assert policy.get_backoff_time(random_fn=lambda: 1.0) <= 10.0


def test_a_server_retry_after_replaces_the_backoff_and_is_capped() -> None:
    policy = Retry(initial_backoff=1.0, jitter=0.5, max_retry_after=60.0)
    assert failed(policy, 1, retry_after=7.0).get_backoff_time() == 7.0
    assert failed(policy, 1, retry_after=600.0).get_backoff_time() == 60.0
    assert failed(policy, 1, retry_after=-3.0).get_backoff_time() == 0.0


def test_increment_returns_a_new_policy_and_leaves_the_original_alone() -> None:
    policy = Retry()
    after = policy.increment(now=100.0)
    assert (policy.attempts, policy.started) == (0, None)
    assert (after.attempts, after.started) == (1, 100.0)
    assert after.increment(now=200.0).started == 100.0  # the first failure starts the clock
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.attempts = 3  # type: ignore[misc]


def test_the_policy_is_exhausted_after_max_attempts_in_all() -> None:
    policy = Retry(max_attempts=3, max_elapsed=0)
    assert not failed(policy, 2).is_exhausted()
    assert failed(policy, 3).is_exhausted()
    assert Retry(max_attempts=1).increment(now=0).is_exhausted(now=0)  # 1 = no retry


def test_the_policy_is_exhausted_when_the_next_wait_would_overrun_max_elapsed() -> None:
    policy = failed(Retry(initial_backoff=1.0, jitter=0.0, max_elapsed=10.0), 1, now=0.0)
    assert not policy.is_exhausted(now=8.0)  # 8 s gone + 1 s wait <= 10
    assert policy.is_exhausted(now=9.5)


def test_max_elapsed_zero_means_no_time_limit() -> None:
    policy = failed(Retry(max_elapsed=0, max_attempts=100), 1, now=0.0)
    assert not policy.is_exhausted(now=1e9)


def test_the_policy_is_built_from_a_config_table() -> None:
    policy = Retry.from_config({"max_attempts": 2, "initial_backoff": 0.1, "jitter": 0})
    assert (policy.max_attempts, policy.initial_backoff, policy.jitter) == (2, 0.1, 0)
    with pytest.raises(KeyError):
        Retry.from_config({"attempts": 2})
    with pytest.raises(KeyError):
        Retry.from_config({"started": 1.0})  # state is not a setting


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"initial_backoff": -1}, "initial_backoff"),
        ({"max_backoff": "1"}, "max_backoff"),
        ({"jitter": 1.5}, "jitter"),
        ({"max_elapsed": True}, "max_elapsed"),
    ],
)
def test_out_of_range_settings_name_the_setting(settings: dict[str, object], key: str) -> None:
    with pytest.raises(PolicyError) as raised:
        Retry(**settings)  # type: ignore[arg-type]
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 1.5 ", 1.5), ("-4", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_headers_in_seconds_are_parsed(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_headers_as_http_dates_give_the_seconds_until_then() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    later = datetime(2026, 1, 1, 12, 0, 30, tzinfo=timezone.utc)
    header = format_datetime(later, usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == 30.0
    assert parse_retry_after(header, now=later.timestamp() + 100) == 0.0


@given(
    attempts=st.integers(min_value=1, max_value=60),
    initial=st.floats(min_value=0, max_value=100),
    cap=st.floats(min_value=0, max_value=100),
    jitter=st.floats(min_value=0, max_value=1),
    draw=st.floats(min_value=0, max_value=1),
)
def test_a_wait_is_never_negative_nor_longer_than_max_backoff(
    attempts: int, initial: float, cap: float, jitter: float, draw: float
) -> None:
    policy = failed(
        Retry(initial_backoff=initial, max_backoff=cap, jitter=jitter, max_attempts=100), attempts
    )
    wait = policy.get_backoff_time(random_fn=lambda: draw)
    assert 0.0 <= wait <= cap
