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
- the media API (``POST /api/public/media``, ``PATCH``/``GET
  /api/public/media/<id>``) and the presigned upload it hands out, on the
  stand-in itself: see `obshub_langfuse.testing_media`.

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
        server.wait_for_observations(1)
        assert server.observations()[0].type == "AGENT"

Every accessor is thread-safe and returns a copy. The ``wait_for_*`` methods
follow the kit's one convention (`obshub.testing.wait_for_count`): they block
on a condition variable instead of polling, return everything received so far
once ``count`` items are in, and raise ``TimeoutError`` saying how many arrived.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from obshub.testing import DEFAULT_TIMEOUT
from obshub.testing.otlp import HTTP_JSON, HTTP_PROTOBUF, decode_traces
from obshub.testing.server import (
    Fault,
    FaultFunction,
    IncomingRequest,
    LocalServer,
    Reply,
    decompressed,
)
from obshub.testing.server import (
    Rejected as _Rejected,
)
from obshub_langfuse._ingestion import (
    _ENVIRONMENT,
    Observation,
    Trace,
    TraceEvent,
    TraceRecord,
    assemble_trace,
    derive_observation,
    merge_trace,
    trace_event,
)
from obshub_langfuse._ingestion import js_attribute_map as _attributes
from obshub_langfuse.testing_media import (
    MediaEmulation,
    MediaLink,
    MediaRecord,
    fault_key,
    json_body,
    media_aliases,
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
    "MediaLink",
    "MediaRecord",
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
    **media_aliases(),
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
    """A score as stored by ``POST /api/public/scores`` (``CreateScoreRequest`` fields)."""

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
    dataset_run_id: str | None = None
    config_id: str | None = None
    queue_id: str | None = None
    source: str = "API"


# -- decoding -----------------------------------------------------------------------------


class LangfuseStandIn(MediaEmulation, LocalServer):
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
        self._media_init()

    methods = ("GET", "POST", "PUT", "PATCH")
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
        ``projects``, ``health``, ``media`` (the POST), ``media-upload`` (the
        PUT to the presigned URL), ``media-patch``, ``media-get``.
        """
        key = PATH_ALIASES.get(path, path)
        with self._cond:
            self._faults.setdefault(key, []).extend(faults)

    def _pop_fault(self, incoming: IncomingRequest) -> Fault | None:
        queue = self._faults.get(fault_key(incoming.method, incoming.path))
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
            return [
                r
                for r in self._requests
                if key is None or r.path == key or fault_key(r.method, r.path) == key
            ]

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
            self._media_clear()

    def wait_for_observations(
        self, count: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Observation]:
        """Block until ``count`` observations arrived; return them all.

        Raises `TimeoutError` saying how many arrived if not within ``timeout``.
        """
        return self._wait_for(
            lambda: list(self._observations.values()), count, timeout, "observations"
        )

    def wait_for_scores(self, count: int, *, timeout: float = DEFAULT_TIMEOUT) -> list[ScoreRecord]:
        """Block until ``count`` scores arrived; return them all (or raise `TimeoutError`)."""
        return self._wait_for(lambda: list(self._scores.values()), count, timeout, "scores")

    def wait_for_requests(
        self, count: int, path: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> list[RecordedRequest]:
        """Block until ``count`` requests (to ``path``, if given) were answered; return them.

        ``path`` takes the short names too (``"traces"``, ``"scores"``, ...).
        Raises `TimeoutError` saying how many arrived if not within ``timeout``.
        """
        key = PATH_ALIASES.get(path, path) if path is not None else None
        return self._wait_for(
            lambda: [
                r
                for r in self._requests
                if key is None or r.path == key or fault_key(r.method, r.path) == key
            ],
            count,
            timeout,
            "requests" if key is None else f"requests to {key}",
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
        media = self._media_route(incoming, self._authorised(incoming.headers))
        if media is not None:
            return media
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
        protocol = HTTP_PROTOBUF if content_type == "application/x-protobuf" else HTTP_JSON
        request = decode_traces(body, protocol)
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
        record = _validated_score(json_body(incoming))
        with self._cond:
            self._scores[record.id] = record
            self._cond.notify_all()
        return {"id": record.id}, 0

    def _projects(self, incoming: IncomingRequest) -> tuple[Any, int]:
        project = {
            "id": "stand-in-project",
            "name": self.project_name,
            "organization": {"id": "stand-in-org", "name": "obshub"},
            "metadata": {},
        }
        return {"data": [project]}, 0


# -- CreateScoreRequest ------------------------------------------------------------------

#: The properties of ``CreateScoreRequest`` (Langfuse's OpenAPI schema). The
#: stand-in refuses any other key, which Langfuse would silently drop: a
#: misspelt field shows up in a test instead of vanishing in production.
SCORE_REQUEST_KEYS = frozenset(
    {
        "id",
        "traceId",
        "sessionId",
        "observationId",
        "datasetRunId",
        "name",
        "value",
        "comment",
        "metadata",
        "environment",
        "queueId",
        "dataType",
        "configId",
        "source",
    }
)
SCORE_DATA_TYPES = frozenset({"NUMERIC", "BOOLEAN", "CATEGORICAL", "CORRECTION", "TEXT"})
#: ``CreateScoreSource``: EVAL is Langfuse's own and refused on this endpoint.
SCORE_SOURCES = frozenset({"API", "ANNOTATION"})
MAX_TEXT_SCORE_LENGTH = 500


def _validated_score(data: Mapping[str, Any]) -> ScoreRecord:
    """``data`` checked the way Langfuse checks a ``CreateScoreRequest``; 400 otherwise.

    Rules (OpenAPI schema and the server's validation): ``name`` and
    ``value`` are required; ``dataType`` (default NUMERIC, or inferred when a
    ``configId`` is given) decides the value's type: a number for NUMERIC, 0 or
    1 for BOOLEAN, a string for CATEGORICAL and CORRECTION, 1-500 characters
    for TEXT; a CORRECTION takes no ``configId``; ``source`` is API or
    ANNOTATION, and ANNOTATION needs a ``configId`` unless the type is
    CORRECTION; exactly one target: ``traceId`` (with an optional
    ``observationId``), ``sessionId`` or ``datasetRunId``; ids, ``comment``
    and ``environment`` are strings or null, ``metadata`` an object or null;
    ``environment`` is lowercase ``[a-z0-9-_]`` not starting with ``langfuse``.
    """
    unknown = sorted(set(data) - SCORE_REQUEST_KEYS)
    if unknown:
        raise _Rejected(400, f"unknown CreateScoreRequest field(s): {', '.join(unknown)}")
    for key in (
        "id",
        "traceId",
        "sessionId",
        "observationId",
        "datasetRunId",
        "comment",
        "environment",
        "queueId",
        "configId",
    ):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _Rejected(400, f"{key} must be a string or null")
    name, value = data.get("name"), data.get("value")
    if not isinstance(name, str) or not name:
        raise _Rejected(400, "name is required")
    if "value" not in data or value is None:
        raise _Rejected(400, "value is required")
    if data.get("metadata") is not None and not isinstance(data["metadata"], dict):
        raise _Rejected(400, "metadata must be an object or null")
    data_type = data.get("dataType")
    if data_type is None:
        data_type = "NUMERIC" if isinstance(value, (int, float)) else "CATEGORICAL"
    if data_type not in SCORE_DATA_TYPES:
        raise _Rejected(400, f"unknown dataType {data_type!r}")
    number = (
        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    )
    if data_type in ("NUMERIC", "BOOLEAN") and number is None:
        raise _Rejected(400, f"value of a {data_type} score must be a number")
    if data_type == "BOOLEAN" and number not in (0.0, 1.0):
        raise _Rejected(400, "value of a BOOLEAN score must be 0 or 1")
    if data_type in ("CATEGORICAL", "CORRECTION", "TEXT") and not isinstance(value, str):
        raise _Rejected(400, f"value of a {data_type} score must be a string")
    if data_type == "TEXT" and not 1 <= len(value) <= MAX_TEXT_SCORE_LENGTH:
        raise _Rejected(400, "value of a TEXT score must have 1 to 500 characters")
    if data_type == "CORRECTION" and data.get("configId") is not None:
        raise _Rejected(400, "a CORRECTION score cannot have a configId")
    source = data.get("source") or "API"
    if source not in SCORE_SOURCES:
        raise _Rejected(400, f"source must be API or ANNOTATION, not {source!r}")
    if source == "ANNOTATION" and data.get("configId") is None and data_type != "CORRECTION":
        raise _Rejected(400, "an ANNOTATION score needs a configId unless it is a CORRECTION")
    trace, session, run = data.get("traceId"), data.get("sessionId"), data.get("datasetRunId")
    if sum(1 for target in (trace, session, run) if target) != 1 or (
        data.get("observationId") and not trace
    ):
        raise _Rejected(
            400,
            "Provide exactly one of the following: traceId (with optional observationId), "
            "sessionId or datasetRunId. ObservationId requires traceId.",
        )
    environment = data.get("environment")
    if environment is not None and (
        not _ENVIRONMENT.match(environment) or environment.startswith("langfuse")
    ):
        raise _Rejected(400, f"invalid environment {environment!r}")
    return ScoreRecord(
        id=str(data.get("id") or uuid.uuid4().hex),
        name=name,
        value=number if data_type in ("NUMERIC", "BOOLEAN") and number is not None else value,
        data_type=data_type,
        trace_id=trace,
        observation_id=data.get("observationId"),
        session_id=session,
        comment=data.get("comment"),
        metadata=data.get("metadata"),
        environment=environment,
        dataset_run_id=run,
        config_id=data.get("configId"),
        queue_id=data.get("queueId"),
        source=source,
    )
