"""`obshub.plugin`: the helpers plugin authors use instead of writing them again."""

from __future__ import annotations

import threading
from importlib import metadata

import pytest

import obshub
from obshub.plugin import (
    AUTH_PAUSE_INITIAL,
    AUTH_PAUSE_MAX,
    AuthPause,
    Scrubber,
    distribution_version,
    positive_seconds,
    scrubbed_error,
    scrubbed_result,
)

TOKEN = "tok-9f8e7d6c5b4a"


def test_distribution_version_is_the_installed_version_or_unknown() -> None:
    assert distribution_version("obshub") == metadata.version("obshub")
    assert distribution_version("obshub-no-such-distribution") == "0+unknown"


@pytest.mark.parametrize("value", [1, 0.25, 30.0])
def test_positive_seconds_takes_a_finite_number_above_zero(value: float) -> None:
    assert positive_seconds(value, "timeout") == float(value)
    assert isinstance(positive_seconds(value, "timeout"), float)


@pytest.mark.parametrize("value", [0, -1, 0.0, True, "5", None, float("nan"), float("inf")])
def test_positive_seconds_refuses_anything_else_naming_the_key(value: object) -> None:
    with pytest.raises(obshub.ConfigError, match="must be a number of seconds > 0") as caught:
        positive_seconds(value, "auth_cooldown")
    assert caught.value.key == "auth_cooldown"


def test_the_auth_pause_doubles_on_each_refusal_up_to_the_maximum() -> None:
    pause = AuthPause(30, 100)
    pauses = [pause.refused("refused", 401).pause for _ in range(4)]
    assert pauses == [30.0, 60.0, 100.0, 100.0]


def test_a_success_starts_the_auth_pause_over() -> None:
    pause = AuthPause(0.5)
    pause.refused("refused", 403)
    assert pause.next_pause == 1.0
    pause.succeeded()
    assert pause.next_pause == 0.5


def test_the_refusal_error_pauses_sends_is_not_retried_and_says_for_how_long() -> None:
    error = AuthPause().refused("the backend rejected the keys (HTTP 401)", 401)
    assert (error.retryable, error.status, error.pause) == (False, 401, AUTH_PAUSE_INITIAL)
    assert str(error) == "the backend rejected the keys (HTTP 401); sends pause for 30 s"
    assert AuthPause(0.3).refused("x", 403).args[0].endswith("sends pause for 0.3 s")


def test_the_default_auth_pause_is_thirty_seconds_doubling_to_ten_minutes() -> None:
    pause = AuthPause()
    assert (pause.initial, pause.maximum) == (AUTH_PAUSE_INITIAL, AUTH_PAUSE_MAX) == (30.0, 600.0)


def test_an_auth_pause_setting_that_is_not_seconds_is_a_config_error_naming_its_key() -> None:
    with pytest.raises(obshub.ConfigError) as caught:
        AuthPause(0, key="cooldown")
    assert caught.value.key == "cooldown"


def test_refusals_from_several_threads_each_get_one_step_of_the_doubling() -> None:
    pause = AuthPause(1, 2**20)
    seen: list[float] = []
    lock = threading.Lock()

    def refuse() -> None:
        for _ in range(5):
            got = pause.refused("x", 401).pause
            assert got is not None
            with lock:
                seen.append(got)

    threads = [threading.Thread(target=refuse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [float(2**i) for i in range(20)]


def test_a_scrubbed_error_hides_the_secret_and_keeps_what_the_channel_reads() -> None:
    scrub = Scrubber(values=[TOKEN])
    original = obshub.ExportError(
        f"POST https://x.example/hook?token={TOKEN}: HTTP 503 {TOKEN}",
        retryable=True,
        retry_after=2.0,
        status=503,
        pause=None,
    )
    clean = scrubbed_error(original, scrub)
    assert TOKEN not in str(clean)
    assert TOKEN not in repr(clean)
    assert (clean.retryable, clean.retry_after, clean.status, clean.pause, clean.rejected) == (
        True,
        2.0,
        503,
        None,
        False,
    )
    refused = scrubbed_error(
        obshub.ExportError("bad", status=400, rejected=True, items=["a"]), scrub
    )
    assert (refused.rejected, refused.items) == (True, ["a"])


def test_a_scrubbed_check_result_hides_the_secret_in_its_message_and_details() -> None:
    result = obshub.CheckResult(
        ok=False,
        message=f"refused {TOKEN}",
        latency_ms=3.0,
        details={"echo": f"key={TOKEN}", "status": 401},
    )
    clean = scrubbed_result(result, Scrubber(values=[TOKEN]))
    assert TOKEN not in clean.message
    assert TOKEN not in clean.details["echo"]
    assert (clean.ok, clean.latency_ms, clean.details["status"]) == (False, 3.0, 401)
