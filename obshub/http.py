"""A small HTTP transport shared by every exporter that talks to a web API.

One ``urllib3.PoolManager`` per process (and one ``ProxyManager`` per proxy)
keeps connections alive across batches and exporters; they are rebuilt in
the child after ``os.fork()`` so a child never writes into its parent's
sockets. urllib3's own retries are off: the exporter's delivery channel owns
retries, backoff and ``Retry-After``.

``timeout`` is a deadline for the whole request: connecting (through a proxy
too), sending, and reading the status, headers and the full body. A server
that trickles its answer a byte at a time is cut off when the deadline
passes, with a retryable `ExportError` ("deadline exceeded"). Only the
name lookup (DNS) is left to the system resolver's own timeout.

Proxies: ``proxy=None`` (the default) follows the environment the way
``requests`` and ``httpx`` do: ``HTTPS_PROXY`` for ``https://`` URLs,
``HTTP_PROXY`` for ``http://`` ones, ``ALL_PROXY`` for both, lowercase names
winning over uppercase, and ``NO_PROXY`` listing hosts to reach directly
(see `proxy_for`). ``proxy="http://proxy:3128"`` uses that proxy whatever
the environment says; ``proxy=""`` goes direct. Proxy credentials
(``http://user:pass@proxy:3128``) are sent as ``Proxy-Authorization``.

Failures are `ExportError` with ``retryable`` set
the way obshub's channel expects:

- 429 (with ``Retry-After``), 500, 502, 503, 504, timeouts, connection and
  proxy errors are retryable;
- any other status of 300 and above is not.

Messages never contain credentials: URLs go through `safe_url`, and the
values of ``Authorization`` and similar headers (and proxy credentials) are
scrubbed from anything the server sends back (see `Scrubber`).
"""

from __future__ import annotations

import base64
import gzip
import heapq
import ipaddress
import itertools
import os
import platform
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from http.client import HTTPException
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as UrllibTimeout

from obshub import _worker_token as worker_token
from obshub._config_errors import ConfigError
from obshub._dist import distribution_version
from obshub._exporters import ExportError
from obshub._redact import SECRET_HEADERS, Scrubber, safe_url, scrub
from obshub._retry import parse_retry_after

__all__ = [
    "PROXY_ENV_VARS",
    "RETRYABLE_STATUSES",
    "SECRET_HEADERS",
    "Response",
    "Scrubber",
    "basic_auth",
    "get",
    "gzip_compress",
    "post",
    "proxy_for",
    "proxy_setting",
    "request",
    "safe_url",
    "scrub",
    "status_error",
    "user_agent",
]

#: Statuses worth retrying: the server may answer differently later.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The environment variables read for proxies (each also in uppercase).
PROXY_ENV_VARS = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
#: How much of an error response body a message quotes.
_BODY_EXCERPT = 200
#: Bytes asked for per read of a response body.
_READ_SIZE = 65536
_CONNECTION_PREFIX = re.compile(r"^(<[^>]*>|\w+\(host=[^)]*\)): ")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Response(NamedTuple):
    """A response: ``status, headers, body, elapsed = post(...)`` also works.

    ``headers`` has lowercase names; ``elapsed`` is seconds from sending the
    request to having read the whole body.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float


# -- deadlines ---------------------------------------------------------------------------


class _SocketRef:
    """How to find a connection's socket again, whatever object holds it now.

    TLS wraps a socket into a new object and detaches the first one, so the
    reference is the file descriptor, checked against the connection's two
    addresses: a descriptor closed and reused by another connection in the
    meantime is left alone.
    """

    __slots__ = ("addresses", "family", "fd", "kind")

    def __init__(self, sock: socket.socket) -> None:
        self.fd = sock.fileno()
        self.family = sock.family
        self.kind = sock.type
        self.addresses = _addresses(sock)

    def shut(self) -> None:
        """Shut the connection down, which wakes a thread blocked on it at once."""
        if self.addresses is None:
            return
        try:
            duplicate = socket.fromfd(self.fd, self.family, self.kind)
        except OSError:
            return  # closed already
        with duplicate:
            try:
                if _addresses(duplicate) == self.addresses:
                    duplicate.shutdown(socket.SHUT_RDWR)
            except OSError:
                return


def _addresses(sock: socket.socket) -> tuple[Any, Any] | None:
    try:
        return sock.getsockname(), sock.getpeername()
    except OSError:
        return None


class _Watch:
    """One request's deadline, and the sockets it opened or reused."""

    __slots__ = ("deadline", "done", "expired", "sockets")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sockets: list[_SocketRef] = []
        self.expired = False
        self.done = False


class _Watcher:
    """One daemon thread that cuts off requests whose deadline passed.

    A request registers a `_Watch`; the connections it uses attach their
    sockets to it. When the deadline passes before the request is done, the
    watcher shuts those sockets down, which ends any read or write blocked on
    them, however slowly the server trickles.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Watch]] = []
        self._done_in_heap = 0
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def start(self, deadline: float) -> _Watch:
        watch = _Watch(deadline)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="obshub-http-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()
        return watch

    def attach(self, watch: _Watch, sock: _SocketRef) -> None:
        with self._cond:
            if watch.done or any(s is sock for s in watch.sockets):
                return
            watch.sockets.append(sock)
            if watch.expired:
                sock.shut()

    def finish(self, watch: _Watch) -> None:
        """The request is over: its sockets are no longer the watcher's to shut."""
        with self._cond:
            if watch.done:
                return
            watch.done = True
            watch.sockets.clear()
            if watch.expired:
                return  # the watcher took it out of the heap when it fired
            self._done_in_heap += 1
            if self._done_in_heap > 64 and self._done_in_heap * 2 > len(self._heap):
                # Finished requests wait in the heap until their deadline: drop them
                # in one go so a busy process keeps it small.
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._done_in_heap = 0

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                    self._done_in_heap = max(0, self._done_in_heap - 1)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, watch = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                watch.expired = True
                for sock in watch.sockets:
                    sock.shut()


_watcher = _Watcher()
_current = threading.local()


def _attach(sock: _SocketRef | None) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None and sock is not None:
        _watcher.attach(watch, sock)


class _DeadlineConnectionMixin:
    """Puts each socket a request opens or reuses under the request's deadline.

    The socket is taken as soon as it is connected, so the deadline also
    covers a proxy's ``CONNECT`` and the TLS handshake.
    """

    _obshub_socket: _SocketRef | None = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._obshub_socket = _SocketRef(sock)
        _attach(self._obshub_socket)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A kept-alive connection was opened by an earlier request.
        _attach(self._obshub_socket)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


# -- the process-wide pools --------------------------------------------------------------

#: One manager per proxy URL ("" for direct connections).
_managers: dict[str, urllib3.PoolManager] = {}
_managers_lock = threading.Lock()
_POOL_SETTINGS: dict[str, Any] = {
    "num_pools": 32,
    # block=False: a burst beyond maxsize opens extra connections instead of
    # waiting; only maxsize of them are kept alive.
    "maxsize": 8,
    "block": False,
    "retries": False,
}


def _get_manager(proxy: str | None) -> urllib3.PoolManager:
    key = proxy or ""
    manager = _managers.get(key)
    if manager is not None:
        return manager
    with _managers_lock:
        manager = _managers.get(key)
        if manager is None:
            manager = _new_manager(proxy)
            _managers[key] = manager
        return manager


def _new_manager(proxy: str | None) -> urllib3.PoolManager:
    manager: urllib3.PoolManager
    if proxy:
        address, proxy_headers = _split_proxy(proxy)
        manager = urllib3.ProxyManager(address, proxy_headers=proxy_headers, **_POOL_SETTINGS)
    else:
        manager = urllib3.PoolManager(**_POOL_SETTINGS)
    manager.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}
    return manager


def _split_proxy(proxy: str) -> tuple[str, dict[str, str]]:
    """The proxy's URL without credentials, and the headers that carry them."""
    parts = urlsplit(proxy)
    host = parts.netloc.rsplit("@", 1)[-1]
    headers: dict[str, str] = {}
    if "@" in parts.netloc:
        user, _, password = parts.netloc.rsplit("@", 1)[0].partition(":")
        headers["Proxy-Authorization"] = basic_auth(unquote(user), unquote(password))
    return f"{parts.scheme}://{host}", headers


def _forget_pools_after_fork() -> None:
    # The child must not share sockets with its parent, the locks may have
    # been held by a parent thread at the moment of the fork, and the
    # deadline thread did not survive it.
    global _managers_lock, _watcher, _current
    _managers.clear()
    _managers_lock = threading.Lock()
    _watcher = _Watcher()
    _current = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


# -- proxies -----------------------------------------------------------------------------


def _normalise_proxy(value: str) -> str:
    value = value.strip()
    # "proxy:3128" means an HTTP proxy, as in curl, requests and httpx.
    return value if "://" in value else f"http://{value}"


def _environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``{"https": url, "http": url, "all": url, "no": list}`` from the environment.

    Lowercase names win over uppercase ones, and a lowercase one set empty
    turns its uppercase twin off (as in Python's ``urllib.request``, which
    ``requests`` uses). ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is
    set: in a CGI script, a client controls it through its ``Proxy`` header.
    """
    found: dict[str, str] = {}
    for var in PROXY_ENV_VARS:
        name = var.removesuffix("_proxy")
        upper = environ.get(var.upper(), "").strip()
        if upper and not (var == "http_proxy" and "REQUEST_METHOD" in environ):
            found[name] = upper
        if var in environ:
            lower = environ[var].strip()
            if lower:
                found[name] = lower
            else:
                found.pop(name, None)
    return found


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host, port = entry, ""
    return host, int(port) if port.isdigit() else None


def _bypasses(no_proxy: str, host: str, port: int) -> bool:
    """True when ``NO_PROXY`` says to reach ``host:port`` directly.

    Entries are separated by commas (or blanks): ``*`` (every host), a host
    name (that host and its subdomains; a leading ``.`` or ``*.`` is
    ignored), an IP address or CIDR network (``10.0.0.0/8``), each optionally
    with ``:port``. Loopback is no exception: list ``localhost,127.0.0.1``
    to reach it directly, as with curl, requests and httpx.
    """
    host = host.strip("[]").lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_host, entry_port = _split_host_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry_host, strict=False):
                    return True
            except ValueError:
                pass
            continue
        domain = entry_host.removeprefix("*").lstrip(".").rstrip(".")
        if domain and (host == domain or host.endswith(f".{domain}")):
            return True
    return False


def proxy_for(
    url: str, proxy: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection.

    ``proxy`` given (a URL) wins over the environment, ``NO_PROXY`` included;
    ``proxy=""`` means direct. Otherwise ``HTTPS_PROXY`` (``https://`` URLs)
    or ``HTTP_PROXY`` (``http://`` URLs), else ``ALL_PROXY``, unless
    ``NO_PROXY`` lists the host: a comma-separated list of ``*``, host names
    (matching subdomains too), IP addresses and CIDR networks, each with an
    optional ``:port``; loopback is not exempt unless listed. A proxy given
    as ``host:port`` is an ``http://`` one. ``environ`` defaults to
    ``os.environ``, read at each call.
    """
    if proxy is not None:
        return _normalise_proxy(proxy) if proxy.strip() else None
    found = _environment_proxies(os.environ if environ is None else environ)
    if not found.keys() - {"no"}:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:
        return None
    if "no" in found and _bypasses(found["no"], host, port):
        return None
    chosen = found.get(parts.scheme) or found.get("all")
    return _normalise_proxy(chosen) if chosen else None


def proxy_setting(value: object, key: str = "proxy") -> str | None:
    """Validate an exporter's ``proxy`` setting; `ConfigError` (naming ``key``) if invalid.

    None: follow the environment; ``""``: no proxy at all; else an
    ``http://`` or ``https://`` proxy URL (``host:port`` means ``http://``),
    possibly with ``user:password@``. The value is never echoed.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, got {type(value).__name__}", key)
    if not value.strip():
        return ""
    normalised = _normalise_proxy(value)
    try:
        parts = urlsplit(normalised)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = None
    if parts is None or not port_ok or not parts.hostname:
        raise ConfigError("must be a proxy URL such as http://proxy.example.com:3128", key)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"proxy scheme {parts.scheme!r} is not supported (use http:// or https://)", key
        )
    return normalised


# -- helpers ---------------------------------------------------------------------------


def user_agent(*products: str) -> str:
    """``obshub/<version> python/<version>`` followed by ``products``.

    A plugin names itself: ``user_agent("obshub-langfuse/0.1.0")``.
    """
    base = f"obshub/{distribution_version('obshub')} python/{platform.python_version()}"
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


def _excerpt(body: bytes) -> str:
    text = body[: _BODY_EXCERPT * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > _BODY_EXCERPT:
        text = text[:_BODY_EXCERPT] + "..."
    return text


def _request_scrubber(
    url: str, headers: Mapping[str, str], secret_headers: Iterable[str], proxy: str | None
) -> Scrubber:
    return Scrubber(urls=(url, proxy), headers=headers, secret_headers=secret_headers)


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
    the secrets of ``url`` and ``headers`` (the request's) scrubbed out: the
    values of ``Authorization`` and the like, and of every header named in
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
        _request_scrubber(url, headers or {}, secret_headers, None)(message),
        retryable=status in RETRYABLE_STATUSES,
        retry_after=retry_after if status in RETRYABLE_STATUSES else None,
        status=status,
    )


def _deadline_error(where: str, timeout: float) -> ExportError:
    return ExportError(
        f"{where}: timed out after {timeout:g} s (deadline exceeded for connect, send and read)",
        retryable=True,
    )


def _transport_error(where: str, timeout: float, exc: BaseException) -> ExportError:
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, yet a
    # refused connection or an unknown host is no timeout: test for it first.
    if isinstance(exc, ProxyError):
        return ExportError(f"{where}: proxy error: {_reason(exc)}", retryable=True)
    if isinstance(exc, NewConnectionError):
        return ExportError(f"{where}: connection failed: {_reason(exc)}", retryable=True)
    if isinstance(exc, (UrllibTimeout, TimeoutError)):
        return _deadline_error(where, timeout)
    if isinstance(exc, SSLError):
        # A certificate or TLS version problem does not go away on its own.
        return ExportError(f"{where}: TLS error: {_reason(exc)}", retryable=False)
    if isinstance(exc, LocationValueError):
        return ExportError(f"{where}: invalid URL: {_reason(exc)}", retryable=False)
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


def _read_body(raw: urllib3.BaseHTTPResponse, watch: _Watch) -> bytes:
    """The whole body, one read at a time, each bounded by the time left."""
    chunks: list[bytes] = []
    while True:
        left = watch.deadline - time.monotonic()
        if left <= 0 or watch.expired:
            raise TimeoutError
        connection = raw.connection
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.settimeout(left)
        chunk = raw.read1(_READ_SIZE)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _send(
    manager: urllib3.PoolManager,
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
) -> tuple[urllib3.BaseHTTPResponse, bytes]:
    """Send the request and read the whole answer before ``timeout`` seconds pass.

    Raises `TimeoutError` when the deadline passed, else what urllib3 raised.
    """
    watch = _watcher.start(time.monotonic() + timeout)
    _current.watch = watch
    raw: urllib3.BaseHTTPResponse | None = None
    try:
        raw = manager.request(
            method,
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
            redirect=False,
            preload_content=False,
        )
        data = _read_body(raw, watch)
    except (HTTPError, HTTPException, OSError):
        if raw is not None:
            _discard(raw)
        if watch.expired or time.monotonic() >= watch.deadline:
            raise TimeoutError from None
        raise
    finally:
        _current.watch = None
        # Before the connection goes back to the pool: the watcher must not
        # shut a socket that another request may use next.
        _watcher.finish(watch)
    if watch.expired:
        _discard(raw)
        raise TimeoutError
    raw.release_conn()
    return raw, data


def _discard(raw: urllib3.BaseHTTPResponse) -> None:
    """Close the response's connection, and give the pool its (closed) slot back."""
    raw.close()
    raw.release_conn()


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    raise_for_status: bool = True,
    secret_headers: Iterable[str] = (),
    proxy: str | None = None,
) -> Response:
    """Send one request through the shared pool; never retries.

    ``timeout`` is a deadline for the whole request: connecting, sending,
    and reading the full answer. ``proxy``: None follows the environment
    (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``; see
    `proxy_for`), ``""`` connects directly, a URL uses that proxy. Raises
    `ExportError` on timeouts, connection and proxy errors (retryable) and,
    with ``raise_for_status``, on a status of 300 or above (see
    `status_error`, which also takes ``secret_headers``); otherwise any
    status is returned.
    """
    sent_headers = dict(headers or {})
    via = proxy_for(url, proxy)
    started = time.perf_counter()
    try:
        # The network wait needs no interpreter: let another exporter's worker encode.
        with worker_token.released():
            raw, data = _send(_get_manager(via), method, url, body, sent_headers, timeout)
    except (HTTPError, HTTPException, OSError, ValueError) as exc:
        where = f"{method} {safe_url(url)}"
        if via is not None:
            where = f"{where} (via proxy {safe_url(via)})"
        if isinstance(exc, urllib3.exceptions.ProxySchemeUnknown):
            error = ExportError(f"{where}: {_reason(exc)}", retryable=False)
        elif isinstance(exc, ValueError) and not isinstance(exc, HTTPError):
            error = ExportError(f"{where}: invalid URL: {exc}", retryable=False)
        else:
            error = _transport_error(where, timeout, exc)
        scrubbed = _request_scrubber(url, sent_headers, secret_headers, via)(str(error))
        raise ExportError(scrubbed, retryable=error.retryable) from None
    elapsed = time.perf_counter() - started
    response = Response(
        status=raw.status,
        headers={k.lower(): v for k, v in raw.headers.items()},
        body=data,
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
    secret_headers: Iterable[str] = (),
    proxy: str | None = None,
) -> Response:
    """``POST`` ``body`` to ``url`` (see `request`)."""
    return request(
        "POST",
        url,
        body=body,
        headers=headers,
        timeout=timeout,
        raise_for_status=raise_for_status,
        secret_headers=secret_headers,
        proxy=proxy,
    )


def get(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 10.0,
    raise_for_status: bool = True,
    secret_headers: Iterable[str] = (),
    proxy: str | None = None,
) -> Response:
    """``GET`` ``url`` (see `request`)."""
    return request(
        "GET",
        url,
        headers=headers,
        timeout=timeout,
        raise_for_status=raise_for_status,
        secret_headers=secret_headers,
        proxy=proxy,
    )
