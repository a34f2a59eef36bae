"""`HttpReceiver`: a local HTTP server that records requests and answers as told."""

from __future__ import annotations

import json
import socket
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from obshub.testing._waiting import DEFAULT_TIMEOUT
from obshub.testing.server import LocalHandler, LocalServer

__all__ = ["HttpReceiver", "ReceivedRequest", "unreachable_url"]


def unreachable_url(path: str = "/") -> str:
    """``http://127.0.0.1:<port><path>`` where nothing listens: connections are refused.

    The port was free a moment ago; another process could take it, which on
    a test machine is rare.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@attrs.frozen
class ReceivedRequest:
    """One request an `HttpReceiver` answered (header names in lowercase)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@attrs.frozen
class _Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]


class HttpReceiver(LocalServer):
    """A local HTTP server on ``127.0.0.1`` that records each request and answers it.

    It answers 200 with an empty body unless told otherwise with
    `respond`. Use it as a context manager (or `start` /
    `stop`); `url` is its base URL::

        with HttpReceiver() as receiver:
            receiver.respond(503, headers={"Retry-After": "1"})
            exporter = WebhookExporter(url=f"{receiver.url}/hook")
            ...
            (request,) = receiver.wait_for_requests(1)
            assert request.json()["events"]

    Bodies are read by ``Content-Length`` (chunked uploads are not supported).
    """

    thread_name = "obshub-http-receiver"

    def __init__(self) -> None:
        super().__init__()
        self._requests: list[ReceivedRequest] = []
        self._replies: deque[_Reply] = deque()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._base_url()

    def respond(
        self,
        status: int,
        *,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (then 200 again)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._cond:
            self._replies.extend([_Reply(status, data, dict(headers or {}))] * times)

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        """The requests received so far (to ``path`` only, if given), oldest first."""
        with self._cond:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for_requests(
        self, count: int, path: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[ReceivedRequest]:
        """Block until ``count`` requests (to ``path``, if given) arrived; return them all.

        Raises `TimeoutError` saying how many arrived if they do not within ``timeout``.
        """
        return self._wait_for(
            lambda: [r for r in self._requests if path is None or r.path == path],
            count,
            timeout,
            "requests" if path is None else f"requests to {path}",
        )

    def clear(self) -> None:
        """Forget the requests received and any queued responses."""
        with self._cond:
            self._requests.clear()
            self._replies.clear()

    def _serve(self, handler: LocalHandler) -> None:
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers=handler.lowercase_headers(),
            body=handler.read_body(),
            status=0,
        )
        with self._cond:
            reply = self._replies.popleft() if self._replies else _Reply(200, b"", {})
            self._requests.append(attrs.evolve(request, status=reply.status))
            self._cond.notify_all()
        handler.send(reply.status, reply.body, reply.headers)
