"""The studio's web server: the page, its assets and a read-only JSON API.

The standard library's threading HTTP server is enough for one developer's
browser on loopback, and keeps the plugin free of dependencies: the page is
plain HTML, CSS and JavaScript shipped in the package (no CDN, no build step).

Read-only: every request opens the store with ``mode=ro``. The server binds
127.0.0.1 unless told otherwise, answers only requests whose ``Host`` is that
address or ``localhost`` (a page on another site cannot reach it by DNS
rebinding), and sends a Content-Security-Policy that lets only its own script
run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from obshub_studio import queries
from obshub_studio.store import connect

__all__ = ["StudioServer"]

_ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _asset(name: str) -> bytes:
    return resources.files("obshub_studio").joinpath("static").joinpath(name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: StudioServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows the URL
        return

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        return host in self.server.allowed_hosts

    def do_GET(self) -> None:
        if not self._host_allowed():
            self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain")
            return
        parts = urlsplit(self.path)
        path = parts.path
        params = dict(parse_qsl(parts.query))
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if path in _ASSETS:
            name, content_type = _ASSETS[path]
            self._send(200, _asset(name), content_type)
            return
        if not path.startswith("/api/"):
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        try:
            conn = self.server.open()
        except sqlite3.Error as exc:
            self._json({"error": f"cannot open the store: {exc}"}, 503)
            return
        try:
            self._api(conn, path[len("/api/") :], params)
        except sqlite3.Error as exc:
            self._json({"error": f"store error: {exc}"}, 500)
        finally:
            conn.close()

    def _api(self, conn: sqlite3.Connection, route: str, params: dict[str, str]) -> None:
        head, _, rest = route.partition("/")
        rest = unquote(rest)
        if head == "traces" and not rest:
            self._json(queries.list_traces(conn, params))
        elif head == "traces":
            found = queries.trace_detail(conn, rest)
            if found is None:
                self._json({"error": "no such trace"}, 404)
            else:
                self._json(found)
        elif head == "sessions" and not rest:
            self._json(queries.list_sessions(conn, params))
        elif head == "sessions":
            self._json(queries.session_detail(conn, rest))
        elif head == "dashboard":
            try:
                days = max(1, min(3650, int(params.get("days", "30"))))
            except ValueError:
                days = 30
            self._json(queries.dashboard(conn, days))
        elif head == "changes":
            self._json({"changes": queries.changes(conn), "db": str(self.server.db)})
        else:
            self._json({"error": "not found"}, 404)


class StudioServer(ThreadingHTTPServer):
    """The studio on ``host:port`` (port 0: a free one) over the store at ``db``."""

    daemon_threads = True

    def __init__(self, db: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.db = Path(db)
        # Create (and migrate) the store first, so a new file opens as an empty studio.
        connect(self.db).close()
        super().__init__((host, port), _Handler)
        self.allowed_hosts = {"127.0.0.1", "localhost", "::1", host.lower()}
        self._thread: threading.Thread | None = None

    def open(self) -> sqlite3.Connection:
        return connect(self.db, readonly=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        return f"http://{shown}:{port}/"

    def start(self) -> str:
        """Serve on a background thread; returns the URL."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="obshub-studio", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
