"""A local OTLP/HTTP receiver for tests: `OtlpReceiver`.

It takes ``POST /v1/traces`` as an OpenTelemetry Collector's ``otlp``
receiver does, on ``127.0.0.1``: protobuf or OTLP/JSON bodies
(``Content-Type: application/x-protobuf`` or ``application/json``),
optionally gzipped, decoded with the official ``opentelemetry-proto``
messages. It answers in the encoding of the request: an
``ExportTraceServiceResponse`` on success, a ``google.rpc.Status`` on failure.

Faults can be injected to test retries and error handling::

    from obshub_otlp import OtlpExporter
    from obshub_otlp.testing import Fault, OtlpReceiver

    with OtlpReceiver() as receiver:
        receiver.inject(Fault.error(503), Fault.connection_reset())
        hub = obshub.Hub(exporters=[OtlpExporter(
            endpoint=receiver.url, retry={"initial_backoff": 0.01})])
        with hub.span("agent", type="agent_run"):
            ...
        assert hub.flush(5)
        receiver.wait_for_spans(1)
        assert receiver.span("agent").attributes["gen_ai.operation.name"] == "invoke_agent"

Every accessor is thread-safe and returns a copy; the ``wait_for_*`` methods
block on a condition variable instead of polling.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from obshub.testing import DEFAULT_TIMEOUT, server
from obshub.testing.otlp import HTTP_JSON, HTTP_PROTOBUF, decode_traces
from obshub.testing.otlp import attribute_map as _attributes
from obshub.testing.server import (
    IncomingRequest,
    LocalServer,
    Reply,
    decompressed,
    reason,
)
from obshub.testing.server import (
    Rejected as _Rejected,
)

__all__ = [
    "DEFAULT_REDACTED_HEADERS",
    "GRPC_CODES",
    "TRACES_PATH",
    "Fault",
    "FaultFunction",
    "IncomingRequest",
    "OtlpReceiver",
    "ReceivedSpan",
    "RecordedRequest",
    "status_body",
]

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Headers whose values are recorded as ``***`` unless told otherwise.
DEFAULT_REDACTED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}
)
#: The ``google.rpc.Code`` of an error body, per HTTP status (as the Collector maps them).
GRPC_CODES: Mapping[int, int] = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,
    429: 8,
    500: 13,  # INTERNAL
    502: 14,  # UNAVAILABLE
    503: 14,
    504: 4,  # DEADLINE_EXCEEDED
}
_UNKNOWN_CODE = 2
_ID_SIZES = {"trace_id": 16, "span_id": 8}


# -- records ----------------------------------------------------------------------------


@attrs.frozen
class Fault(server.Fault):
    """What to do instead of (or before) answering one request normally.

    - ``status``: answer with this status (a ``google.rpc.Status`` body saying
      ``message``; ``retry_after`` as the ``Retry-After`` header);
    - ``reset``: close the connection without any response;
    - ``delay``: wait this many seconds first, then answer (normally, or as
      the other fields say);
    - ``rejected``: accept the request but answer 200 with a partial
      success rejecting that many spans (the last ones; the others are
      stored) and ``message`` as its ``error_message``.
    """

    message: str | None = None
    rejected: int | None = None

    @classmethod
    def error(
        cls, status: int, *, retry_after: float | str | None = None, message: str | None = None
    ) -> Fault:
        """Answer with ``status`` (e.g. 503, or 429 with ``retry_after`` seconds)."""
        after = None if retry_after is None else str(retry_after)
        return cls(status=status, retry_after=after, message=message)

    @classmethod
    def partial_success(cls, rejected: int, message: str = "") -> Fault:
        """Answer 200 with ``partial_success`` (``rejected`` 0 and a message: a warning)."""
        return cls(rejected=rejected, message=message)


#: Decides a fault per request (None: answer normally).
FaultFunction = Callable[[IncomingRequest], "Fault | None"]


@attrs.frozen
class RecordedRequest:
    """One request the receiver got.

    ``headers`` have lowercase names, the redacted ones' values replaced by
    ``***`` (a scheme such as ``Bearer`` is kept); ``body`` is as received
    (compressed, if it was) and ``content`` the decompressed bytes (as
    received when the request was refused before its body was read);
    ``status`` is None when the connection was reset instead of answered;
    ``spans`` is the number of spans stored from it; ``received_at`` is a
    ``time.monotonic()`` reading.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    content: bytes
    status: int | None
    spans: int
    fault: Fault | None
    received_at: float

    @property
    def body_size(self) -> int:
        """Bytes of the body as received."""
        return len(self.body)

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    def json(self) -> Any:
        """The decompressed body parsed as JSON (for OTLP/JSON requests)."""
        return json.loads(self.content)


@attrs.frozen
class ReceivedSpan:
    """One span as the receiver decoded it.

    Ids are lowercase hex (``parent_span_id`` None for a root); times are
    nanoseconds since the epoch; ``attributes`` and ``resource`` map keys to
    plain Python values (lists for arrays, dicts for key-value lists);
    ``events`` are dicts with ``name``, ``time_unix_nano`` and
    ``attributes``; ``protocol`` is how the span came in
    (``http/protobuf`` or ``http/json``).
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Mapping[str, Any]
    status_code: int
    status_message: str
    events: tuple[Mapping[str, Any], ...]
    resource: Mapping[str, Any]
    scope_name: str
    scope_version: str
    protocol: str


# -- decoding ---------------------------------------------------------------------------


def _spans_of(request: ExportTraceServiceRequest, protocol: str) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                for field, size in _ID_SIZES.items():
                    if len(getattr(span, field)) != size:
                        raise _Rejected(400, f"span {span.name!r}: {field} must be {size} bytes")
                if span.parent_span_id and len(span.parent_span_id) != _ID_SIZES["span_id"]:
                    raise _Rejected(400, f"span {span.name!r}: parent_span_id must be 8 bytes")
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=span.kind,
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        status_code=span.status.code,
                        status_message=span.status.message,
                        events=tuple(
                            {
                                "name": event.name,
                                "time_unix_nano": event.time_unix_nano,
                                "attributes": _attributes(event.attributes),
                            }
                            for event in span.events
                        ),
                        resource=dict(resource),
                        scope_name=scope_spans.scope.name,
                        scope_version=scope_spans.scope.version,
                        protocol=protocol,
                    )
                )
    return spans


# -- encoding answers -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_body(code: int, message: str, protocol: str) -> bytes:
    """A ``google.rpc.Status`` with ``code`` and ``message``, in ``protocol``'s encoding.

    The protobuf form is written by hand (field 1 ``code``, field 2
    ``message``): the message class lives in googleapis-common-protos, which
    this receiver does not need otherwise; the tests check the bytes against it.
    """
    if protocol == HTTP_JSON:
        return json.dumps({"code": code, "message": message}).encode("utf-8")
    text = message.encode("utf-8")
    out = b""
    if code:
        out += b"\x08" + _varint(code)
    if text:
        out += b"\x12" + _varint(len(text)) + text
    return out


def _success_body(protocol: str, rejected: int | None, message: str) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected is not None:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if protocol == HTTP_JSON:
        text: str = json_format.MessageToJson(response, indent=None)
        return text.encode("utf-8")
    data: bytes = response.SerializeToString()
    return data


# -- the server -------------------------------------------------------------------------


class OtlpReceiver(LocalServer):
    """A local OTLP/HTTP receiver on ``127.0.0.1`` that records what it receives.

    Use it as a context manager (or call `start` / `stop`);
    ``url`` is the endpoint to give an exporter. Options:

    - ``max_body_size``: POST bodies larger than this (bytes as received)
      are answered 413, as a proxy would;
    - ``required_headers``: headers a request must carry with exactly these
      values, else 401 (as a collector with an authenticator); the expected
      values are never echoed;
    - ``redact_headers``: header names whose values are recorded as ``***``
      (default `DEFAULT_REDACTED_HEADERS`; ``()`` keeps every value).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        path: str = TRACES_PATH,
        max_body_size: int | None = None,
        required_headers: Mapping[str, str] | None = None,
        redact_headers: Iterable[str] = DEFAULT_REDACTED_HEADERS,
    ) -> None:
        super().__init__(host=host)
        self.path = path
        self.max_body_size = max_body_size
        self.redact_headers = frozenset(name.lower() for name in redact_headers)
        self._required = {k.lower(): v for k, v in (required_headers or {}).items()}
        self._faults: list[Fault] = []
        self._spans: list[ReceivedSpan] = []
        self._requests: list[RecordedRequest] = []

    methods = ("GET", "PUT", "POST")
    server_version = "OtlpReceiver/1"
    thread_name = "otlp-receiver"

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"<OtlpReceiver {state} spans={len(self._spans)}>"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (for ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return self._base_url()

    @property
    def url(self) -> str:
        """The traces endpoint, ``http://127.0.0.1:<port>/v1/traces``."""
        return f"{self.base_url}{self.path}"

    # -- faults ---------------------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests, one per request."""
        with self._cond:
            self._faults.extend(faults)

    def _pop_fault(self, incoming: IncomingRequest) -> Fault | None:
        return self._faults.pop(0) if self._faults else None

    # -- accessors ------------------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        """Every span received, in arrival order (a resent span appears again)."""
        with self._cond:
            return list(self._spans)

    def span(self, name: str) -> ReceivedSpan:
        """The span called ``name`` (KeyError if none, ValueError if several)."""
        found = [s for s in self.spans() if s.name == name]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise ValueError(f"{len(found)} spans are called {name!r}")
        return found[0]

    def requests(self) -> list[RecordedRequest]:
        """The requests received, oldest first."""
        with self._cond:
            return list(self._requests)

    def statuses(self) -> list[int | None]:
        """The status of each request answered (None for a reset), oldest first."""
        return [r.status for r in self.requests()]

    def server_errors(self) -> list[str]:
        """Exceptions raised inside the receiver itself (answered with 500)."""
        with self._cond:
            return list(self._errors)

    def clear(self) -> None:
        """Forget everything received, and any queued faults."""
        with self._cond:
            self._faults.clear()
            self._spans.clear()
            self._requests.clear()
            self._errors.clear()

    def wait_for_spans(self, count: int, *, timeout: float = DEFAULT_TIMEOUT) -> list[ReceivedSpan]:
        """Block until ``count`` spans arrived; return them all, in arrival order.

        Raises `TimeoutError` saying how many arrived if not within ``timeout``.
        """
        return self._wait_for(lambda: self._spans, count, timeout, "spans")

    def wait_for_requests(
        self, count: int, path: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[RecordedRequest]:
        """Block until ``count`` requests (to ``path``, if given) were answered or reset.

        Returns them all, oldest first; raises `TimeoutError` saying how many
        arrived if not within ``timeout``.
        """
        return self._wait_for(
            lambda: [r for r in self._requests if path is None or r.path == path],
            count,
            timeout,
            "requests" if path is None else f"requests to {path}",
        )

    # -- request handling -----------------------------------------------------------------

    def _redacted(self, headers: Mapping[str, str]) -> dict[str, str]:
        out = dict(headers)
        for name in self.redact_headers & out.keys():
            scheme, _, token = out[name].partition(" ")
            out[name] = f"{scheme} ***" if token else "***"
        return out

    def _record(
        self,
        incoming: IncomingRequest,
        reply: Reply | None,
        fault: server.Fault | None,
        received_at: float,
    ) -> None:
        record = RecordedRequest(
            method=incoming.method,
            path=incoming.path,
            headers=self._redacted(incoming.headers),
            body=incoming.body,
            content=b"" if reply is None else reply.content,
            status=None if reply is None else reply.status,
            spans=0 if reply is None else reply.spans,
            fault=fault,  # type: ignore[arg-type]
            received_at=received_at,
        )
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()

    def _internal_error(self) -> Reply:
        body = status_body(13, "receiver error", HTTP_JSON)
        return Reply(500, body, {"Content-Type": JSON})

    def _answer(self, incoming: IncomingRequest, fault: server.Fault | None) -> Reply:
        media = incoming.headers.get("content-type", "").partition(";")[0].strip().lower()
        protocol = HTTP_JSON if media == JSON else HTTP_PROTOBUF
        answer_type = {"Content-Type": JSON if protocol == HTTP_JSON else PROTOBUF}
        message: str | None = getattr(fault, "message", None)
        content = incoming.body
        try:
            if incoming.path != self.path:
                raise _Rejected(404, f"no receiver at {incoming.path}")
            if incoming.method != "POST":
                raise _Rejected(405, f"{incoming.method} not allowed; OTLP/HTTP takes POST")
            if fault is not None and fault.status is not None:
                raise _Rejected(fault.status, message or reason(fault.status))
            if self.max_body_size is not None and len(incoming.body) > self.max_body_size:
                raise _Rejected(413, f"request body larger than {self.max_body_size} bytes")
            for name, expected in self._required.items():
                if incoming.headers.get(name) != expected:
                    raise _Rejected(401, f"missing or wrong {name} header")
            if media not in (PROTOBUF, JSON):
                raise _Rejected(415, f"unsupported content type {media!r}")
            content = decompressed(incoming)
            spans = _spans_of(decode_traces(content, protocol), protocol)
        except _Rejected as rejected:
            code = GRPC_CODES.get(rejected.status, _UNKNOWN_CODE)
            body = status_body(code, rejected.message, protocol)
            return Reply(rejected.status, body, answer_type, content=content)
        rejected_count: int | None = getattr(fault, "rejected", None)
        kept = spans
        if rejected_count:
            kept = spans[: max(0, len(spans) - rejected_count)]
        with self._cond:
            self._spans.extend(kept)
            self._cond.notify_all()
        body = _success_body(protocol, rejected_count, message or "")
        return Reply(200, body, answer_type, spans=len(kept), content=content)
