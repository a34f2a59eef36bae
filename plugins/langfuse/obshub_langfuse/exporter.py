"""``langfuse``: send spans to Langfuse over OTLP/HTTP, and scores to its REST API."""

from __future__ import annotations

import json
import os
import threading
import types
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any, ClassVar, Literal

import obshub
from obshub import http
from obshub.otlp import encode_spans, json_string, send_splitting
from obshub.spans import Score, ScoreDataType, SpanEvent
from obshub_langfuse.mapping import TraceOptions, langfuse_attributes, normalise_environment

__all__ = ["DEFAULT_BASE_URL", "LangfuseExporter"]

#: Langfuse Cloud (EU region).
DEFAULT_BASE_URL = "https://cloud.langfuse.com"
TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"
PROJECTS_PATH = "/api/public/projects"
#: Opts into Langfuse's real-time write path; servers reject values above 4.
INGESTION_VERSION = "4"
#: Sends pause this long after a 401/403 (``auth_cooldown``), doubling on each repeat
#: up to the maximum.
AUTH_PAUSE_INITIAL = 30.0
AUTH_PAUSE_MAX = 600.0
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
_PROTOBUF = "application/x-protobuf"


def _plugin_version() -> str:
    try:
        return metadata.version("obshub-langfuse")
    except metadata.PackageNotFoundError:
        return "0+unknown"


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


def _score_value(score: Score) -> float | str:
    """The value as Langfuse takes it; ValueError for a NUMERIC score that is no number."""
    value = score.value
    if score.data_type is ScoreDataType.CATEGORICAL:
        return str(value)
    if score.data_type is ScoreDataType.BOOLEAN:
        if isinstance(value, str):
            return 1 if value.strip().lower() in ("1", "true", "yes") else 0
        return 1 if value else 0
    return float(value)


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
      and reading the whole answer (default 10).
    - ``compression``: ``"gzip"`` (default) or ``"none"``.
    - ``proxy``: an ``http://`` proxy URL (credentials as ``user:pass@``
      are sent as ``Proxy-Authorization``); by default ``HTTPS_PROXY`` /
      ``HTTP_PROXY`` / ``NO_PROXY`` decide, and ``""`` means no proxy.

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
        timeout: float = 10.0,
        compression: Literal["gzip", "none"] = "gzip",
        auth_cooldown: float = AUTH_PAUSE_INITIAL,
        proxy: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        for key, value in (
            ("public_key", public_key),
            ("secret_key", secret_key),
            ("base_url", base_url),
        ):
            if value is not None and not isinstance(value, str):
                raise obshub.ConfigError(f"must be a string, got {type(value).__name__}", key)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise obshub.ConfigError("must be a number of seconds > 0", "timeout")
        if (
            isinstance(auth_cooldown, bool)
            or not isinstance(auth_cooldown, (int, float))
            or auth_cooldown <= 0
        ):
            raise obshub.ConfigError("must be a number of seconds > 0", "auth_cooldown")
        self.auth_cooldown = float(auth_cooldown)
        if compression not in ("gzip", "none"):
            raise obshub.ConfigError("must be 'gzip' or 'none'", "compression")
        self.timeout = float(timeout)
        self.compression = compression
        self.proxy = http.proxy_setting(proxy)
        self.base_url = self._resolve_base_url(base_url)
        # base_url fit for messages: a password or token in it masked.
        self._display = http.safe_url(self.base_url)
        self.public_key = _from_env("public_key", public_key)
        secret = _from_env("secret_key", secret_key)
        self.trace_options = self._resolve_options(options)
        self.disabled_reason = self._missing_credentials(secret)
        if self.disabled_reason is not None:
            # The hub gives a disabled exporter no channel: nothing is queued for it
            # or counted as exported, and `obshub check` reports why.
            self.enabled = False
        self._auth = _Secret(http.basic_auth(self.public_key or "", secret or ""))
        self._scrub = http.Scrubber(
            urls=[self.base_url, self.proxy],
            headers={"Authorization": self._auth.value},
            values=[secret],
        )
        self._user_agent = http.user_agent(f"obshub-langfuse/{_plugin_version()}")
        self._resource = (
            {"service.version": self.trace_options.version} if self.trace_options.version else {}
        )
        self._pause_lock = threading.Lock()
        self._next_pause = self.auth_cooldown

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
        state = " disabled" if self.disabled_reason else ""
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
            "x-langfuse-ingestion-version": INGESTION_VERSION,
        }

    def _post(self, path: str, body: bytes, content_type: str, *, compress: bool) -> None:
        headers = self._headers(content_type)
        # Only the OTLP endpoint is documented to take gzip; score bodies are small.
        if compress and self.compression == "gzip":
            body = http.gzip_compress(body)
            headers["Content-Encoding"] = "gzip"
        try:
            http.post(
                f"{self.base_url}{path}", body, headers, timeout=self.timeout, proxy=self.proxy
            )
        except obshub.ExportError as exc:
            if exc.status in (401, 403):
                raise self._auth_refused(exc.status) from None
            raise obshub.ExportError(
                self._scrub(str(exc)),
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                status=exc.status,
                pause=exc.pause,
            ) from None
        with self._pause_lock:
            self._next_pause = self.auth_cooldown

    def _auth_refused(self, status: int) -> obshub.ExportError:
        # Not retried at once (that would hammer Langfuse with bad keys): the
        # channel holds the batch (or spools it) for the cooldown, then probes.
        with self._pause_lock:
            pause = self._next_pause
            self._next_pause = min(pause * 2, AUTH_PAUSE_MAX)
        reason = "rejected the API keys" if status == 401 else "refuses ingestion for this project"
        return obshub.ExportError(
            f"Langfuse {reason} (HTTP {status}) at {self._display} for public key "
            f"{self.public_key}; check public_key, secret_key and base_url (keys belong to one "
            f"region); sends pause for {pause:.0f} s",
            retryable=False,
            status=status,
            pause=pause,
        )

    # -- spans ---------------------------------------------------------------------------

    def _attributes(self, event: SpanEvent) -> Mapping[str, object]:
        return langfuse_attributes(event.span, self.trace_options)

    def _encode(self, events: Sequence[SpanEvent]) -> bytes:
        request = encode_spans(
            events,
            extra_attributes=self._attributes,
            resource_attributes=self._resource,
            # Every Langfuse exporter with the same options encodes a span alike.
            cache_key=("langfuse", self.trace_options),
        )
        data: bytes = request.SerializeToString()
        return data

    def export(self, events: Sequence[SpanEvent]) -> None:
        """Send ended spans as one OTLP request (split on 413)."""
        if self.disabled_reason is not None or not events:
            return
        rejected = self._send(list(events))
        if rejected:
            raise obshub.ExportError(
                f"{rejected} of {len(events)} spans rejected as too large (HTTP 413) "
                "even with their input, output and metadata truncated",
                retryable=False,
                status=413,
            )

    def _send(self, events: list[SpanEvent]) -> int:
        """Send ``events`` (split on 413); returns how many were too large even truncated."""

        def post(chunk: list[SpanEvent]) -> None:
            self._post(TRACES_PATH, self._encode(chunk), _PROTOBUF, compress=True)

        return send_splitting(events, post, self.log)

    # -- scores --------------------------------------------------------------------------

    def score_body(self, score: Score) -> dict[str, Any]:
        """The JSON body of ``POST /api/public/scores`` for ``score``."""
        body: dict[str, Any] = {
            "id": score.id,
            "name": score.name,
            "value": _score_value(score),
            "dataType": score.data_type.value,
        }
        optional = {
            "traceId": score.trace_id,
            "observationId": score.span_id,
            "sessionId": score.session_id,
            "comment": score.comment,
            "metadata": dict(score.metadata) or None,
            "environment": self.trace_options.environment,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body

    def export_scores(self, scores: Sequence[Score]) -> None:
        """POST each score; its stable id makes a resend idempotent."""
        if self.disabled_reason is not None or not scores:
            return
        first_error: obshub.ExportError | None = None
        failed = 0
        for score in scores:
            try:
                body = json_string(self.score_body(score)).encode("utf-8")
            except ValueError:
                failed += 1
                first_error = first_error or obshub.ExportError(
                    f"score {score.name!r} is NUMERIC but its value is not a number"
                )
                continue
            try:
                self._post(SCORES_PATH, body, "application/json", compress=False)
            except obshub.ExportError as exc:
                if exc.retryable or exc.status in (401, 403):
                    raise
                # A score the server refuses must not hold back the others.
                failed += 1
                first_error = first_error or exc
        if first_error is not None:
            raise obshub.ExportError(
                f"{failed} of {len(scores)} scores rejected; first: {first_error}",
                retryable=False,
                status=first_error.status,
            )

    # -- check ---------------------------------------------------------------------------

    def check(self) -> obshub.CheckResult:
        """``GET /api/public/projects`` with the keys: are they accepted, is Langfuse reachable?"""
        result = self._check()
        # Whatever a server echoed back, no credential leaves in a message or a detail.
        details = {
            key: self._scrub(value) if isinstance(value, str) else value
            for key, value in result.details.items()
        }
        return obshub.CheckResult(
            ok=result.ok,
            message=self._scrub(result.message),
            latency_ms=result.latency_ms,
            details=details,
        )

    def _check(self) -> obshub.CheckResult:
        if self.disabled_reason is not None:
            return obshub.CheckResult(ok=False, message=f"not configured: {self.disabled_reason}")
        url = f"{self.base_url}{PROJECTS_PATH}"
        headers = {"Authorization": self._auth.value, "User-Agent": self._user_agent}
        via = http.proxy_for(url, self.proxy)
        details: dict[str, Any] = {
            "base_url": self._display,
            "proxy": http.safe_url(via) if via else None,
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
            message = f"unexpected answer from {http.safe_url(url)} (HTTP {response.status})"
        return obshub.CheckResult(ok=False, message=message, latency_ms=latency_ms, details=details)


def _project_name(body: bytes) -> str | None:
    try:
        data = json.loads(body)
        name = data["data"][0]["name"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) else None
