"""A loopback OTLP/HTTP receiver for the benchmarks, run as its own process.

It listens on 127.0.0.1 only, accepts ``POST`` on any path (``/v1/traces``,
``/api/public/otel/v1/traces``, ``/api/public/scores`` ...), undoes gzip or
deflate, counts requests and bytes per path and, when ``opentelemetry-proto`` is
importable, decodes ``ExportTraceServiceRequest`` bodies (protobuf or OTLP/JSON)
to count spans. Every data request is answered ``200 {}``.

Every data request is timestamped with ``time.time_ns()`` when its body has
been read (``arrival``) and again when its spans have been counted
(``counted``); the benchmark runs on the same machine, so these wall-clock
times compare directly with the benchmark's own ``time.time_ns()``.

Control endpoints: ``GET /stats`` returns the counters as JSON,
``POST /reset`` zeroes them, and ``GET /wait?path=P&spans=N&timeout=S``
blocks until ``P`` holds at least ``N`` spans (or ``S`` seconds passed) and
returns the count with the arrival and counted times of the request that
brought the count to ``N`` -- a benchmark waits on it instead of polling.
``--stall`` accepts data requests and never answers them (control endpoints
still answer), to play a hung backend.

The first line on stdout is the port. The process stops by itself after
``--max-seconds`` (default 600), and with ``--exit-on-stdin-eof`` as soon as
its parent closes (or loses) the pipe on stdin, so it never outlives a run.

Run it alone::

    .venv/bin/python bench/receiver.py --port 4318

or from a benchmark with :class:`ReceiverProcess`.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
CONTROL_PATHS = ("/stats", "/reset")


def _load_decoder() -> Callable[[bytes, str], list[bytes]] | None:
    """A function returning the span ids in an OTLP trace body, if the proto is importable."""
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        return None

    def decode(body: bytes, content_type: str) -> list[bytes]:
        if "json" in content_type:
            # OTLP/JSON: ids are hex strings; read the structure directly.
            data = json.loads(body)
            ids: list[bytes] = []
            for rs in data.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    ids.extend(str(s.get("spanId", "")).encode() for s in ss.get("spans", []))
            return ids
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        return [
            span.trace_id + span.span_id
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    return decode


class Counters:
    """Thread-safe request, byte and span counters, overall and per path.

    Per path it also keeps, for every request that carried spans, the running
    span count after it and its arrival and counted times (a few numbers per
    request, not per span), so that :meth:`wait` can tell when the N-th span
    arrived even if the waiter asked after the fact.
    """

    def __init__(self, track_ids: bool) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._track_ids = track_ids
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.history: dict[str, tuple[list[int], list[int], list[int]]] = {}
            self.requests = 0
            self.bytes_wire = 0
            self.bytes_decoded = 0
            self.spans = 0
            self.scores = 0
            self.decode_errors = 0
            self.stalled = 0
            self.by_path: dict[str, dict[str, int]] = {}
            # span ids per path: the same span sent to two paths (two exporters of
            # one hub fanning out) is not a duplicate; sent twice to one path, it is
            self._ids: dict[str, set[bytes]] = {}
            self.duplicates = 0

    def add(
        self,
        path: str,
        wire: int,
        decoded: int,
        span_ids: list[bytes] | None,
        scores: int,
        error: bool,
        arrival_ns: int = 0,
    ) -> None:
        counted_ns = time.time_ns()
        with self._lock:
            self.requests += 1
            self.bytes_wire += wire
            self.bytes_decoded += decoded
            entry = self.by_path.setdefault(
                path, {"requests": 0, "bytes_wire": 0, "spans": 0, "scores": 0}
            )
            entry["requests"] += 1
            entry["bytes_wire"] += wire
            if span_ids is not None:
                self.spans += len(span_ids)
                entry["spans"] += len(span_ids)
                if self._track_ids:
                    ids = self._ids.setdefault(path, set())
                    before = len(ids)
                    ids.update(span_ids)
                    self.duplicates += len(span_ids) - (len(ids) - before)
                if span_ids:
                    totals, arrivals, counted = self.history.setdefault(path, ([], [], []))
                    totals.append(entry["spans"])
                    arrivals.append(arrival_ns or counted_ns)
                    counted.append(counted_ns)
                    self._changed.notify_all()
            self.scores += scores
            entry["scores"] += scores
            if error:
                self.decode_errors += 1

    def wait(self, path: str, spans: int, timeout: float) -> dict[str, Any]:
        """Block until ``path`` holds ``spans`` spans; when the request that got there arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                totals, arrivals, counted = self.history.get(path, ([], [], []))
                if spans <= 0:
                    got = totals[-1] if totals else 0
                    return {"ok": True, "spans": got, "arrival_ns": None, "counted_ns": None}
                if totals and totals[-1] >= spans:
                    i = bisect.bisect_left(totals, spans)
                    return {
                        "ok": True,
                        "spans": totals[-1],
                        "arrival_ns": arrivals[i],
                        "counted_ns": counted[i],
                        "requests": len(totals),
                    }
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {
                        "ok": False,
                        "spans": totals[-1] if totals else 0,
                        "arrival_ns": None,
                        "counted_ns": None,
                        "requests": len(totals),
                    }
                self._changed.wait(remaining)

    def add_stalled(self) -> None:
        with self._lock:
            self.stalled += 1

    def snapshot(self, decoding: bool) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "bytes_wire": self.bytes_wire,
                "bytes_decoded": self.bytes_decoded,
                "spans": self.spans,
                "unique_spans": sum(len(ids) for ids in self._ids.values())
                if self._track_ids
                else None,
                "duplicate_spans": self.duplicates if self._track_ids else None,
                "scores": self.scores,
                "decode_errors": self.decode_errors,
                "stalled": self.stalled,
                "decoding": decoding,
                "by_path": {k: dict(v) for k, v in self.by_path.items()},
            }


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, *, stall: bool, decode: bool, track_ids: bool) -> None:
        super().__init__((HOST, port), Handler)
        self.stall = stall
        self.decoder = _load_decoder() if decode else None
        self.counters = Counters(track_ids)
        self.release = threading.Event()  # set at shutdown: stalled handlers give up


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this, keep-alive answers wait ~40 ms on Nagle + delayed ACK.
    disable_nagle_algorithm = True
    server: ReceiverServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/stats":
            snap = self.server.counters.snapshot(self.server.decoder is not None)
            self._answer(200, json.dumps(snap).encode())
        elif path == "/wait":
            query = parse_qs(urlsplit(self.path).query)
            try:
                target = query["path"][0]
                spans = int(query["spans"][0])
                timeout = float(query.get("timeout", ["30"])[0])
            except (KeyError, IndexError, ValueError):
                self._answer(400, b'{"error": "need path, spans and timeout"}')
                return
            result = self.server.counters.wait(target, spans, min(timeout, 600.0))
            self._answer(200, json.dumps(result).encode())
        else:
            self._answer(200, b"{}")

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        body = self._read_body()
        arrival_ns = time.time_ns()
        if path == "/reset":
            self.server.counters.reset()
            self._answer(200, b"{}")
            return
        if self.server.stall:
            self.server.counters.add_stalled()
            self.close_connection = True
            self.server.release.wait()  # never answers while the server runs
            return
        wire = len(body)
        error = False
        span_ids: list[bytes] | None = None
        scores = 0
        try:
            encoding = self.headers.get("Content-Encoding", "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            content_type = self.headers.get("Content-Type", "")
            if path.endswith("/scores"):
                data = json.loads(body) if body else None
                scores = len(data) if isinstance(data, list) else 1
            elif self.server.decoder is not None and path.endswith("/traces"):
                span_ids = self.server.decoder(body, content_type)
        except Exception:
            error = True
        self.server.counters.add(path, wire, len(body), span_ids, scores, error, arrival_ns)
        self._answer(200, b"{}")


def serve(
    port: int,
    *,
    stall: bool,
    decode: bool,
    track_ids: bool,
    max_seconds: float,
    exit_on_stdin_eof: bool,
) -> None:
    server = ReceiverServer(port, stall=stall, decode=decode, track_ids=track_ids)
    print(server.server_address[1], flush=True)
    stop = threading.Event()
    if exit_on_stdin_eof:

        def watch_stdin() -> None:
            # A raw read: a daemon thread blocked in a buffered read aborts at exit.
            fd = sys.stdin.fileno()
            try:
                while os.read(fd, 4096):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    try:
        stop.wait(max_seconds)  # the bounded lifetime itself, not a synchronisation
    except KeyboardInterrupt:
        pass
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


class ReceiverProcess:
    """Start ``receiver.py`` as a child process; a context manager that always stops it."""

    def __init__(
        self,
        *,
        stall: bool = False,
        decode: bool = True,
        track_ids: bool = True,
        max_seconds: float = 600.0,
    ) -> None:
        args = [
            sys.executable,
            os.path.abspath(__file__),
            "--port",
            "0",
            "--max-seconds",
            str(max_seconds),
            "--exit-on-stdin-eof",
        ]
        if stall:
            args.append("--stall")
        if not decode:
            args.append("--no-decode")
        if not track_ids:
            args.append("--no-track-ids")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            self.port = int(line.strip())
        except Exception:
            self.close()
            raise
        self.url = f"http://{HOST}:{self.port}"
        self._wait_conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request(method, path, body=b"" if method == "POST" else None)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        result: dict[str, Any] = json.loads(data)
        return result

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/stats")

    def wait(self, path: str, spans: int, timeout: float = 30.0) -> dict[str, Any]:
        """Block until ``path`` holds ``spans`` spans (see ``GET /wait``); no polling."""
        return self.start_wait(path, spans, timeout).result()

    def start_wait(self, path: str, spans: int, timeout: float = 30.0) -> PendingWait:
        """Send ``GET /wait`` now, read its answer later with ``.result()``.

        Sent before the spans are recorded, the request costs the benchmark
        nothing while the spans travel; the answer carries the receiver's own
        arrival time of the request that brought the count to ``spans``.
        """
        conn = self._wait_conn
        self._wait_conn = None
        if conn is None:
            conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout + 30)
        query = f"/wait?path={path}&spans={spans}&timeout={timeout}"
        try:
            conn.request("GET", query)
        except OSError:
            conn.close()
            conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout + 30)
            conn.request("GET", query)
        return PendingWait(self, conn)

    def reset(self) -> None:
        self._request("POST", "/reset")

    def close(self) -> None:
        if self._wait_conn is not None:
            self._wait_conn.close()
            self._wait_conn = None
        proc = self.proc
        if proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # the child exits on stdin EOF
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PendingWait:
    """A ``GET /wait`` already sent; :meth:`result` reads the answer (once)."""

    def __init__(self, owner: ReceiverProcess, conn: http.client.HTTPConnection) -> None:
        self._owner = owner
        self._conn = conn

    def result(self) -> dict[str, Any]:
        conn = self._conn
        try:
            response = conn.getresponse()
            data = response.read()
        except Exception:
            conn.close()
            raise
        if self._owner._wait_conn is None and not response.will_close:
            self._owner._wait_conn = conn  # keep-alive: reuse for the next wait
        else:
            conn.close()
        result: dict[str, Any] = json.loads(data)
        return result


def wait_for_spans(
    receiver: ReceiverProcess, path: str, expected: int, timeout: float = 30.0
) -> int:
    """Wait (``GET /wait``, no polling) until ``path`` has ``expected`` spans; the count.

    The exporters' flush returns when the HTTP answer arrived, which the
    receiver sends after counting, so this normally returns at once.
    """
    result = receiver.wait(path, expected, timeout)
    return int(result["spans"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--stall", action="store_true", help="never answer data requests")
    parser.add_argument("--no-decode", action="store_true", help="do not decode OTLP bodies")
    parser.add_argument(
        "--no-track-ids", action="store_true", help="do not keep span ids to count duplicates"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="stop after this long (default 600)"
    )
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="stop when stdin is closed"
    )
    args = parser.parse_args(argv)
    try:
        serve(
            args.port,
            stall=args.stall,
            decode=not args.no_decode,
            track_ids=not args.no_track_ids,
            max_seconds=args.max_seconds,
            exit_on_stdin_eof=args.exit_on_stdin_eof,
        )
    except OSError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
