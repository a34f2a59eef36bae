"""The one scrubbing helper (`obshub._redact`) and the loggers that use it."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from obshub import _logging
from obshub._redact import MASK, Scrubber, is_secret_name, safe_url, scrub, scrub_value


@pytest.mark.parametrize(
    "name", ["api_key", "apiKey", "X-API-KEY", "token", "access_token", "sig", "password", "secret"]
)
def test_secret_looking_names_are_recognised(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["region", "service", "limit", "format"])
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


def test_scrubbing_is_idempotent() -> None:
    text = "GET http://admin:PASS@h/p?token=abc authorization: Bearer abcdefghij"
    once = scrub(text)
    assert scrub(once) == once
    assert safe_url(safe_url("http://a:b@h/?key=v")) == safe_url("http://a:b@h/?key=v")


def test_text_without_secrets_is_left_alone() -> None:
    text = "POST https://cloud.langfuse.com/api/public/otel/v1/traces: HTTP 503: busy; retry"
    assert scrub(text) == text


def test_an_invalid_url_is_not_echoed() -> None:
    assert safe_url("http://[::1") == "<invalid url>"


def test_scrub_value_walks_dicts_lists_and_tuples() -> None:
    scrubber = Scrubber(values=["hunter22"])
    value = {"a": ["x hunter22", ("hunter22", 3)], "b": {"c": "http://u:p@h"}, "n": None}
    assert scrub_value(value, scrubber) == {
        "a": [f"x {MASK}", (MASK, 3)],
        "b": {"c": f"http://u:{MASK}@h"},
        "n": None,
    }


def test_a_scrubber_never_shows_its_secrets_in_its_repr() -> None:
    assert "hunter22" not in repr(Scrubber(values=["hunter22"]))


def test_exporter_log_events_are_scrubbed_after_filtering() -> None:
    log = _logging.exporter_logger("x", _logging.parse_level("info"))
    with capture_logs() as logs:
        log.debug("hidden", url="http://u:PASS@h")
        log.warning(
            "export_retry",
            error="POST http://u:PASS@h/p?api_key=k3y-value: HTTP 503",
            nested={"urls": ["http://u:PASS@h"]},
            count=3,
        )
    (event,) = logs
    assert "PASS" not in repr(event)
    assert "k3y-value" not in repr(event)
    assert event["error"] == f"POST http://u:{MASK}@h/p?api_key={MASK}: HTTP 503"
    assert event["count"] == 3


def test_the_library_logger_scrubs_its_events_too() -> None:
    log = _logging.get_logger()
    with capture_logs() as logs:
        log.bind(plugin="p").error("plugin_failed", error="ValueError: http://u:PASS@h")
    (event,) = logs
    assert event["error"] == f"ValueError: http://u:{MASK}@h"
    assert event["plugin"] == "p"
