"""``langfuse``: send spans to Langfuse over OTLP/HTTP, and scores to its REST API."""

from __future__ import annotations

import json
import os
import time
import types
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

from obshub_otlp.encoding import encode_spans_parts
from obshub_otlp.wire import gzip_body

import obshub
from obshub import http
from obshub.plugin import (
    AUTH_PAUSE_INITIAL,
    AUTH_PAUSE_MAX,
    AUTH_STATUSES,
    AuthPause,
    Scrubber,
    distribution_version,
    json_string,
    positive_seconds,
    safe_url,
    scrubbed_error,
    scrubbed_result,
    send_splitting,
    too_large_error,
    waiting,
)
from obshub.spans import EventKind, Score, SpanEvent
from obshub_langfuse.mapping import TraceOptions, langfuse_attributes, normalise_environment
from obshub_langfuse.media import MediaUploader
from obshub_langfuse.scores import LANGFUSE_FIELDS, InvalidScore, score_body
from obshub_langfuse.settings import ARGUMENT, DEFAULT, SWITCHES, resolve_switches

__all__ = ["DEFAULT_BASE_URL", "LangfuseExporter"]

#: Langfuse Cloud (EU region).
DEFAULT_BASE_URL = "https://cloud.langfuse.com"
TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"
PROJECTS_PATH = "/api/public/projects"
#: Opts into Langfuse's real-time write path; servers reject values above 4.
INGESTION_VERSION = "4"
#: What the Langfuse server records as the sending SDK (``x-langfuse-sdk-name`` and
#: ``x-langfuse-sdk-version``, the headers Langfuse's own SDKs send).
SDK_NAME = "obshub-langfuse"
#: After a failed ``GET /api/public/projects`` (for `LangfuseExporter.trace_url`),
#: the project id is asked again no sooner than this many seconds later.
PROJECT_RETRY_INTERVAL = 300.0
#: At most this many seconds for that request (it holds the worker once).
PROJECT_TIMEOUT = 5.0
#: Where each setting is looked for when not given: environment variables, in order.
ENV_VARS: Mapping[str, tuple[str, ...]] = types.MappingProxyType(
    {
        "public_key": ("LANGFUSE_PUBLIC_KEY",),
        "secret_key": ("LANGFUSE_SECRET_KEY",),
        "base_url": ("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
        "environment": ("LANGFUSE_TRACING_ENVIRONMENT",),
        "release": ("LANGFUSE_RELEASE",),
    }
)
_OPTION_KEYS = ("environment", "version", "release")
#: Score requests in flight at once (Langfuse's API takes one score per request).
SCORE_PARALLELISM = 4
_PROTOBUF = "application/x-protobuf"


class _Secret:
    """Holds a credential; its repr never shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


def _from_env(setting: str, given: str | None) -> str | None:
    """``given``, else the first set environment variable of ``setting``.

    Surrounding whitespace is dropped (a key read from a file often ends in a
    newline); an empty or blank value counts as not given.
    """
    if given and given.strip():
        return given.strip()
    for var in ENV_VARS[setting]:
        found = os.environ.get(var, "").strip()
        if found:
            return found
    return None


def _source_of(setting: str, given: object) -> str:
    """Where `_from_env` found ``setting``: argument/config, ``env VAR``, or not set."""
    if isinstance(given, str) and given.strip():
        return ARGUMENT
    for var in ENV_VARS[setting]:
        if os.environ.get(var, "").strip():
            return f"env {var}"
    return DEFAULT


class LangfuseExporter(obshub.Exporter):
    """Sends spans to Langfuse (OTLP/HTTP, protobuf + gzip) and scores to its REST API.

    Settings (each also read from the environment when not given):

    - ``public_key`` / ``secret_key``: the project's API keys
      (``LANGFUSE_PUBLIC_KEY`` / ``LANGFUSE_SECRET_KEY``). Without them the
      exporter logs one warning and stays idle; the application is unaffected.
    - ``base_url``: default ``https://cloud.langfuse.com``
      (``LANGFUSE_BASE_URL``, then ``LANGFUSE_HOST``).
    - ``options``: ``environment`` (``LANGFUSE_TRACING_ENVIRONMENT``),
      ``version`` and ``release`` (``LANGFUSE_RELEASE``), put on every span.
    - ``timeout``: a deadline per request in seconds, for connecting, sending
      and reading the whole answer (``LANGFUSE_TIMEOUT``, default 10).
    - ``compression``: ``"gzip"`` (default) or ``"none"``.
    - ``proxy``: an ``http://`` proxy URL (credentials as ``user:pass@``
      are sent as ``Proxy-Authorization``); by default ``HTTPS_PROXY`` /
      ``HTTP_PROXY`` / ``NO_PROXY`` decide, and ``""`` means no proxy.
    - ``sample_rate``: share of traces sent, decided by trace id
      (``LANGFUSE_SAMPLE_RATE``, default 1).
    - ``media_upload``: upload bytes, data URIs and `obshub.Media` through
      Langfuse's media API (``LANGFUSE_MEDIA_UPLOAD_ENABLED``, default true).

    The common keys ``enabled``, ``log_level`` and ``batch`` also take the
    Langfuse SDK's variables when not given: ``LANGFUSE_TRACING_ENABLED``,
    ``LANGFUSE_DEBUG`` (log level debug), ``LANGFUSE_FLUSH_AT``
    (``batch.max_size``) and ``LANGFUSE_FLUSH_INTERVAL`` (``batch.interval``,
    seconds). `settings_report` says where each value came from.

    A 401/403 pauses sends for 30 s (doubling up to 10 min on repeats);
    a 413 splits the batch, and a single span still too large is sent once
    with its large fields replaced by a marker.
    """

    name: ClassVar[str] = "langfuse"
    secret_keys: ClassVar[frozenset[str]] = frozenset({"secret_key"})

    def __init__(
        self,
        *,
        public_key: str | None = None,
        secret_key: str | None = None,
        base_url: str | None = None,
        options: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: Literal["gzip", "none"] = "gzip",
        auth_cooldown: float = AUTH_PAUSE_INITIAL,
        sample_rate: float | None = None,
        media_upload: bool | None = None,
        proxy: str | None = None,
        **common: Any,
    ) -> None:
        # The Langfuse SDK's switches (LANGFUSE_TRACING_ENABLED, ...) fill in what
        # was not given, common keys included; see obshub_langfuse.settings.
        switches = resolve_switches(
            common,
            os.environ,
            timeout=timeout,
            sample_rate=sample_rate,
            media_upload=media_upload,
        )
        super().__init__(**switches.common)
        self.switches = switches
        for var, raw, expected in switches.ignored:
            self.log.warning(
                "environment_variable_ignored", variable=var, value=raw[:40], expected=expected
            )
        timeout = switches.timeout
        sample_rate = switches.sample_rate
        if (
            isinstance(sample_rate, bool)
            or not isinstance(sample_rate, (int, float))
            or not 0.0 <= sample_rate <= 1.0
        ):
            raise obshub.ConfigError("must be a number between 0 and 1", "sample_rate")
        if not isinstance(switches.media_upload, bool):
            raise obshub.ConfigError("must be true or false", "media_upload")
        self.sample_rate = float(sample_rate)
        self.media_upload = switches.media_upload
        self._sampler = obshub.Sampler.from_config(
            {"strategy": "ratio", "probability": self.sample_rate}
        )
        for key, value in (
            ("public_key", public_key),
            ("secret_key", secret_key),
            ("base_url", base_url),
        ):
            if value is not None and not isinstance(value, str):
                raise obshub.ConfigError(f"must be a string, got {type(value).__name__}", key)
        self.timeout = positive_seconds(timeout, "timeout")
        # Sends pause this long after a 401/403, doubling on each repeat up to 10 minutes.
        self._auth_pause = AuthPause(auth_cooldown, AUTH_PAUSE_MAX, key="auth_cooldown")
        self.auth_cooldown = self._auth_pause.initial
        if compression not in ("gzip", "none"):
            raise obshub.ConfigError("must be 'gzip' or 'none'", "compression")
        self.compression = compression
        self.proxy = http.proxy_setting(proxy)
        self.base_url = self._resolve_base_url(base_url)
        self._key_sources = {
            "public_key": _source_of("public_key", public_key),
            "secret_key": _source_of("secret_key", secret_key),
            "base_url": _source_of("base_url", base_url),
        }
        # base_url fit for messages: a password or token in it masked.
        self._display = safe_url(self.base_url)
        self.public_key = _from_env("public_key", public_key)
        secret = _from_env("secret_key", secret_key)
        self.trace_options = self._resolve_options(options)
        #: Why the environment turned the exporter off (LANGFUSE_TRACING_ENABLED=false).
        self.switched_off: str | None = None
        if switches.disabled_by_env:
            self.switched_off = (
                f"disabled by {SWITCHES['enabled']}="
                f"{os.environ.get(SWITCHES['enabled'], '').strip()}; "
                "set enabled = true on the exporter to override"
            )
            self.log.info("tracing_disabled", reason=self.switched_off, effect="nothing is sent")
        self.disabled_reason = None if self.switched_off else self._missing_credentials(secret)
        if self.disabled_reason is not None:
            # The hub gives a disabled exporter no channel: nothing is queued for it
            # or counted as exported, and `obshub check` reports why.
            self.enabled = False
        self._auth = _Secret(http.basic_auth(self.public_key or "", secret or ""))
        self._scrub = Scrubber(
            urls=[self.base_url, self.proxy],
            headers={"Authorization": self._auth.value},
            values=[secret],
        )
        version = distribution_version(SDK_NAME)
        self._user_agent = http.user_agent(f"{SDK_NAME}/{version}")
        self._identity = {
            "x-langfuse-sdk-name": SDK_NAME,
            "x-langfuse-sdk-version": version,
            "x-langfuse-public-key": self.public_key or "",
        }
        self._resource = (
            {"service.version": self.trace_options.version} if self.trace_options.version else {}
        )
        #: Uploads media found in spans (None with media_upload off).
        self.media: MediaUploader | None = (
            MediaUploader(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self.timeout,
                log=self.log,
                proxy=self.proxy,
            )
            if self.media_upload
            else None
        )
        self._project_id: str | None = None
        self._project_asked_at: float | None = None

    # -- settings ----------------------------------------------------------------------

    @staticmethod
    def _resolve_base_url(given: str | None) -> str:
        url = (_from_env("base_url", given) or DEFAULT_BASE_URL).rstrip("/")
        if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
            # The value is not echoed: a key pasted into the wrong setting stays private.
            raise obshub.ConfigError(
                "must be an http:// or https:// URL such as https://cloud.langfuse.com",
                "base_url",
            )
        return url

    def _resolve_options(self, options: Mapping[str, Any] | None) -> TraceOptions:
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise obshub.ConfigError(f"must be a table, got {type(options).__name__}", "options")
        values: dict[str, str | None] = {}
        for key, value in options.items():
            if key not in _OPTION_KEYS:
                raise obshub.ConfigError(
                    f"unknown key (expected {', '.join(_OPTION_KEYS)})", f"options.{key}"
                )
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise obshub.ConfigError(
                    f"must be a string, got {type(value).__name__}", f"options.{key}"
                )
            values[key] = str(value)
        environment = values.get("environment") or _from_env("environment", None)
        if environment is not None:
            normalised = normalise_environment(environment)
            if normalised != environment:
                self.log.warning(
                    "environment_normalised",
                    given=environment,
                    environment=normalised,
                    rule="lowercase letters, digits, '-' and '_', at most 40 characters",
                )
            environment = normalised
        return TraceOptions(
            environment=environment,
            release=values.get("release") or _from_env("release", None),
            version=values.get("version"),
        )

    def _missing_credentials(self, secret: str | None) -> str | None:
        missing = [
            key
            for key, value in (("public_key", self.public_key), ("secret_key", secret))
            if not value
        ]
        if not missing:
            return None
        looked_in = {
            key: [f"argument {key}", *(f"env {var}" for var in ENV_VARS[key])] for key in missing
        }
        where = "; ".join(f"{key}: {', '.join(places)}" for key, places in looked_in.items())
        reason = f"missing {' and '.join(missing)} (looked in {where})"
        self.log.warning(
            "credentials_missing",
            missing=missing,
            looked_in=looked_in,
            effect="exporter disabled: nothing is sent to Langfuse",
        )
        return reason

    def __repr__(self) -> str:
        mode = "realtime" if self.realtime else "batch"
        state = " disabled" if self._idle() else ""
        return (
            f"<LangfuseExporter {self.instance_name!r} {mode} base_url={self._display!r} "
            f"public_key={self.public_key!r}{state}>"
        )

    # -- requests ------------------------------------------------------------------------

    def _headers(self, content_type: str) -> dict[str, str]:
        return {
            "Authorization": self._auth.value,
            "Content-Type": content_type,
            "User-Agent": self._user_agent,
            **self._identity,
            "x-langfuse-ingestion-version": INGESTION_VERSION,
        }

    def _post(self, path: str, parts: list[bytes], content_type: str, *, compress: bool) -> None:
        """POST the body ``b"".join(parts)`` to ``path``."""
        headers = self._headers(content_type)
        # Only the OTLP endpoint is documented to take gzip; score bodies are small.
        if compress and self.compression == "gzip":
            body = gzip_body(parts)
            headers["Content-Encoding"] = "gzip"
        else:
            body = b"".join(parts)
        try:
            http.post(
                f"{self.base_url}{path}", body, headers, timeout=self.timeout, proxy=self.proxy
            )
        except obshub.ExportError as exc:
            if exc.status in AUTH_STATUSES:
                raise self._auth_refused(exc.status) from None
            # A server may echo credentials back.
            raise scrubbed_error(exc, self._scrub) from None
        self._auth_pause.succeeded()

    def _auth_refused(self, status: int) -> obshub.ExportError:
        reason = "rejected the API keys" if status == 401 else "refuses ingestion for this project"
        return self._auth_pause.refused(
            f"Langfuse {reason} (HTTP {status}) at {self._display} for public key "
            f"{self.public_key}; check public_key, secret_key and base_url (keys belong to one "
            "region)",
            status,
        )

    # -- spans ---------------------------------------------------------------------------

    def _attributes(self, event: SpanEvent) -> Mapping[str, object]:
        return langfuse_attributes(event.span, self.trace_options)

    def _encode(self, events: Sequence[SpanEvent]) -> list[bytes]:
        """The OTLP request of ``events``, in parts (see `encode_spans_parts`)."""
        return encode_spans_parts(
            events,
            extra_attributes=self._attributes,
            resource_attributes=self._resource,
            # Every Langfuse exporter with the same options encodes a span alike.
            cache_key=("langfuse", self.trace_options),
            # Only what Langfuse reads: no gen_ai.* duplicates in metadata.attributes.
            conventions=False,
        )

    def _idle(self) -> bool:
        return self.disabled_reason is not None or self.switched_off is not None

    def sampled(self, trace_id: str) -> bool:
        """Whether ``sample_rate`` keeps the trace (decided by its id, as OpenTelemetry's
        ``TraceIdRatioBased`` and Langfuse's SDK decide: every span of a trace alike)."""
        return self.sample_rate >= 1.0 or self._sampler.should_sample(trace_id)

    def export(self, events: Sequence[SpanEvent]) -> None:
        """Send ended spans as one OTLP request (split on 413)."""
        if self._idle() or not events:
            return
        if self.sample_rate < 1.0:
            events = [e for e in events if self.sampled(e.span.trace_id)]
            if not events:
                return
        if self.media is not None:
            # Uploads (or recalls) each media value; its reference replaces it.
            events = [self.media.prepare(e) for e in events]
        rejected = self._send(list(events))
        self._after_send(events)
        if rejected:
            raise too_large_error(rejected, len(events))

    def _send(self, events: list[SpanEvent]) -> int:
        """Send ``events`` (split on 413); returns how many were too large even truncated."""

        def post(chunk: list[SpanEvent]) -> None:
            self._post(TRACES_PATH, self._encode(chunk), _PROTOBUF, compress=True)

        return send_splitting(events, post, self.log)

    # -- trace URLs ----------------------------------------------------------------------

    def trace_url(self, trace_id: str) -> str | None:
        """The Langfuse UI address of trace ``trace_id``, or None while the project is unknown.

        ``{base_url}/project/{project_id}/traces/{trace_id}``. The project id is
        asked once (``GET /api/public/projects``) by the exporter's worker after
        its first successful send, never on the calling thread; until then,
        and when Langfuse does not answer it, this returns None.
        """
        project_id = self._project_id
        if project_id is None or not trace_id:
            return None
        return f"{self._display}/project/{project_id}/traces/{trace_id}"

    def _after_send(self, events: Sequence[SpanEvent]) -> None:
        # Worker thread, after a successful send: learn the project id once, then
        # (realtime mode) log where each sent trace root can be seen.
        try:
            self._learn_project_id()
            if not self.realtime or self._project_id is None:
                return
            for event in events:
                span = event.span
                if span.is_root and event.kind is EventKind.ENDED:
                    self.log.debug("trace_url", trace=span.name, url=self.trace_url(span.trace_id))
        except Exception as exc:  # never let a convenience fail a delivered batch
            self.log.debug("trace_url_failed", error=f"{type(exc).__name__}: {exc}")

    def _learn_project_id(self) -> None:
        if self._project_id is not None:
            return
        now = time.monotonic()
        asked = self._project_asked_at
        if asked is not None and now - asked < PROJECT_RETRY_INTERVAL:
            return
        self._project_asked_at = now
        headers = {"Authorization": self._auth.value, "User-Agent": self._user_agent}
        try:
            response = http.get(
                f"{self.base_url}{PROJECTS_PATH}",
                {**headers, **self._identity},
                timeout=min(self.timeout, PROJECT_TIMEOUT),
                raise_for_status=False,
                proxy=self.proxy,
            )
        except obshub.ExportError as exc:
            self.log.debug("project_id_unknown", error=str(exc))
            return
        project_id = _project_field(response.body, "id") if response.status == 200 else None
        if project_id is None:
            self.log.debug("project_id_unknown", status=response.status)
            return
        self._project_id = project_id

    # -- scores --------------------------------------------------------------------------

    def score_body(self, score: Score) -> dict[str, Any]:
        """The JSON body of ``POST /api/public/scores`` for ``score`` (see `scores.score_body`).

        Raises `obshub_langfuse.scores.InvalidScore` (a ValueError) for a score
        Langfuse would refuse.
        """
        body, _ignored = score_body(score, environment=self.trace_options.environment)
        return body

    def export_scores(self, scores: Sequence[Score]) -> None:
        """POST each score (Langfuse has no batch endpoint for scores; see below).

        The stable id of each score makes a resend idempotent. The first request
        goes alone, as a probe: when it fails for the whole batch (bad keys, a
        server error), nothing else is sent. The rest go ``SCORE_PARALLELISM``
        at a time over the shared keep-alive pool. A score Langfuse refuses
        (4xx) does not hold back the others.
        """
        if self._idle() or not scores:
            return
        if self.sample_rate < 1.0:
            # A score of a trace the sample rate drops would point at nothing.
            scores = [s for s in scores if s.trace_id is None or self.sampled(s.trace_id)]
        rejected: list[obshub.ExportError] = []
        refused: list[Score] = []
        bodies: list[bytes] = []
        sent: list[Score] = []
        for score in scores:
            try:
                body, ignored = score_body(score, environment=self.trace_options.environment)
            except InvalidScore as exc:
                rejected.append(obshub.ExportError(str(exc)))
                refused.append(score)
                continue
            if ignored:
                self.log.warning(
                    "score_fields_ignored",
                    score=score.name,
                    ignored=ignored,
                    known=sorted(LANGFUSE_FIELDS),
                )
            bodies.append(json_string(body).encode("utf-8"))
            sent.append(score)
        for index, error in self._post_scores(bodies):
            if error.status in AUTH_STATUSES:
                raise self._auth_refused(error.status)
            if error.retryable:
                raise error
            rejected.append(error)
            refused.append(sent[index])
        if rejected:
            # Only the refused scores are kept (dead letter) and counted rejected;
            # the channel counts the rest as delivered and re-sends nothing.
            raise obshub.ExportError(
                f"{len(rejected)} of {len(scores)} scores rejected; first: {rejected[0]}",
                retryable=False,
                status=rejected[0].status,
                rejected=True,
                items=refused,
            )

    def _post_score(self, body: bytes) -> obshub.ExportError | None:
        try:
            http.post(
                f"{self.base_url}{SCORES_PATH}",
                body,
                self._headers("application/json"),
                timeout=self.timeout,
                proxy=self.proxy,
            )
        except obshub.ExportError as exc:
            return scrubbed_error(exc, self._scrub)
        return None

    def _post_scores(self, bodies: list[bytes]) -> list[tuple[int, obshub.ExportError]]:
        """Send ``bodies``; (index, error) of each that failed (or of the probe alone)."""
        if not bodies:
            return []
        probe = self._post_score(bodies[0])
        if probe is not None and (probe.retryable or probe.status in AUTH_STATUSES):
            return [(0, probe)]
        rest = bodies[1:]
        if len(rest) <= 1:
            results = [self._post_score(body) for body in rest]
        else:
            workers = min(SCORE_PARALLELISM, len(rest))
            with (
                ThreadPoolExecutor(workers, thread_name_prefix="obshub-langfuse-scores") as pool,
                waiting(),  # the wait needs no interpreter
            ):
                results = list(pool.map(self._post_score, rest))
        errors = [(i, e) for i, e in enumerate((probe, *results)) if e is not None]
        if len(errors) < len(bodies):
            self._auth_pause.succeeded()
        return errors

    # -- check ---------------------------------------------------------------------------

    def settings_report(self) -> dict[str, dict[str, Any]]:
        """Each setting read from the environment: its value and where it came from.

        ``source`` is ``argument/config``, ``env <VARIABLE>`` or ``default``;
        the secret key's value is never shown.
        """
        switches = self.switches
        report: dict[str, dict[str, Any]] = {
            "public_key": {"value": self.public_key, "source": self._key_sources["public_key"]},
            "secret_key": {
                "value": "<set>" if self._key_sources["secret_key"] != DEFAULT else None,
                "source": self._key_sources["secret_key"],
            },
            "base_url": {"value": self._display, "source": self._key_sources["base_url"]},
        }
        for setting in SWITCHES:
            report[setting] = {
                "value": switches.values[setting],
                "source": switches.sources[setting],
            }
        return report

    def check(self) -> obshub.CheckResult:
        """``GET /api/public/projects`` with the keys: are they accepted, is Langfuse reachable?"""
        return scrubbed_result(self._check(), self._scrub)

    def _check(self) -> obshub.CheckResult:
        settings = self.settings_report()
        if self.switched_off is not None:
            return obshub.CheckResult(
                ok=True, message=self.switched_off, details={"settings": settings}
            )
        if self.disabled_reason is not None:
            return obshub.CheckResult(
                ok=False,
                message=f"not configured: {self.disabled_reason}",
                details={"settings": settings},
            )
        url = f"{self.base_url}{PROJECTS_PATH}"
        headers = {"Authorization": self._auth.value, "User-Agent": self._user_agent}
        via = http.proxy_for(url, self.proxy)
        details: dict[str, Any] = {
            "base_url": self._display,
            "proxy": safe_url(via) if via else None,
            "settings": settings,
        }
        where = self._display
        try:
            response = http.get(
                url, headers, timeout=self.timeout, raise_for_status=False, proxy=self.proxy
            )
        except obshub.ExportError as exc:
            return obshub.CheckResult(
                ok=False, message=f"cannot reach {where}: {exc}", details=details
            )
        latency_ms = round(response.elapsed * 1000, 1)
        details["status"] = response.status
        if response.status == 200:
            project = _project_name(response.body)
            found = f" (project {project!r})" if project else ""
            return obshub.CheckResult(
                ok=True,
                message=f"keys accepted by {where}{found}",
                latency_ms=latency_ms,
                details={**details, "project": project},
            )
        if response.status == 401:
            message = (
                f"keys rejected by {where} (HTTP 401): check public_key, secret_key "
                "and that base_url is the region the keys belong to"
            )
        elif response.status == 403:
            message = f"access forbidden by {where} (HTTP 403)"
        else:
            message = f"unexpected answer from {safe_url(url)} (HTTP {response.status})"
        return obshub.CheckResult(ok=False, message=message, latency_ms=latency_ms, details=details)


def _project_name(body: bytes) -> str | None:
    return _project_field(body, "name")


def _project_field(body: bytes, field: str) -> str | None:
    """``field`` of the key's project in a ``GET /api/public/projects`` answer."""
    try:
        data = json.loads(body)
        value = data["data"][0][field]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) and value else None
