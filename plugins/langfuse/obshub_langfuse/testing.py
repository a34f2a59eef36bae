"""A local Langfuse stand-in for tests: `LangfuseStandIn`.

It speaks the parts of Langfuse's API an exporter uses, on ``127.0.0.1``:

- ``POST /api/public/otel/v1/traces``: OTLP/HTTP (protobuf or JSON, optionally
  gzipped), with Basic auth and the ``x-langfuse-ingestion-version`` check,
  decoded with the official ``opentelemetry-proto`` messages. Spans become
  `Observation` records derived the way Langfuse reads span attributes,
  grouped into `Trace` records.
- ``POST /api/public/scores``: stores `ScoreRecord` (upsert by id).
- ``GET /api/public/projects``: 200 for valid keys (what ``check()`` uses).
- ``GET /api/public/health``: 200 without auth.

Faults can be injected per path, to test retries and error handling::

    from obshub_langfuse.testing import Fault, LangfuseStandIn

    with LangfuseStandIn() as server:
        server.inject("traces", Fault.error(503), Fault.connection_reset())
        hub = obshub.Hub(exporters=[LangfuseExporter(
            public_key=server.public_key, secret_key=server.secret_key,
            base_url=server.url, retry={"initial_backoff": 0.01})])
        with hub.span("agent", type="agent_run"):
            ...
        hub.flush(5)
        assert server.wait_for_observations(1, timeout=5)
        assert server.observations()[0].type == "AGENT"

Every accessor is thread-safe and returns a copy; the ``wait_for_*`` methods
block on a condition variable instead of polling.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from obshub.testing_server import (
    Fault,
    FaultFunction,
    IncomingRequest,
    LocalServer,
    Reply,
    decompressed,
    hex_ids_to_base64,
)
from obshub.testing_server import (
    Rejected as _Rejected,
)
from obshub.testing_server import attribute_map as _attributes
from obshub_langfuse._ingestion import (
    Observation,
    Trace,
    TraceEvent,
    TraceRecord,
    assemble_trace,
    derive_observation,
    merge_trace,
    trace_event,
)

__all__ = [
    "HEALTH_PATH",
    "PROJECTS_PATH",
    "SCORES_PATH",
    "TRACES_PATH",
    "Fault",
    "FaultFunction",
    "IncomingRequest",
    "LangfuseStandIn",
    "Observation",
    "RecordedRequest",
    "ScoreRecord",
    "Trace",
]

TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"
PROJECTS_PATH = "/api/public/projects"
HEALTH_PATH = "/api/public/health"
#: Short names accepted wherever a path is expected.
PATH_ALIASES: Mapping[str, str] = {
    "traces": TRACES_PATH,
    "scores": SCORES_PATH,
    "projects": PROJECTS_PATH,
    "health": HEALTH_PATH,
}
#: The highest ``x-langfuse-ingestion-version`` Langfuse accepts.
MAX_INGESTION_VERSION = 4

OBSERVATION_TYPES = frozenset(
    {
        "SPAN",
        "GENERATION",
        "EVENT",
        "EMBEDDING",
        "AGENT",
        "TOOL",
        "CHAIN",
        "RETRIEVER",
        "GUARDRAIL",
        "EVALUATOR",
    }
)
_UNAUTHORISED = "Invalid credentials. Confirm that you've configured the correct host."


# -- records ----------------------------------------------------------------------------


@attrs.frozen
class RecordedRequest:
    """One request the stand-in received.

    ``headers`` have lowercase names and the ``authorization`` value redacted;
    ``body`` is as received (compressed, if it was) and ``body_size`` its
    length; ``status``
    is None when the connection was closed without an answer; ``spans`` is
    the number of spans in an accepted traces request; ``received_at`` is a
    ``time.monotonic()`` reading.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    body_size: int
    status: int | None
    spans: int
    fault: Fault | None
    received_at: float


@attrs.frozen
class ScoreRecord:
    """A score as stored by ``POST /api/public/scores``."""

    id: str
    name: str
    value: float | str
    data_type: str
    trace_id: str | None
    observation_id: str | None
    session_id: str | None
    comment: str | None
    metadata: Mapping[str, Any] | None
    environment: str | None


# -- decoding -----------------------------------------------------------------------------


def _decode_traces(content_type: str, body: bytes) -> Any:
    request = ExportTraceServiceRequest()
    if content_type == "application/x-protobuf":
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise _Rejected(400, "invalid protobuf body") from None
    else:
        try:
            json_format.ParseDict(hex_ids_to_base64(json.loads(body)), request)
        except (ValueError, json_format.ParseError) as exc:
            raise _Rejected(400, f"invalid OTLP/JSON body: {exc}") from None
    return request


class LangfuseStandIn(LocalServer):
    """A local Langfuse: an HTTP server on ``127.0.0.1`` that records what it receives.

    Use it as a context manager (or call `start` / `stop`).
    ``url`` is the ``base_url`` to give an exporter; ``public_key`` and
    ``secret_key`` are the only keys it accepts. ``max_body_size`` (bytes as
    received) makes larger POST bodies fail with 413, as a proxy would.
    """

    def __init__(
        self,
        *,
        public_key: str = "pk-lf-stand-in",
        secret_key: str = "sk-lf-stand-in",
        max_body_size: int | None = None,
        project_name: str = "obshub stand-in",
        host: str = "127.0.0.1",
    ) -> None:
        self.public_key = public_key
        self.secret_key = secret_key
        self.max_body_size = max_body_size
        self.project_name = project_name
        super().__init__(host=host)
        self._faults: dict[str, list[Fault]] = {}
        self._observations: dict[str, Observation] = {}
        # Langfuse's legacy path: the trace events of each trace, the record merged
        # from them, and the trace ids it has seen (its Redis cache).
        self._trace_events: dict[str, list[TraceEvent]] = {}
        self._trace_records: dict[str, TraceRecord] = {}
        self._seen_traces: set[str] = set()
        self._scores: dict[str, ScoreRecord] = {}
        self._requests: list[RecordedRequest] = []

    methods = ("GET", "POST")
    server_version = "LangfuseStandIn/1"
    thread_name = "langfuse-stand-in"
    poll_interval = 0.05
    kind = "stand-in"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the ``base_url`` for an exporter."""
        return self._base_url()

    # -- faults -----------------------------------------------------------------------

    def inject(self, path: str, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests to ``path``, one per request.

        ``path`` is a full path or one of ``traces``, ``scores``,
        ``projects``, ``health``.
        """
        key = PATH_ALIASES.get(path, path)
        with self._cond:
            self._faults.setdefault(key, []).extend(faults)

    def _pop_fault(self, incoming: IncomingRequest) -> Fault | None:
        queue = self._faults.get(incoming.path)
        return queue.pop(0) if queue else None

    # -- accessors -----------------------------------------------------------------------

    def observations(self) -> list[Observation]:
        """Every observation received (one per span id; a resend replaces), in arrival order."""
        with self._cond:
            return list(self._observations.values())

    def observation(self, name: str) -> Observation:
        """The observation called ``name`` (KeyError if none, ValueError if several)."""
        found = [o for o in self.observations() if o.name == name]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise ValueError(f"{len(found)} observations are called {name!r}")
        return found[0]

    def traces(self) -> list[Trace]:
        """The traces as Langfuse's legacy path stored them, with their observations."""
        grouped: dict[str, list[Observation]] = {}
        for observation in self.observations():
            grouped.setdefault(observation.trace_id, []).append(observation)
        with self._cond:
            records = dict(self._trace_records)
        return [
            assemble_trace(records.get(trace_id), trace_id, group)
            for trace_id, group in grouped.items()
        ]

    def trace(self, trace_id: str) -> Trace:
        """The trace with ``trace_id`` (KeyError if none of its spans arrived)."""
        for trace in self.traces():
            if trace.id == trace_id:
                return trace
        raise KeyError(trace_id)

    def scores(self) -> list[ScoreRecord]:
        """Every score received (one per id; a resend replaces)."""
        with self._cond:
            return list(self._scores.values())

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The requests received, oldest first (only those to ``path`` if given)."""
        key = PATH_ALIASES.get(path, path) if path is not None else None
        with self._cond:
            return [r for r in self._requests if key is None or r.path == key]

    def server_errors(self) -> list[str]:
        """Exceptions raised inside the stand-in itself (answered with 500)."""
        with self._cond:
            return list(self._errors)

    def clear(self) -> None:
        """Forget everything received, and any queued faults."""
        with self._cond:
            self._faults.clear()
            self._observations.clear()
            self._trace_events.clear()
            self._trace_records.clear()
            self._seen_traces.clear()
            self._scores.clear()
            self._requests.clear()
            self._errors.clear()

    def wait_for_observations(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` observations arrived; False on timeout."""
        return self._wait(lambda: len(self._observations) >= count, timeout)

    def wait_for_scores(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` scores arrived; False on timeout."""
        return self._wait(lambda: len(self._scores) >= count, timeout)

    def wait_for_requests(self, count: int, path: str | None = None, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests (to ``path``, if given) were answered."""
        key = PATH_ALIASES.get(path, path) if path is not None else None
        return self._wait(
            lambda: sum(1 for r in self._requests if key is None or r.path == key) >= count,
            timeout,
        )

    # -- request handling ------------------------------------------------------------------

    def _record(
        self,
        incoming: IncomingRequest,
        reply: Reply | None,
        fault: Fault | None,
        received_at: float,
    ) -> None:
        headers = dict(incoming.headers)
        if "authorization" in headers:
            scheme = headers["authorization"].partition(" ")[0]
            headers["authorization"] = f"{scheme} ***"
        record = RecordedRequest(
            method=incoming.method,
            path=incoming.path,
            headers=headers,
            body=incoming.body,
            body_size=len(incoming.body),
            status=None if reply is None else reply.status,
            spans=0 if reply is None else reply.spans,
            fault=fault,
            received_at=received_at,
        )
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()

    @staticmethod
    def _json_reply(status: int, payload: Any, spans: int = 0) -> Reply:
        data = json.dumps(payload).encode("utf-8")
        return Reply(status, data, {"Content-Type": "application/json"}, spans=spans)

    def _internal_error(self) -> Reply:
        return self._json_reply(500, {"message": "stand-in error"})

    def _answer(self, incoming: IncomingRequest, fault: Fault | None) -> Reply:
        if fault is not None and fault.status is not None:
            return self._json_reply(fault.status, {"message": "injected fault"})
        return self._json_reply(*self._dispatch(incoming))

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.public_key}:{self.secret_key}"

    def _dispatch(self, incoming: IncomingRequest) -> tuple[int, Any, int]:
        routes: Mapping[tuple[str, str], Callable[[IncomingRequest], tuple[Any, int]]] = {
            ("POST", TRACES_PATH): self._ingest_traces,
            ("POST", SCORES_PATH): self._ingest_score,
            ("GET", PROJECTS_PATH): self._projects,
        }
        if incoming.path == HEALTH_PATH and incoming.method == "GET":
            return 200, {"status": "OK", "version": "stand-in"}, 0
        handler = routes.get((incoming.method, incoming.path))
        if handler is None:
            known = {path for _, path in routes} | {HEALTH_PATH}
            status = 405 if incoming.path in known else 404
            return status, {"message": "not found" if status == 404 else "method not allowed"}, 0
        if (
            self.max_body_size is not None
            and incoming.method == "POST"
            and len(incoming.body) > self.max_body_size
        ):
            return 413, {"message": "payload too large"}, 0
        if not self._authorised(incoming.headers):
            return 401, {"message": _UNAUTHORISED}, 0
        try:
            payload, spans = handler(incoming)
        except _Rejected as rejected:
            return rejected.status, {"message": rejected.message}, 0
        return 200, payload, spans

    def _ingest_traces(self, incoming: IncomingRequest) -> tuple[Any, int]:
        headers = incoming.headers
        version = headers.get("x-langfuse-ingestion-version", "").strip()
        if version and (not version.isdigit() or int(version) > MAX_INGESTION_VERSION):
            raise _Rejected(400, f"unsupported x-langfuse-ingestion-version {version!r}")
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type not in ("application/x-protobuf", "application/json"):
            raise _Rejected(400, f"unsupported content type {content_type!r}")
        body = decompressed(incoming, unsupported_status=400)
        request = _decode_traces(content_type, body)
        derived: list[Observation] = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if len(span.trace_id) != 16 or len(span.span_id) != 8:
                        raise _Rejected(400, "every span needs a traceId and a spanId")
                    derived.append(derive_observation(span, resource, scope_spans.scope))
        with self._cond:
            self._ingest_trace_events(request)
            for observation in derived:
                self._observations[observation.id] = observation
            self._cond.notify_all()
        return {}, len(derived)

    def _ingest_trace_events(self, request: Any) -> None:
        # Langfuse's legacy path: each span may make a trace event; every trace
        # touched is merged again from all its events over its stored record.
        touched: set[str] = set()
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    event = trace_event(span, resource, scope_spans.scope, self._seen_traces)
                    if event is not None:
                        trace_id = span.trace_id.hex()
                        self._trace_events.setdefault(trace_id, []).append(event)
                        touched.add(trace_id)
        for trace_id in touched:
            self._trace_records[trace_id] = merge_trace(
                self._trace_records.get(trace_id), self._trace_events[trace_id]
            )

    def _ingest_score(self, incoming: IncomingRequest) -> tuple[Any, int]:
        content_type = incoming.headers.get("content-type", "").partition(";")[0].strip()
        if content_type.lower() != "application/json":
            raise _Rejected(400, f"unsupported content type {content_type!r}")
        if incoming.headers.get("content-encoding", "identity").lower() != "identity":
            raise _Rejected(400, "the scores API takes an uncompressed JSON body")
        try:
            data = json.loads(incoming.body)
        except ValueError:
            raise _Rejected(400, "invalid JSON") from None
        if not isinstance(data, dict):
            raise _Rejected(400, "expected a JSON object")
        name, value = data.get("name"), data.get("value")
        if not isinstance(name, str) or not name:
            raise _Rejected(400, "name is required")
        data_type = data.get("dataType") or "NUMERIC"
        number = (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )
        numeric = number is not None
        if data_type == "CATEGORICAL":
            valid = isinstance(value, str)
        elif data_type == "BOOLEAN":
            valid = numeric and value in (0, 1)
        elif data_type == "NUMERIC":
            valid = numeric
        else:
            raise _Rejected(400, f"unknown dataType {data_type!r}")
        if not valid:
            raise _Rejected(400, f"value does not fit dataType {data_type}")
        if data.get("traceId") is None and data.get("sessionId") is None:
            raise _Rejected(400, "a score needs traceId or sessionId")
        score_id = str(data.get("id") or uuid.uuid4().hex)
        record = ScoreRecord(
            id=score_id,
            name=name,
            value=number if number is not None else str(value),
            data_type=data_type,
            trace_id=data.get("traceId"),
            observation_id=data.get("observationId"),
            session_id=data.get("sessionId"),
            comment=data.get("comment"),
            metadata=data.get("metadata"),
            environment=data.get("environment"),
        )
        with self._cond:
            self._scores[score_id] = record
            self._cond.notify_all()
        return {"id": score_id}, 0

    def _projects(self, incoming: IncomingRequest) -> tuple[Any, int]:
        project = {
            "id": "stand-in-project",
            "name": self.project_name,
            "organization": {"id": "stand-in-org", "name": "obshub"},
            "metadata": {},
        }
        return {"data": [project]}, 0
