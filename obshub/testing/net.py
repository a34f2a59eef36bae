"""Network peers for tests of HTTP exporters: a proxy, and servers that misbehave.

Everything listens on ``127.0.0.1`` and only ever connects to loopback.

- `LoopbackProxy`: an HTTP proxy. It tunnels ``CONNECT host:port`` (what
  clients send for ``https://`` URLs) and forwards absolute-form requests
  (``POST http://host:port/path``, what they send for ``http://`` URLs),
  records each (`ProxiedRequest`, with the ``Proxy-Authorization`` it
  received), can demand credentials (407 otherwise), and can stall (accept,
  never answer) to test deadlines.
- `MisbehavingServer`: a raw TCP server that runs one of `trickle_body`,
  `trickle_headers` or `silent` on each connection: the servers that hold
  a client forever when its timeouts are per socket operation only.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import select
import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

import attrs

from obshub.testing._waiting import DEFAULT_TIMEOUT, wait_for_count

__all__ = [
    "LoopbackProxy",
    "MisbehavingServer",
    "ProxiedRequest",
    "read_request",
    "silent",
    "trickle_body",
    "trickle_headers",
]

#: ``behaviour(connection, stop)``: what a `MisbehavingServer` does with one connection.
Behaviour = Callable[[socket.socket, threading.Event], None]
_HOP_BY_HOP = frozenset(
    {
        "proxy-authorization",
        "proxy-connection",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_head(conn: socket.socket, buffer: bytearray) -> bytes | None:
    """Bytes up to the blank line ending a request or response head (None at EOF)."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def _headers_of(lines: list[bytes]) -> list[tuple[str, str]]:
    headers = []
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return headers


def _read_exact(conn: socket.socket, buffer: bytearray, length: int) -> bytes:
    while len(buffer) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buffer.extend(chunk)
    data = bytes(buffer[:length])
    del buffer[:length]
    return data


def read_request(conn: socket.socket) -> bytes:
    """Read one request (head and ``Content-Length`` body) from ``conn``; return its head."""
    buffer = bytearray()
    head = _read_head(conn, buffer)
    if head is None:
        return b""
    length = 0
    for name, value in _headers_of(head.split(b"\r\n")[1:]):
        if name.lower() == "content-length":
            length = int(value)
    _read_exact(conn, buffer, length)
    return head


# -- the proxy -------------------------------------------------------------------------


@attrs.frozen
class ProxiedRequest:
    """One request the proxy handled.

    ``method`` is ``CONNECT`` for a tunnel (``target`` is ``host:port``) or
    the forwarded request's method (``target`` the absolute URL);
    ``proxy_authorization`` the header as received (None if absent);
    ``status`` what the proxy answered itself (200 for a tunnel set up or a
    request forwarded, 407 for missing credentials, 403 for a target that
    is not loopback, 502 when the target could not be reached).
    """

    method: str
    target: str
    proxy_authorization: str | None
    status: int


class LoopbackProxy:
    """An HTTP proxy on ``127.0.0.1`` that tunnels CONNECT and forwards absolute-form requests.

    ``credentials=("user", "pass")`` makes it demand ``Proxy-Authorization:
    Basic ...`` (407 otherwise); ``stall=True`` makes it accept connections
    and never answer. Targets must be loopback addresses (403 otherwise).
    Use as a context manager; `url` is ``http://127.0.0.1:<port>`` and
    `url_with_credentials` has the credentials in it.
    """

    def __init__(self, *, credentials: tuple[str, str] | None = None, stall: bool = False) -> None:
        self.credentials = credentials
        self.stall = stall
        self._cond = threading.Condition()
        self._requests: list[ProxiedRequest] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._acceptor: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        """The proxy URL with ``user:password@`` (percent-encoded) in it."""
        if self.credentials is None:
            return self.url
        user, password = (quote(part, safe="") for part in self.credentials)
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def start(self) -> LoopbackProxy:
        if self._acceptor is None:
            self._acceptor = threading.Thread(
                target=self._accept, name="obshub-loopback-proxy", daemon=True
            )
            self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop serving; connections still open (kept alive by clients) are shut."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(5)
        with self._cond:
            open_connections = list(self._connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def __enter__(self) -> LoopbackProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw -------------------------------------------------------------------

    def requests(self) -> list[ProxiedRequest]:
        """Every request handled so far, in order."""
        with self._cond:
            return list(self._requests)

    def wait_for_requests(
        self, count: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[ProxiedRequest]:
        """Block until ``count`` requests were handled; return them all.

        Raises `TimeoutError` saying how many were handled if not within ``timeout``.
        """
        return wait_for_count(
            lambda: self._requests, count, condition=self._cond, timeout=timeout, what="requests"
        )

    def _record(self, request: ProxiedRequest) -> None:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()

    # -- serving -------------------------------------------------------------------------

    def _accept(self) -> None:
        _accept_connections(self._listener, self._stop, self._serve, self._threads)

    def _authorised(self, headers: list[tuple[str, str]]) -> tuple[bool, str | None]:
        received = next((v for n, v in headers if n.lower() == "proxy-authorization"), None)
        if self.credentials is None:
            return True, received
        user, password = self.credentials
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return received == f"Basic {token}", received

    def _serve(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.add(conn)
        with conn:
            try:
                if self.stall:
                    self._stop.wait(60)
                    return
                buffer = bytearray()
                while not self._stop.is_set():
                    head = _read_head(conn, buffer)
                    if head is None:
                        return
                    lines = head.split(b"\r\n")
                    method, target, _ = lines[0].decode("latin-1").split(" ", 2)
                    headers = _headers_of(lines[1:])
                    ok, received = self._authorised(headers)
                    if not ok:
                        self._record(ProxiedRequest(method, target, received, 407))
                        conn.sendall(
                            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                            b'Proxy-Authenticate: Basic realm="loopback"\r\n'
                            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        return
                    if method == "CONNECT":
                        self._tunnel(conn, target, received, bytes(buffer))
                        return
                    if not self._forward(conn, buffer, method, target, headers, received):
                        return
            except OSError:
                return
            finally:
                with self._cond:
                    self._connections.discard(conn)

    def _tunnel(self, conn: socket.socket, target: str, received: str | None, early: bytes) -> None:
        host, _, port = target.rpartition(":")
        if not _is_loopback(host) or not port.isdigit():
            self._record(ProxiedRequest("CONNECT", target, received, 403))
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except OSError:
            self._record(ProxiedRequest("CONNECT", target, received, 502))
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self._record(ProxiedRequest("CONNECT", target, received, 200))
        with upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
            self._pump(conn, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        while not self._stop.is_set():
            readable, _, _ = select.select(sockets, [], [], 0.05)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)

    def _forward(
        self,
        conn: socket.socket,
        buffer: bytearray,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        received: str | None,
    ) -> bool:
        """Forward one absolute-form request; True to keep the client connection."""
        length = next((int(v) for n, v in headers if n.lower() == "content-length"), 0)
        body = _read_exact(conn, buffer, length)
        parts = urlsplit(target)
        host = parts.hostname or ""
        if parts.scheme != "http" or not _is_loopback(host):
            self._record(ProxiedRequest(method, target, received, 403))
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return True
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        upstream = http.client.HTTPConnection(host, parts.port or 80, timeout=30)
        try:
            upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            self._record(ProxiedRequest(method, target, received, 502))
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return True
        finally:
            upstream.close()
        self._record(ProxiedRequest(method, target, received, 200))
        out = [f"HTTP/1.1 {response.status} {response.reason}".encode("latin-1")]
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                out.append(f"{name}: {value}".encode("latin-1"))
        out.append(f"Content-Length: {len(answer)}".encode("ascii"))
        conn.sendall(b"\r\n".join(out) + b"\r\n\r\n" + answer)
        return True


# -- servers that misbehave ----------------------------------------------------------------

#: A trickling server sends one byte this often (seconds).
DRIP = 0.05
#: A misbehaving server gives up on a connection after this many seconds.
GIVE_UP = 60.0


def _drip(conn: socket.socket, data: bytes, stop: threading.Event) -> None:
    deadline = time.monotonic() + GIVE_UP
    for byte in data:
        if stop.wait(DRIP) or time.monotonic() > deadline:
            return
        conn.sendall(bytes([byte]))


def trickle_body(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request; send the status line and headers at once, then the body a byte
    per `DRIP` seconds."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
    _drip(conn, b"x" * 100_000, stop)


def trickle_headers(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request; send the status line, then header lines a byte per `DRIP` seconds."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    _drip(conn, b"X-Slow: yes\r\n" * 10_000, stop)


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request and never answer."""
    read_request(conn)
    stop.wait(GIVE_UP)


class MisbehavingServer:
    """A TCP server on ``127.0.0.1`` running ``behaviour`` on each connection, in a thread.

    ``connections`` counts the connections accepted. Use as a context
    manager: leaving it stops every behaviour and closes the listener.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(
            target=self._accept, name="obshub-misbehaving-server", daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def __enter__(self) -> MisbehavingServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        _accept_connections(self._listener, self.stop_event, self._run, self._threads)

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def _run(self, conn: socket.socket) -> None:
        self._count_connection()
        with conn:
            try:
                self.behaviour(conn, self.stop_event)
            except OSError:
                return


def _accept_connections(
    listener: socket.socket,
    stop: threading.Event,
    serve: Callable[[socket.socket], None],
    threads: list[threading.Thread],
) -> None:
    """Accept connections until ``stop`` (or the listener closes); one thread each."""
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        thread = threading.Thread(target=serve, args=(conn,), daemon=True)
        threads.append(thread)
        thread.start()
