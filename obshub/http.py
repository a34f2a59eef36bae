"""A small HTTP transport shared by every exporter that talks to a web API.

One ``urllib3.PoolManager`` per process keeps connections alive across
batches and exporters; it is rebuilt in the child after ``os.fork()`` so a
child never writes into its parent's sockets. urllib3's own retries are off:
the exporter's delivery channel owns retries, backoff and ``Retry-After``.

Failures are `ExportError` with ``retryable`` set
the way obshub's channel expects:

- 429 (with ``Retry-After``), 500, 502, 503, 504, timeouts and connection
  errors are retryable;
- any other status of 300 and above is not.

Messages never contain credentials: the values of ``Authorization`` and
similar headers are scrubbed from anything the server sends back, and user
info is cut from URLs.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import os
import platform
import re
import threading
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import (
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as UrllibTimeout

from obshub import _worker_token as worker_token
from obshub.exporters import ExportError
from obshub.retry import parse_retry_after

__all__ = [
    "RETRYABLE_STATUSES",
    "Response",
    "basic_auth",
    "get",
    "gzip_compress",
    "post",
    "request",
    "safe_url",
    "status_error",
    "user_agent",
]

#: Statuses worth retrying: the server may answer differently later.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Headers whose values are secrets (scrubbed from every message).
_SECRET_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key")
#: How much of an error response body a message quotes.
_BODY_EXCERPT = 200
_CONNECTION_PREFIX = re.compile(r"^(<[^>]*>|\w+\(host=[^)]*\)): ")


class Response(NamedTuple):
    """A response: ``status, headers, body, elapsed = post(...)`` also works.

    ``headers`` has lowercase names; ``elapsed`` is seconds from sending the
    request to having read the whole body.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float


# -- the process-wide pool ------------------------------------------------------------

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def _get_pool() -> urllib3.PoolManager:
    pool = _pool
    if pool is not None:
        return pool
    return _create_pool()


def _create_pool() -> urllib3.PoolManager:
    global _pool
    with _pool_lock:
        if _pool is None:
            # block=False: a burst beyond maxsize opens extra connections
            # instead of waiting; only maxsize of them are kept alive.
            _pool = urllib3.PoolManager(num_pools=32, maxsize=8, block=False, retries=False)
        return _pool


def _forget_pool_after_fork() -> None:
    # The child must not share sockets with its parent, and the lock may have
    # been held by a parent thread at the moment of the fork.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


# -- helpers ---------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def user_agent(*products: str) -> str:
    """``obshub/<version> python/<version>`` followed by ``products``.

    A plugin names itself: ``user_agent("obshub-langfuse/0.1.0")``.
    """
    base = f"obshub/{_version('obshub')} python/{platform.python_version()}"
    return " ".join((base, *products))


def basic_auth(username: str, password: str) -> str:
    """The value of an ``Authorization`` header for HTTP Basic auth."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def gzip_compress(data: bytes, level: int = 6) -> bytes:
    """``data`` gzipped (level 6: most of level 9's gain at a fraction of its cost).

    The header's timestamp is zero, so equal inputs give equal bytes.
    """
    return gzip.compress(data, compresslevel=level, mtime=0)


def safe_url(url: str) -> str:
    """``url`` fit for messages: no user info, query masked.

    ``https://user:pw@host/p?api_key=k`` → ``https://host/p?***`` (vendors put
    API keys in query strings too).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if "@" not in parts.netloc and not parts.query:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "***" if parts.query else "", ""))


def _secrets_of(headers: Mapping[str, str], secret_headers: Iterable[str] = ()) -> list[str]:
    names = {*_SECRET_HEADERS, *(n.lower() for n in secret_headers)}
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() not in names or not value:
            continue
        found.append(value)
        scheme, _, token = value.partition(" ")
        if token:
            found.append(token)
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(token, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    continue
                found.append(decoded)
                found.append(decoded.partition(":")[2])
    # Longest first, so a secret inside a longer one is not half-replaced.
    return sorted((s for s in found if s), key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _excerpt(body: bytes) -> str:
    text = body[: _BODY_EXCERPT * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > _BODY_EXCERPT:
        text = text[:_BODY_EXCERPT] + "..."
    return text


def status_error(
    method: str,
    url: str,
    response: Response,
    headers: Mapping[str, str] | None = None,
    *,
    secret_headers: Iterable[str] = (),
) -> ExportError:
    """The `ExportError` for a response with an error status.

    Retryable for `RETRYABLE_STATUSES` (with ``retry_after`` from a
    ``Retry-After`` header); the message quotes the start of the body, with
    the secrets of ``headers`` (the request's) scrubbed out: the values of
    ``Authorization`` and the like, and of every header named in
    ``secret_headers`` (e.g. a vendor's ``x-honeycomb-team``).
    """
    status = response.status
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    excerpt = _excerpt(response.body)
    message = f"{method} {safe_url(url)}: HTTP {status}"
    location = response.headers.get("location")
    if 300 <= status < 400 and location:
        # Redirects are not followed (a POST body would be lost): say where to point instead.
        message = f"{message} redirect to {safe_url(location)}; use that URL"
    elif excerpt:
        message = f"{message}: {excerpt}"
    return ExportError(
        _scrub(message, _secrets_of(headers or {}, secret_headers)),
        retryable=status in RETRYABLE_STATUSES,
        retry_after=retry_after if status in RETRYABLE_STATUSES else None,
        status=status,
    )


def _transport_error(method: str, url: str, timeout: float, exc: HTTPError) -> ExportError:
    where = f"{method} {safe_url(url)}"
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, yet a
    # refused connection or an unknown host is no timeout: test for it first.
    if isinstance(exc, NewConnectionError):
        return ExportError(f"{where}: connection failed: {_reason(exc)}", retryable=True)
    if isinstance(exc, UrllibTimeout):
        return ExportError(f"{where}: timed out after {timeout:g} s", retryable=True)
    if isinstance(exc, SSLError):
        # A certificate or TLS version problem does not go away on its own.
        return ExportError(f"{where}: TLS error: {_reason(exc)}", retryable=False)
    if isinstance(exc, LocationValueError):
        return ExportError(f"{where}: invalid URL: {_reason(exc)}", retryable=False)
    if isinstance(exc, ProxyError):
        return ExportError(f"{where}: proxy error: {_reason(exc)}", retryable=True)
    return ExportError(f"{where}: connection failed: {_reason(exc)}", retryable=True)


def _reason(exc: BaseException) -> str:
    # urllib3 wraps the socket error; its innermost cause says what happened.
    inner: BaseException = exc
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, BaseException):
            inner = arg
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        inner = reason
    text = str(inner) or type(inner).__name__
    # urllib3 prefixes its messages with the connection object's repr.
    text = _CONNECTION_PREFIX.sub("", text)
    return f"{type(inner).__name__}: {text}" if inner is not exc else text


# -- requests ----------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    raise_for_status: bool = True,
    secret_headers: Iterable[str] = (),
) -> Response:
    """Send one request through the shared pool; never retries.

    ``timeout`` bounds connecting and reading alike. Raises
    `ExportError` on timeouts and connection errors (retryable) and,
    with ``raise_for_status``, on a status of 300 or above (see
    `status_error`, which also takes ``secret_headers``); otherwise any
    status is returned.
    """
    sent_headers = dict(headers or {})
    started = time.perf_counter()
    try:
        # The network wait needs no interpreter: let another exporter's worker encode.
        with worker_token.released():
            raw = _get_pool().request(
                method,
                url,
                body=body,
                headers=sent_headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False,
                redirect=False,
                preload_content=True,
            )
    except HTTPError as exc:
        raise _transport_error(method, url, timeout, exc) from None
    elapsed = time.perf_counter() - started
    response = Response(
        status=raw.status,
        headers={k.lower(): v for k, v in raw.headers.items()},
        body=raw.data or b"",
        elapsed=elapsed,
    )
    if raise_for_status and response.status >= 300:
        raise status_error(method, url, response, sent_headers, secret_headers=secret_headers)
    return response


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 10.0,
    raise_for_status: bool = True,
) -> Response:
    """``POST`` ``body`` to ``url`` (see `request`)."""
    return request(
        "POST", url, body=body, headers=headers, timeout=timeout, raise_for_status=raise_for_status
    )


def get(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 10.0,
    raise_for_status: bool = True,
) -> Response:
    """``GET`` ``url`` (see `request`)."""
    return request("GET", url, headers=headers, timeout=timeout, raise_for_status=raise_for_status)
