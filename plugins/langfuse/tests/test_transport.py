"""The shared HTTP transport the exporter relies on: error classes and secret hygiene."""

from __future__ import annotations

import base64

import pytest

from obshub import ExportError, http


def response(status: int, body: bytes = b"", **headers: str) -> http.Response:
    return http.Response(status=status, headers=headers, body=body, elapsed=0.01)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (301, False),
    ],
)
def test_statuses_are_classified_for_the_retry_policy(status: int, retryable: bool) -> None:
    error = http.status_error("POST", "https://x.example/p", response(status))
    assert (error.status, error.retryable) == (status, retryable)


def test_retry_after_is_parsed_only_where_a_retry_follows() -> None:
    assert http.status_error("POST", "u", response(429, **{"retry-after": "7"})).retry_after == 7
    assert http.status_error("POST", "u", response(400, **{"retry-after": "7"})).retry_after is None


def test_a_server_echoing_credentials_has_them_scrubbed_from_the_message() -> None:
    auth = http.basic_auth("pk-lf-1", "sk-lf-SECRET")
    token = auth.split(" ", 1)[1]
    echoed = f"bad request: {auth} / {token} / sk-lf-SECRET".encode()
    error = http.status_error(
        "POST", "https://x.example/p", response(400, echoed), {"Authorization": auth}
    )
    assert "sk-lf-SECRET" not in str(error)
    assert token not in str(error)
    assert base64.b64decode(token).decode() not in str(error)


def test_user_info_in_a_url_is_never_shown() -> None:
    error = http.status_error("GET", "https://pk:sk-lf-9@x.example/p", response(500))
    assert "sk-lf-9" not in str(error)
    assert "https://pk:***@x.example/p" in str(error)


def test_a_redirect_says_where_to_point_instead() -> None:
    error = http.status_error(
        "POST", "http://x.example/p", response(308, location="https://x.example/p")
    )
    assert "redirect to https://x.example/p" in str(error)
    assert not error.retryable


def test_an_invalid_url_is_not_retried() -> None:
    with pytest.raises(ExportError) as caught:
        http.post("ftp://x.example/p", b"")
    assert not caught.value.retryable


def test_gzip_output_is_deterministic() -> None:
    assert http.gzip_compress(b"a" * 1000) == http.gzip_compress(b"a" * 1000)


def test_the_user_agent_names_obshub_and_the_plugin() -> None:
    agent = http.user_agent("obshub-langfuse/0.1.0")
    assert agent.startswith("obshub/")
    assert agent.endswith(" obshub-langfuse/0.1.0")
