"""``otlp``: send spans to an OpenTelemetry Collector or any OTLP/HTTP receiver."""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import attrs

import obshub
from obshub import http
from obshub.plugin import (
    AUTH_PAUSE_INITIAL,
    AUTH_PAUSE_MAX,
    AUTH_STATUSES,
    AuthPause,
    distribution_version,
    safe_url,
    scrubbed_error,
    scrubbed_result,
    send_splitting,
    too_large_error,
)
from obshub.spans import SpanEvent
from obshub_otlp import wire
from obshub_otlp.encoding import CONVENTIONS, AttrValue, encode_spans, encode_spans_parts
from obshub_otlp.mapping import content_attributes
from obshub_otlp.settings import TRACES_PATH, Settings, resolve

__all__ = ["AUTH_PAUSE_INITIAL", "AUTH_PAUSE_MAX", "UNKNOWN_SERVICE", "OtlpExporter"]

#: The service name OpenTelemetry (and obshub) use when none was configured.
UNKNOWN_SERVICE = "unknown_service"
_SERVICE_NAME = "service.name"
# AUTH_PAUSE_INITIAL and AUTH_PAUSE_MAX (re-exported from obshub.plugin): sends pause
# this long after a 401/403 (``auth_cooldown``), doubling on each repeat up to the
# maximum, until a send succeeds.
# The key of a span event: the same span may arrive as started and as ended.
_EventKey = tuple[str, str, str]


def _event_key(event: SpanEvent) -> _EventKey:
    return (event.span.trace_id, event.span.span_id, event.kind.value)


def _conventions(value: object) -> tuple[str, ...]:
    """The ``conventions`` setting as a tuple of names (a ConfigError if invalid)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise obshub.ConfigError(
            f"must be one of {', '.join(CONVENTIONS)} or a non-empty list of them", "conventions"
        )
    for name in names:
        if name not in CONVENTIONS:
            shown = name if isinstance(name, str) else type(name).__name__
            raise obshub.ConfigError(
                f"unknown convention {shown!r}: expected {', '.join(CONVENTIONS)}", "conventions"
            )
    return tuple(dict.fromkeys(names))


class OtlpExporter(obshub.Exporter):
    """Sends spans over OTLP/HTTP to an OpenTelemetry Collector, Jaeger, Phoenix or a vendor.

    Settings (each also read from the standard ``OTEL_EXPORTER_OTLP_*``
    variables when not given, see `obshub_otlp.settings`):

    - ``endpoint``: the full traces URL, default ``http://localhost:4318/v1/traces``;
    - ``headers``: extra request headers, e.g. ``{"authorization": "Bearer ..."}``.
      Their values are treated as secrets: never in a repr, a log event or an error;
    - ``compression``: ``"gzip"`` (default) or ``"none"``;
    - ``timeout``: a deadline per request in seconds, for connecting, sending
      and reading the whole answer (default 10);
    - ``proxy``: an ``http://`` proxy URL (``user:pass@`` credentials are sent
      as ``Proxy-Authorization``); by default ``HTTPS_PROXY`` / ``HTTP_PROXY``
      / ``NO_PROXY`` decide, and ``""`` means no proxy;
    - ``protocol``: ``"http/protobuf"`` (default) or ``"http/json"``;
    - ``resource_attributes``: added to the resource of every span (with
      ``OTEL_RESOURCE_ATTRIBUTES``; the table wins);
    - ``include_content``: send input, output, metadata and tags as
      attributes, and messages, tool arguments and results and documents in
      the conventions (default true; see `obshub_otlp.mapping`);
    - ``conventions``: the attribute sets spans carry: ``"genai"`` (the
      OpenTelemetry GenAI semantic conventions, default), ``"openinference"``
      (what Arize Phoenix reads), or a list of both;
    - ``auth_cooldown``: seconds sends pause after a 401/403 (default 30,
      doubling on each repeat up to 10 minutes).

    429, 5xx,
    timeouts and connection errors are retried by the delivery channel;
    other 4xx are not, and a 401/403 (credentials refused) pauses sends
    while the channel holds the batch, then probes with it. A 413 splits
    the batch in halves; a single span still too large is sent once with its
    large fields truncated. Spans a receiver rejects in a partial success are
    logged (``spans_rejected``), not retried.
    """

    name: ClassVar[str] = "otlp"
    secret_keys: ClassVar[frozenset[str]] = frozenset({"headers"})

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        compression: Literal["gzip", "none"] | None = None,
        timeout: float | None = None,
        protocol: Literal["http/protobuf", "http/json"] | None = None,
        resource_attributes: Mapping[str, Any] | None = None,
        include_content: bool = True,
        conventions: str | Sequence[str] = "genai",
        auth_cooldown: float = AUTH_PAUSE_INITIAL,
        proxy: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not isinstance(include_content, bool):
            raise obshub.ConfigError(
                f"must be true or false, got {type(include_content).__name__}", "include_content"
            )
        self.conventions: tuple[str, ...] = _conventions(conventions)
        self._auth_pause = AuthPause(auth_cooldown, AUTH_PAUSE_MAX, key="auth_cooldown")
        self.auth_cooldown = self._auth_pause.initial
        self.proxy = http.proxy_setting(proxy)
        settings = resolve(
            endpoint=endpoint,
            headers=headers,
            compression=compression,
            timeout=timeout,
            protocol=protocol,
            resource_attributes=resource_attributes,
            environ=os.environ,
            warn=self.log.warning,
        )
        self.endpoint: str = settings.endpoint
        self.compression: str = settings.compression
        self.timeout: float = settings.timeout
        self.protocol: str = settings.protocol
        self.include_content = include_content
        self.sources: Mapping[str, str] = settings.sources
        self._settings = settings
        self._display = safe_url(settings.endpoint)
        # Every configured header value is treated as a secret, and so are the
        # endpoint's and the proxy's credentials.
        self._scrub = http.Scrubber(
            urls=[settings.endpoint, self.proxy], headers=settings.headers, all_headers=True
        )
        self._content_type = wire.CONTENT_TYPES[settings.protocol]
        self._user_agent = http.user_agent(f"obshub-otlp/{distribution_version('obshub-otlp')}")
        self._resource, self._env_service_name = self._split_resource(settings, resource_attributes)
        self._rejected_total = 0
        # Events already delivered when a later part of their (split) batch failed
        # retryably. The channel retries with that batch, or parts of it, in new
        # lists of the same SpanEvent objects: an event found here is skipped, not
        # sent twice (an OTLP backend may not deduplicate). Keyed by id(); a live
        # event's id is unique, and the weak values let an event the channel gave
        # up on leave by itself.
        self._sent: weakref.WeakValueDictionary[int, SpanEvent] = weakref.WeakValueDictionary()
        if urlsplit(self.endpoint).path in ("", "/"):
            self.log.warning(
                "endpoint_without_path",
                endpoint=self._display,
                hint=f"OTLP/HTTP receivers take traces at {TRACES_PATH}; "
                "the endpoint is the full traces URL",
            )

    @staticmethod
    def _split_resource(
        settings: Settings, given: Mapping[str, Any] | None
    ) -> tuple[dict[str, AttrValue], str | None]:
        """The resource attributes to send, and ``service.name`` from the environment.

        The config's ``service_name`` (or ``OTEL_SERVICE_NAME``) names the
        service; ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` only stands
        in for an unnamed service, as in the OpenTelemetry SDKs. Given in the
        exporter's own ``resource_attributes``, it wins (for this exporter).
        """
        resource = dict(settings.resource_attributes)
        if given is not None and _SERVICE_NAME in given:
            return resource, None
        value = resource.pop(_SERVICE_NAME, None)
        return resource, value if isinstance(value, str) and value else None

    # -- what users see -----------------------------------------------------------------

    @property
    def header_names(self) -> tuple[str, ...]:
        """The names of the extra headers sent (lowercase); their values stay private."""
        return tuple(sorted(self._settings.headers))

    @property
    def resource_attributes(self) -> Mapping[str, AttrValue]:
        """The attributes added to every span's resource."""
        return dict(self._resource)

    @property
    def rejected_spans(self) -> int:
        """Spans receivers refused in partial successes since the exporter was built.

        The delivery channel counts them as exported: the request succeeded.
        """
        return self._rejected_total

    def __repr__(self) -> str:
        mode = "realtime" if self.realtime else "batch"
        return (
            f"<OtlpExporter {self.instance_name!r} {mode} endpoint={self._display!r} "
            f"protocol={self.protocol!r} headers={list(self.header_names)!r}>"
        )

    # -- requests -------------------------------------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        headers = {"User-Agent": self._user_agent, **self._settings.headers}
        headers["Content-Type"] = self._content_type
        if self.compression == "gzip":
            headers["Content-Encoding"] = "gzip"
        return headers

    def _post_raw(self, body: bytes, headers: Mapping[str, str]) -> http.Response:
        """POST ``body`` as it is; any status is returned, transport failures raised."""
        try:
            return http.post(
                self.endpoint,
                body,
                headers,
                timeout=self.timeout,
                raise_for_status=False,
                secret_headers=self._settings.headers.keys(),
                proxy=self.proxy,
            )
        except obshub.ExportError as exc:
            raise scrubbed_error(exc, self._scrub) from None

    def _post(self, parts: list[bytes]) -> http.Response:
        """POST ``b"".join(parts)`` to the endpoint; an `obshub.ExportError` for any failure.

        Error messages quote what the receiver said (a ``google.rpc.Status``
        message, or the body's text), with every header value scrubbed out.
        """
        headers = self._request_headers()
        body = wire.gzip_body(parts) if self.compression == "gzip" else b"".join(parts)
        response = self._post_raw(body, headers)
        if response.status in AUTH_STATUSES:
            error = self._status_error(response, headers)
            raise self._auth_pause.refused(
                f"{error}; the receiver refused the credentials: check headers "
                "(or OTEL_EXPORTER_OTLP_HEADERS)",
                error.status,
            )
        if response.status >= 300:
            raise self._status_error(response, headers)
        self._auth_pause.succeeded()
        return response

    def _status_error(
        self, response: http.Response, headers: Mapping[str, str]
    ) -> obshub.ExportError:
        said = wire.error_message(response.body, response.headers.get("content-type", ""))
        readable = response._replace(body=self._scrub(said).encode("utf-8"))
        return http.status_error("POST", self._display, readable, headers)

    # -- spans ----------------------------------------------------------------------------

    def _extra(self, event: SpanEvent) -> Mapping[str, AttrValue]:
        return content_attributes(event.span)

    def _encode(self, events: Sequence[SpanEvent]) -> list[bytes]:
        """The request body of ``events``, in parts (see `encode_spans_parts`)."""
        if self._env_service_name is not None:
            events = [
                attrs.evolve(e, service_name=self._env_service_name)
                if e.service_name == UNKNOWN_SERVICE
                else e
                for e in events
            ]
        options: dict[str, Any] = {
            "extra_attributes": self._extra if self.include_content else None,
            "resource_attributes": self._resource,
            "conventions": self.conventions,
            "include_content": self.include_content,
        }
        if self.protocol == "http/protobuf":
            # A span's bytes depend on the conventions, the content switch and
            # the extra-attributes hook (a subclass may change it): OTLP
            # exporters of a config that agree on them encode each span once.
            key = ("obshub-otlp", type(self)._extra, self.conventions, self.include_content)
            return encode_spans_parts(events, cache_key=key, **options)
        return [wire.encode_request(encode_spans(events, **options), self.protocol)]

    def export(self, events: Sequence[SpanEvent]) -> None:
        """Send the spans as one OTLP request (split on 413)."""
        if not events:
            return
        todo = [e for e in events if id(e) not in self._sent]
        if len(todo) < len(events):
            self.log.debug("batch_resumed", spans=len(events), already_sent=len(events) - len(todo))
        delivered: set[_EventKey] = set()
        try:
            too_large = self._send(todo, delivered) if todo else 0
        except obshub.ExportError as exc:
            if exc.retryable or exc.pause is not None:
                # Sent again later (after a backoff or a pause), whole or in parts.
                for event in todo:
                    if _event_key(event) in delivered:
                        self._sent[id(event)] = event
            else:
                self._forget(events)
            raise
        self._forget(events)
        if too_large:
            raise too_large_error(too_large, len(events))

    def _forget(self, events: Sequence[SpanEvent]) -> None:
        # No retry of these events is coming: their entries are done with.
        for event in events:
            self._sent.pop(id(event), None)

    def _send(self, events: list[SpanEvent], delivered: set[_EventKey]) -> int:
        """Send ``events`` (split on 413); returns how many were too large even truncated."""

        def post(chunk: list[SpanEvent]) -> None:
            response = self._post(self._encode(chunk))
            delivered.update(_event_key(e) for e in chunk)
            self._note_partial_success(response, len(chunk))

        return send_splitting(events, post, self.log)

    def _note_partial_success(self, response: http.Response, sent: int) -> None:
        partial = wire.parse_partial_success(
            response.body, response.headers.get("content-type", ""), self.protocol
        )
        if partial is None:
            return
        message = self._scrub(partial.error_message)
        if partial.rejected_spans == 0:
            # Everything was accepted; the receiver only had advice.
            self.log.info("receiver_warning", spans=sent, message=message)
            return
        self._rejected_total += partial.rejected_spans
        # Not retried: the specification says a partial success must not be,
        # since the same spans would be rejected again.
        self.log.warning(
            "spans_rejected",
            rejected=partial.rejected_spans,
            spans=sent,
            error=message,
            rejected_total=self._rejected_total,
            endpoint=self._display,
        )

    # -- check ------------------------------------------------------------------------------

    def check(self) -> obshub.CheckResult:
        """POST an empty export: a working OTLP receiver answers 200 (no span is created)."""
        return scrubbed_result(self._check(), self._scrub)

    def _check(self) -> obshub.CheckResult:
        details: dict[str, Any] = {
            "endpoint": self._display,
            "protocol": self.protocol,
            "conventions": list(self.conventions),
            "endpoint_source": self.sources["endpoint"],
            "headers": list(self.header_names),
            "proxy": self._proxy_display(),
        }
        headers = self._request_headers()
        empty = b"{}" if self.protocol == "http/json" else b""
        if self.compression == "gzip":
            empty = wire.gzip_body([empty])
        try:
            response = self._post_raw(empty, headers)
        except obshub.ExportError as exc:
            # The error starts with "POST <endpoint>: ", which the message already says.
            reason = str(exc).removeprefix(f"POST {self._display}: ")
            return obshub.CheckResult(
                ok=False, message=f"cannot reach {self._display}: {reason}", details=details
            )
        details["status"] = response.status
        latency_ms = round(response.elapsed * 1000, 1)
        if response.status >= 300:
            error = self._status_error(response, headers)
            return obshub.CheckResult(
                ok=False,
                message=self._check_failure(error),
                latency_ms=latency_ms,
                details=details,
            )
        return obshub.CheckResult(
            ok=True,
            message=f"OTLP receiver at {self._display} accepted an empty {self.protocol} export "
            f"(HTTP {response.status})",
            latency_ms=latency_ms,
            details=details,
        )

    def _proxy_display(self) -> str | None:
        via = http.proxy_for(self.endpoint, self.proxy)
        return safe_url(via) if via else None

    def _check_failure(self, exc: obshub.ExportError) -> str:
        hints = {
            401: "the receiver wants credentials: check the authorization header in headers "
            "(or OTEL_EXPORTER_OTLP_HEADERS)",
            403: "the credentials in headers were refused",
            404: f"no OTLP traces receiver at this URL: the endpoint is the full traces URL, "
            f"usually ending in {TRACES_PATH}",
            405: f"the URL does not take POST: is it the OTLP/HTTP port (4318) and {TRACES_PATH}?",
            415: f"the receiver does not take {self.protocol}: try the other protocol",
        }
        hint = hints.get(exc.status or 0)
        return f"{exc}; {hint}" if hint else str(exc)
