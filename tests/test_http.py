"""`obshub.http`: statuses, Retry-After, gzip, scrubbing, the whole-request deadline, proxies."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from collections.abc import Iterator

import pytest

from obshub import ConfigError, ExportError, http
from obshub.testing import HttpReceiver, unreachable_url
from obshub.testing.net import MisbehavingServer, silent, trickle_body, trickle_headers

#: Seconds a deadline test allows; a request must end within it plus ``SLACK``.
TIMEOUT = 0.3
SLACK = 0.4


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as server:
        yield server


def response(status: int, body: bytes = b"", **headers: str) -> http.Response:
    return http.Response(status=status, headers=headers, body=body, elapsed=0.01)


# -- statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (502, True), (503, True), (504, True)]
    + [(s, False) for s in (300, 301, 400, 401, 403, 404, 409, 413, 422, 501)],
)
def test_a_status_is_retryable_only_when_the_server_may_answer_differently_later(
    receiver: HttpReceiver, status: int, retryable: bool
) -> None:
    receiver.respond(status, body="nope")
    with pytest.raises(ExportError) as caught:
        http.post(f"{receiver.url}/p", b"{}", timeout=5)
    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert f"HTTP {status}" in str(caught.value)


def test_a_success_returns_the_status_headers_and_body(receiver: HttpReceiver) -> None:
    receiver.respond(202, body='{"ok":true}', headers={"X-Request-Id": "r-1"})
    answer = http.post(f"{receiver.url}/p", b"{}", {"Content-Type": "application/json"})
    assert (answer.status, answer.headers["x-request-id"]) == (202, "r-1")
    assert json.loads(answer.body) == {"ok": True}
    assert answer.elapsed > 0


def test_without_raise_for_status_an_error_status_is_returned(receiver: HttpReceiver) -> None:
    receiver.respond(404, body="missing")
    answer = http.get(f"{receiver.url}/p", raise_for_status=False)
    assert (answer.status, answer.body) == (404, b"missing")


def test_retry_after_in_seconds_or_as_a_date_is_kept_for_retryable_statuses(
    receiver: HttpReceiver,
) -> None:
    receiver.respond(429, headers={"Retry-After": "7"})
    with pytest.raises(ExportError) as caught:
        http.post(f"{receiver.url}/p", b"")
    assert caught.value.retry_after == 7
    assert http.status_error("POST", "u", response(503, **{"retry-after": "2"})).retry_after == 2
    assert http.status_error("POST", "u", response(400, **{"retry-after": "7"})).retry_after is None


def test_a_redirect_is_not_followed_and_says_where_to_point_instead(
    receiver: HttpReceiver,
) -> None:
    receiver.respond(308, headers={"Location": "https://elsewhere.example/p?token=t0k3n"})
    with pytest.raises(ExportError) as caught:
        http.post(f"{receiver.url}/p", b"{}")
    assert "redirect to https://elsewhere.example/p?token=***" in str(caught.value)
    assert not caught.value.retryable
    assert len(receiver.requests()) == 1


def test_a_refused_connection_is_retryable() -> None:
    with pytest.raises(ExportError) as caught:
        http.post(unreachable_url("/p"), b"{}", timeout=2)
    assert caught.value.retryable
    assert "connection failed" in str(caught.value)


def test_an_unsupported_scheme_is_not_retried() -> None:
    with pytest.raises(ExportError) as caught:
        http.post("ftp://x.example/p", b"")
    assert not caught.value.retryable


# -- gzip ----------------------------------------------------------------------------------


def test_gzip_output_is_deterministic_and_round_trips() -> None:
    data = b"span " * 1000
    assert http.gzip_compress(data) == http.gzip_compress(data)
    assert gzip.decompress(http.gzip_compress(data)) == data


def test_a_gzipped_request_body_arrives_as_sent(receiver: HttpReceiver) -> None:
    body = http.gzip_compress(b'{"events": []}')
    http.post(f"{receiver.url}/p", body, {"Content-Encoding": "gzip"})
    (request,) = receiver.requests()
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.body) == b'{"events": []}'


def test_a_gzipped_answer_is_decoded(receiver: HttpReceiver) -> None:
    receiver.respond(200, body=gzip.compress(b"hello " * 100), headers={"Content-Encoding": "gzip"})
    assert http.get(f"{receiver.url}/p").body == b"hello " * 100


# -- scrubbing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://admin:PASS@host.example/p", "https://admin:***@host.example/p"),
        ("https://tok3nvalue@host.example/p", "https://***@host.example/p"),
        (
            "https://host.example/p?api_key=k3y&region=eu&sig=s1g",
            "https://host.example/p?api_key=***&region=eu&sig=***",
        ),
        (
            "https://host.example/p?X-Amz-Signature=abc",
            "https://host.example/p?X-Amz-Signature=***",
        ),
        ("https://host.example/p#access_token=abc", "https://host.example/p#access_token=***"),
        ("https://host.example:8443/v1/traces", "https://host.example:8443/v1/traces"),
    ],
)
def test_safe_url_masks_passwords_and_secret_parameters_only(url: str, shown: str) -> None:
    assert http.safe_url(url) == shown


def test_scrub_masks_urls_headers_and_bearer_tokens_in_free_text() -> None:
    text = (
        "failed: POST http://admin:PASS@host/p?token=abc (authorization: Basic dXNlcjpwYXNz) "
        "x-api-key=k-123456 then Bearer eyJhbGciOiJIUzI1NiJ9.payload url: /p?password=hunter2"
    )
    clean = http.scrub(text)
    for secret in ("PASS", "abc", "dXNlcjpwYXNz", "k-123456", "eyJhbGciOiJIUzI1NiJ9", "hunter2"):
        assert secret not in clean
    assert "http://admin:***@host/p?token=***" in clean
    assert "failed: POST" in clean


def test_a_scrubber_removes_known_secrets_in_every_form() -> None:
    auth = http.basic_auth("pk-lf-1", "sk-lf-SECRET")
    token = auth.split(" ", 1)[1]
    scrubber = http.Scrubber(
        urls=["https://u:p%40ss-word@h/x?key=v4lue-1"],
        headers={"Authorization": auth, "X-Team": "team-secret", "Accept": "application/json"},
        secret_headers={"x-team"},
        values=["another-secret", None, "ab"],
    )
    text = (
        f"echo {auth} / {token} / pk-lf-1:sk-lf-SECRET / p@ss-word / v4lue-1 / team-secret / "
        "another-secret / application/json / ab"
    )
    clean = scrubber(text)
    for secret in (token, "sk-lf-SECRET", "p@ss-word", "v4lue-1", "team-secret", "another-secret"):
        assert secret not in clean
    # Values that are no secret, and known secrets too short to replace safely, stay.
    assert "application/json" in clean
    assert clean.endswith("/ ab")


def test_an_error_quoting_an_echoed_credential_never_shows_it(receiver: HttpReceiver) -> None:
    auth = http.basic_auth("pk-lf-1", "sk-lf-SECRET")
    receiver.respond(400, body=f"bad key {auth} / sk-lf-SECRET / x-honey-k3y-value")
    with pytest.raises(ExportError) as caught:
        http.post(
            f"http://admin:PASS-1@127.0.0.1:{receiver.url.rsplit(':', 1)[1]}/p?api_key=qk3y",
            b"",
            {"Authorization": auth, "X-Honeycomb-Team": "x-honey-k3y-value"},
            secret_headers=["x-honeycomb-team"],
        )
    message = str(caught.value)
    for secret in ("sk-lf-SECRET", auth.split(" ")[1], "x-honey-k3y-value", "PASS-1", "qk3y"):
        assert secret not in message
    assert "bad key" in message


# -- the deadline --------------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers, silent])
def test_timeout_bounds_the_whole_request_whatever_the_server_does(behaviour: object) -> None:
    with MisbehavingServer(behaviour) as server:  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(ExportError) as caught:
            http.post(f"{server.url}/p", b"{}", timeout=TIMEOUT)
        took = time.monotonic() - started
    assert took < TIMEOUT + SLACK
    assert caught.value.retryable
    assert f"timed out after {TIMEOUT:g} s (deadline exceeded" in str(caught.value)


def test_a_request_within_its_deadline_keeps_its_connection_alive(receiver: HttpReceiver) -> None:
    for _ in range(5):
        http.post(f"{receiver.url}/p", b"{}", timeout=TIMEOUT)
    # The deadline watcher never cut a connection that finished in time.
    assert len(receiver.requests()) == 5


def test_many_quick_requests_leave_no_deadline_behind(receiver: HttpReceiver) -> None:
    for _ in range(200):
        http.get(f"{receiver.url}/p", timeout=30)
    # Finished requests are dropped from the watcher's heap in bulk.
    assert len(http._watcher._heap) < 150


# -- proxies: which one ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "url", "expected"),
    [
        ({}, "https://h.example/p", None),
        ({"HTTPS_PROXY": "http://p:3128"}, "https://h.example/p", "http://p:3128"),
        ({"HTTPS_PROXY": "http://p:3128"}, "http://h.example/p", None),
        ({"HTTP_PROXY": "http://p:3128"}, "http://h.example/p", "http://p:3128"),
        ({"ALL_PROXY": "http://a:1"}, "https://h.example/p", "http://a:1"),
        ({"ALL_PROXY": "http://a:1", "HTTPS_PROXY": "http://s:2"}, "https://h/p", "http://s:2"),
        (
            {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"},
            "https://h/p",
            "http://low:1",
        ),
        ({"https_proxy": "", "HTTPS_PROXY": "http://up:2"}, "https://h/p", None),
        ({"HTTPS_PROXY": "p.example:3128"}, "https://h/p", "http://p.example:3128"),
        ({"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}, "http://h/p", None),
        ({"http_proxy": "http://p:1", "REQUEST_METHOD": "GET"}, "http://h/p", "http://p:1"),
    ],
)
def test_the_proxy_comes_from_the_variable_of_the_url_scheme(
    environ: dict[str, str], url: str, expected: str | None
) -> None:
    assert http.proxy_for(url, environ=environ) == expected


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("*", "https://anything.example/p", True),
        ("example.com", "https://example.com/p", True),
        ("example.com", "https://api.example.com/p", True),
        (".example.com", "https://api.example.com/p", True),
        ("*.example.com", "https://api.example.com/p", True),
        ("example.com", "https://notexample.com/p", False),
        ("example.com:8443", "https://example.com:8443/p", True),
        ("example.com:8443", "https://example.com/p", False),
        ("example.com:443", "https://example.com/p", True),
        ("10.0.0.0/8", "http://10.1.2.3/p", True),
        ("10.0.0.0/8", "http://11.1.2.3/p", False),
        ("127.0.0.1", "http://127.0.0.1:4318/v1/traces", True),
        ("localhost", "http://127.0.0.1:4318/v1/traces", False),
        ("::1", "http://[::1]:4318/v1/traces", True),
        ("a.example, b.example  c.example", "https://c.example/p", True),
        ("", "https://h.example/p", False),
    ],
)
def test_no_proxy_lists_hosts_domains_ports_and_networks_reached_directly(
    no_proxy: str, url: str, bypassed: bool
) -> None:
    environ = {"HTTPS_PROXY": "http://p:3128", "HTTP_PROXY": "http://p:3128", "NO_PROXY": no_proxy}
    assert (http.proxy_for(url, environ=environ) is None) is bypassed


def test_loopback_is_proxied_like_any_host_unless_listed() -> None:
    environ = {"HTTP_PROXY": "http://p:3128"}
    assert http.proxy_for("http://127.0.0.1:4318/v1/traces", environ=environ) == "http://p:3128"
    assert http.proxy_for("http://localhost:4318/", environ=environ) == "http://p:3128"


def test_an_explicit_proxy_wins_over_the_environment_and_no_proxy() -> None:
    environ = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    assert http.proxy_for("https://h/p", "http://mine:2", environ=environ) == "http://mine:2"
    assert http.proxy_for("https://h/p", "", environ=environ) is None


def test_the_process_environment_is_read_at_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://p:3128")
    assert http.proxy_for("https://h/p") == "http://p:3128"
    monkeypatch.setenv("NO_PROXY", "h")
    assert http.proxy_for("https://h/p") is None
    assert "HTTPS_PROXY" in os.environ


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("", ""),
        ("  ", ""),
        ("http://proxy.example:3128", "http://proxy.example:3128"),
        ("https://proxy.example", "https://proxy.example"),
        ("proxy.example:3128", "http://proxy.example:3128"),
        ("http://u:p@proxy.example:3128", "http://u:p@proxy.example:3128"),
    ],
)
def test_a_proxy_setting_is_a_url_an_empty_string_or_none(
    given: str | None, expected: str | None
) -> None:
    assert http.proxy_setting(given) == expected


@pytest.mark.parametrize("given", [3128, "socks5://u:s3cret@p:1080", "http://", "http://p:99999"])
def test_an_invalid_proxy_setting_is_a_config_error_that_never_echoes_it(given: object) -> None:
    with pytest.raises(ConfigError) as caught:
        http.proxy_setting(given)
    assert caught.value.key == "proxy"
    assert "s3cret" not in str(caught.value)


def test_basic_auth_is_the_standard_header_value() -> None:
    value = http.basic_auth("user", "pa:ss")
    assert value == "Basic " + base64.b64encode(b"user:pa:ss").decode()


def test_an_unsupported_proxy_scheme_from_the_environment_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "socks5://user:s0cks-secret@127.0.0.1:1080")
    with pytest.raises(ExportError) as caught:
        http.post(unreachable_url("/p"), b"{}", timeout=2)
    assert not caught.value.retryable
    assert "socks5" in str(caught.value)
    assert "s0cks-secret" not in str(caught.value)
