"""Shared plumbing for the local HTTP servers of the test kits.

`LocalServer` is a ``ThreadingHTTPServer`` on ``127.0.0.1`` run in a
background thread, with keep-alive, Nagle off, tracked connections (dropped
on `LocalServer.stop`), a condition variable to wait on, and a request flow
with fault injection (`Fault`: an error status with ``Retry-After``, a
connection reset, a delay). `obshub.testing.HttpReceiver`, the Langfuse
stand-in and the OTLP receiver build on it.

Plugin authors build a stand-in for their backend on it (subclass
`LocalServer`, answer in ``_answer``, record in ``_record``, and give each
``wait_for_*`` method the kit's one convention with ``_wait_for``). Decoding
OTLP bodies is in `obshub.testing.otlp`.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs

from obshub.testing._waiting import wait_for_count

__all__ = [
    "Fault",
    "FaultFunction",
    "IncomingRequest",
    "LocalHandler",
    "LocalServer",
    "Rejected",
    "Reply",
    "decompressed",
    "reason",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound="Fault")
_S = TypeVar("_S", bound="LocalServer")


# -- records ----------------------------------------------------------------------------


@attrs.frozen
class Fault:
    """What to do instead of (or before) answering one request.

    - ``status``: answer with this status (and ``retry_after`` as the
      ``Retry-After`` header);
    - ``reset``: close the connection without any response;
    - ``delay``: wait this many seconds first, then answer normally (or as
      ``status`` / ``reset`` say).
    """

    status: int | None = None
    retry_after: str | None = None
    reset: bool = False
    delay: float = 0.0

    @classmethod
    def error(cls: type[_F], status: int, *, retry_after: float | str | None = None) -> _F:
        """Answer with ``status`` (e.g. 503, or 429 with ``retry_after`` seconds)."""
        return cls(status=status, retry_after=None if retry_after is None else str(retry_after))

    @classmethod
    def connection_reset(cls: type[_F]) -> _F:
        """Read the request, then close the connection without a response."""
        return cls(reset=True)

    @classmethod
    def slow(cls: type[_F], seconds: float) -> _F:
        """Answer normally, but only after ``seconds``."""
        return cls(delay=seconds)


@attrs.frozen
class IncomingRequest:
    """A request as a fault function sees it (``headers`` with lowercase names, raw body)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


#: Decides a fault per request (None: answer normally).
FaultFunction = Callable[[IncomingRequest], "Fault | None"]


@attrs.frozen
class Reply:
    """An answer to send: ``headers`` go before ``Content-Length``.

    ``spans`` and ``content`` (the decompressed request body) are for the
    server's record of the request, not sent.
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    spans: int = 0
    content: bytes = b""


class Rejected(Exception):
    """A request answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def reason(status: int) -> str:
    """The standard phrase of an HTTP status (``status N`` for an unknown one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status {status}"


# -- bodies ---------------------------------------------------------------------------


def decompressed(incoming: IncomingRequest, *, unsupported_status: int = 415) -> bytes:
    """The body, gunzipped if ``Content-Encoding`` says so.

    Raises `Rejected`: 400 for a broken gzip body, ``unsupported_status`` for
    another encoding.
    """
    encoding = incoming.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return incoming.body
    if encoding != "gzip":
        raise Rejected(unsupported_status, f"unsupported content encoding {encoding!r}")
    try:
        return gzip.decompress(incoming.body)
    except (OSError, EOFError):
        raise Rejected(400, "invalid gzip body") from None


# -- the server -------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: LocalServer) -> None:
        self.owner = owner
        super().__init__((owner.host, 0), LocalHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-request is normal in fault tests; the
        # handler records its own failures, so nothing is printed.
        return


class LocalHandler(BaseHTTPRequestHandler):
    """Hands each request to its `LocalServer` (``_serve``)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the exporters' pools expect
    # Without it, keep-alive answers wait ~40 ms for a delayed ACK (Nagle).
    disable_nagle_algorithm = True
    # An idle keep-alive connection is dropped after this many seconds.
    timeout = 30
    server: _Server

    def version_string(self) -> str:
        return self.server.owner.server_version or super().version_string()

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the servers record requests instead of printing them."""

    def _handle(self) -> None:
        owner = self.server.owner
        if self.command not in owner.methods:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        owner._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = _handle

    def read_body(self) -> bytes:
        """The body, read by ``Content-Length`` (chunked uploads are not supported)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def lowercase_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def send(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        trailing: Mapping[str, str] | None = None,
    ) -> None:
        """Answer: ``headers``, ``Content-Length``, then ``trailing`` headers, and ``body``."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (trailing or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reset(self) -> None:
        """Close the connection with a TCP reset instead of answering."""
        # SO_LINGER 0: the close sends a TCP reset, like a crashed proxy.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


class LocalServer:
    """A local HTTP server run in a background thread; subclasses answer requests.

    The default `_serve` reads the request, applies a `Fault` (queued ones
    from `_pop_fault`, else ``fault_function``), and answers with `_answer`
    (500 from `_internal_error` if that raises), recording each request
    with `_record` before answering.
    """

    #: The methods served; others are answered 501.
    methods: Collection[str] = ("GET", "PUT", "PATCH", "POST", "HEAD", "DELETE")
    #: The ``Server`` header (None: ``http.server``'s).
    server_version: str | None = None
    thread_name = "obshub-local-server"
    poll_interval = 0.01
    #: Named in the error of a URL asked for while stopped.
    kind = "receiver"

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        #: Called for each request that no queued fault claimed.
        self.fault_function: FaultFunction | None = None
        self._cond = threading.Condition()
        self._errors: list[str] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self: _S) -> _S:
        """Start serving in a background thread (idempotent)."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},
                name=self.thread_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.kind} is not running; call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- state ----------------------------------------------------------------------------

    def _wait_for(
        self, items: Callable[[], Sequence[_T]], count: int, timeout: float, what: str
    ) -> list[_T]:
        """Wait until ``items()`` (called holding the condition) has ``count`` entries.

        Returns them all; raises `TimeoutError` saying how many ``what`` arrived.
        The ``wait_for_*`` methods of every receiver are built on it.
        """
        return wait_for_count(items, count, condition=self._cond, timeout=timeout, what=what)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._cond:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _server_error(self, exc: BaseException) -> None:
        with self._cond:
            self._errors.append(f"{type(exc).__name__}: {exc}")

    def _pop_fault(self, incoming: IncomingRequest) -> Fault | None:
        """The next queued fault for ``incoming`` (called holding the condition)."""
        return None

    def _next_fault(self, incoming: IncomingRequest) -> Fault | None:
        with self._cond:
            fault = self._pop_fault(incoming)
        if fault is not None:
            return fault
        function = self.fault_function
        return function(incoming) if function is not None else None

    # -- request handling -----------------------------------------------------------------

    def _serve(self, handler: LocalHandler) -> None:
        received_at = time.monotonic()
        body = handler.read_body()
        incoming = IncomingRequest(
            method=handler.command,
            path=urlsplit(handler.path).path,
            headers=handler.lowercase_headers(),
            body=body,
        )
        fault = self._next_fault(incoming)
        if fault is not None and fault.delay and self._stopping.wait(fault.delay):
            handler.reset()
            return
        if fault is not None and fault.reset:
            self._record(incoming, None, fault, received_at)
            handler.reset()
            return
        try:
            reply = self._answer(incoming, fault)
        except Exception as exc:
            self._server_error(exc)
            reply = self._internal_error()
        trailing = {}
        if fault is not None and fault.status is not None and fault.retry_after:
            trailing["Retry-After"] = fault.retry_after
        # Recorded before answering, so a client that saw the answer finds it logged.
        self._record(incoming, reply, fault, received_at)
        handler.send(reply.status, reply.body, reply.headers, trailing)

    def _answer(self, incoming: IncomingRequest, fault: Fault | None) -> Reply:
        return Reply(200)

    def _internal_error(self) -> Reply:
        return Reply(500)

    def _record(
        self,
        incoming: IncomingRequest,
        reply: Reply | None,
        fault: Fault | None,
        received_at: float,
    ) -> None:
        """Keep a record of ``incoming`` (``reply`` None: the connection was reset)."""
