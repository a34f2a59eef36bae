"""Media upload through Langfuse's media API, and the reference strings that replace it.

Langfuse keeps images, audio and documents out of the trace: the SDK uploads
each to object storage and puts a reference string in its place,
``@@@langfuseMedia:type=image/png|id=<mediaId>|source=bytes@@@``, which the UI
renders as the image (or a player, or a file link). `MediaUploader` does the
same for obshub spans, on the exporter's worker, before a batch is encoded:

1. finds media in a span's input, output and metadata, at any depth:
   `obshub.media.MediaValue` strings (non-text bytes, long data URIs,
   `obshub.Media` values) and base64 data URI strings;
2. ``POST /api/public/media`` with ``traceId``, ``observationId``,
   ``contentType``, ``contentLength``, ``sha256Hash`` (base64 SHA-256) and
   ``field``; Langfuse answers the ``mediaId`` and, unless it already holds
   that content, a presigned ``uploadUrl``;
3. ``PUT`` the bytes to ``uploadUrl`` with ``Content-Type`` and
   ``x-amz-checksum-sha256`` (no credentials: the URL is signed);
4. ``PATCH /api/public/media/{mediaId}`` with ``uploadedAt``,
   ``uploadHttpStatus``, ``uploadHttpError`` and ``uploadTimeMs``.

Content is addressed by its hash: bytes this exporter uploaded once are never
PUT again, and a value already linked to the same observation and field costs
no request at all (both memories are bounded). A failure never holds the span
back: with a media id the reference goes anyway; without one the value
becomes a marker saying the upload failed. Each failure is logged and counted
in `MediaUploader.stats`. After a POST that failed for want of an answer
(timeout, connection error, 5xx, 429), uploads are skipped for
`UNAVAILABLE_PAUSE` seconds, so that a media API that is down costs the
worker one timeout, not one per value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import attrs

import obshub
from obshub import http
from obshub.media import Media, MediaError, MediaValue, parse_data_uri, sniff_content_type
from obshub.plugin import DEFAULT_LIMITS, RateLimitedLog, json_string
from obshub.spans import Span, SpanEvent

__all__ = [
    "MEDIA_CONTENT_TYPES",
    "MEDIA_PATH",
    "MediaStats",
    "MediaUploader",
    "media_id",
    "reference_string",
    "sha256_base64",
]

MEDIA_PATH = "/api/public/media"
#: The fields of a span media can be in (``field`` of the upload request).
MEDIA_FIELDS = ("input", "output", "metadata")
#: ``MediaContentType`` of Langfuse's API: the types it accepts. Content of any
#: other type is uploaded as ``application/octet-stream``.
MEDIA_CONTENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/webp",
        "image/gif",
        "image/svg+xml",
        "image/tiff",
        "image/bmp",
        "image/avif",
        "image/heic",
        "audio/mpeg",
        "audio/mp3",
        "audio/wav",
        "audio/ogg",
        "audio/oga",
        "audio/aac",
        "audio/mp4",
        "audio/flac",
        "audio/opus",
        "audio/webm",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/mpeg",
        "video/quicktime",
        "video/x-msvideo",
        "video/x-matroska",
        "text/plain",
        "text/html",
        "text/css",
        "text/csv",
        "text/markdown",
        "text/x-python",
        "application/javascript",
        "text/x-typescript",
        "application/x-yaml",
        "application/pdf",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/zip",
        "application/json",
        "application/xml",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/rtf",
        "application/x-ndjson",
        "application/vnd.apache.parquet",
        "application/gzip",
        "application/x-tar",
        "application/x-7z-compressed",
    }
)
_FALLBACK_TYPE = "application/octet-stream"
#: How many content hashes and (hash, trace, observation, field) links are remembered.
MEMORY = 4096
#: Nesting levels searched for media (as deep as the JSON-safe conversion keeps).
MAX_DEPTH = DEFAULT_LIMITS.max_depth
#: Seconds media uploads are skipped after the media API did not answer usefully.
UNAVAILABLE_PAUSE = 30.0
#: Leaf types that never hold media.
_PLAIN = frozenset({int, float, bool, type(None)})
#: Characters of an upload's error body kept for the status patch.
_ERROR_EXCERPT = 500


def sha256_base64(content: bytes) -> str:
    """The base64 SHA-256 of ``content`` (``sha256Hash`` and ``x-amz-checksum-sha256``)."""
    return base64.b64encode(hashlib.sha256(content).digest()).decode("ascii")


def media_id(sha256_hash: str) -> str:
    """The id Langfuse derives from a hash: its first 22 URL-safe base64 characters."""
    return sha256_hash.replace("+", "-").replace("/", "_")[:22]


def reference_string(content_type: str, media_id: str, source: str) -> str:
    """``@@@langfuseMedia:type=<type>|id=<id>|source=<source>@@@``."""
    return f"@@@langfuseMedia:type={content_type}|id={media_id}|source={source}@@@"


@attrs.frozen
class MediaStats:
    """Counters of one exporter's media handling.

    ``found`` media values; ``uploaded`` PUT to storage; ``deduplicated`` not
    PUT because the content was there already (Langfuse said so, or this
    exporter uploaded it); ``failed`` uploads that failed at any step
    (POST, PUT or PATCH); ``unreadable`` values whose content could not be
    read (a missing file, over the size limit, a broken data URI).
    """

    found: int = 0
    uploaded: int = 0
    deduplicated: int = 0
    failed: int = 0
    unreadable: int = 0


class _Bounded:
    """A set that forgets its oldest entries past ``size``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class _Found:
    """One media value's content, ready to upload."""

    __slots__ = ("content", "content_type", "hash", "source")

    def __init__(self, content: bytes, content_type: str, source: str) -> None:
        self.content = content
        self.content_type = content_type
        self.source = source
        self.hash = sha256_base64(content)


class MediaUploader:
    """Replaces media in spans by Langfuse references, uploading what Langfuse lacks.

    ``base_url`` and ``headers`` (a function giving the API headers, with
    credentials) reach the Langfuse API; ``timeout`` bounds every request;
    ``max_bytes`` bounds one media value's content. Used by one exporter's
    worker at a time; `stats` may be read from any thread.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Callable[[str], Mapping[str, str]],
        timeout: float,
        log: Any,
        max_bytes: int = DEFAULT_LIMITS.max_media_bytes,
        proxy: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.proxy = proxy
        self.max_bytes = max_bytes
        self._headers = headers
        self._log = log
        self._limited = RateLimitedLog()
        self._uploaded = _Bounded(MEMORY)  # hash -> True: PUT by this exporter
        self._linked = _Bounded(MEMORY)  # (hash, type, trace, observation, field) -> id
        self._counts = dict.fromkeys(attrs.fields_dict(MediaStats), 0)
        self._counts_lock = threading.Lock()
        #: Seconds uploads are skipped after the media API failed for want of an
        #: answer (a timeout, a connection error, a 5xx or 429 on the POST).
        self.pause = UNAVAILABLE_PAUSE
        self._paused_until = 0.0

    def stats(self) -> MediaStats:
        """A snapshot of the counters."""
        with self._counts_lock:
            return MediaStats(**self._counts)

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    # -- spans -----------------------------------------------------------------------------

    def prepare(self, event: SpanEvent) -> SpanEvent:
        """``event`` with every media value of its span replaced (the same event if none)."""
        span = event.span
        changes: dict[str, Any] = {}
        for field in MEDIA_FIELDS:
            value = getattr(span, field)
            if value is None:
                continue
            replaced = self._walk(value, span, field, 0)
            if replaced is not value:
                changes[field] = replaced
        if not changes:
            return event
        return attrs.evolve(event, span=attrs.evolve(span, **changes))

    def _walk(self, value: Any, span: Span, field: str, depth: int) -> Any:
        # Runs over every value of every span: plain leaves are skipped inline,
        # without a call each (most spans hold no media at all).
        kind = type(value)
        if kind is str:
            if value.startswith("data:") and parse_data_uri(value, decode=False) is not None:
                return self._resolve(Media(data_uri=value), span, field)
            return value
        if kind is MediaValue:
            return self._resolve(value.media, span, field)
        if kind in _PLAIN or depth >= MAX_DEPTH:
            return value
        if isinstance(value, Mapping):
            return self._walk_items(value, value.items(), dict, span, field, depth)
        if isinstance(value, list):
            return self._walk_items(value, enumerate(value), list, span, field, depth)
        if isinstance(value, MediaValue):
            return self._resolve(value.media, span, field)
        return value

    def _walk_items(
        self,
        value: Any,
        pairs: Iterable[tuple[Any, Any]],
        copy: Callable[[Any], Any],
        span: Span,
        field: str,
        depth: int,
    ) -> Any:
        """``value`` (a mapping or a list), copied with ``copy`` at the first item that changes."""
        out: Any = None
        for key, item in pairs:
            item_kind = type(item)
            if item_kind in _PLAIN or (item_kind is str and not item.startswith("data:")):
                continue
            new = self._walk(item, span, field, depth + 1)
            if new is not item:
                if out is None:
                    out = copy(value)
                out[key] = new
        return value if out is None else out

    # -- one media value -----------------------------------------------------------------

    def _read(self, media: Media) -> _Found | None:
        try:
            content = media.read(self.max_bytes)
        except MediaError as exc:
            self._count("unreadable")
            self._limited(
                self._log, "warning", "media_unreadable", error=str(exc), source=media.source
            )
            return None
        content_type = media.declared_type() or sniff_content_type(content[:16])
        if content_type is None:
            content_type = "text/plain" if _is_text(content) else _FALLBACK_TYPE
        content_type = content_type.lower()
        if content_type not in MEDIA_CONTENT_TYPES:
            content_type = _FALLBACK_TYPE
        return _Found(content, content_type, media.source)

    def _resolve(self, media: Media, span: Span, field: str) -> str:
        self._count("found")
        found = self._read(media)
        if found is None:
            return f"{media.marker()[:-1]}: unreadable>"
        link = (found.hash, found.content_type, span.trace_id, span.span_id, field)
        known = self._linked.get(link)
        if known is not None:
            self._count("deduplicated")
            return reference_string(found.content_type, known, found.source)
        if time.monotonic() < self._paused_until:
            # The media API just failed for want of an answer: skip it for a
            # while rather than spend a timeout per value on the worker.
            self._count("failed")
            return f"<media {found.content_type} {len(found.content)} bytes: upload failed>"
        body = {
            "traceId": span.trace_id,
            "observationId": span.span_id,
            "contentType": found.content_type,
            "contentLength": len(found.content),
            "sha256Hash": found.hash,
            "field": field,
        }
        try:
            response = http.post(
                f"{self.base_url}{MEDIA_PATH}",
                json_string(body).encode("utf-8"),
                self._headers("application/json"),
                timeout=self.timeout,
                proxy=self.proxy,
            )
            answer = _json(response.body)
            given_id = answer.get("mediaId")
            if not isinstance(given_id, str) or not given_id:
                raise obshub.ExportError("POST /api/public/media: answer without a mediaId")
        except obshub.ExportError as exc:
            self._failed("POST", exc, found)
            if exc.retryable:
                self._paused_until = time.monotonic() + self.pause
            return f"<media {found.content_type} {len(found.content)} bytes: upload failed>"
        upload_url = answer.get("uploadUrl")
        complete = True
        if not upload_url or self._uploaded.get(found.hash):
            self._count("deduplicated")
        else:
            complete = self._upload(str(upload_url), given_id, found)
        if complete:
            self._uploaded.put(found.hash, True)
            self._linked.put(link, given_id)
        return reference_string(found.content_type, given_id, found.source)

    def _upload(self, url: str, given_id: str, found: _Found) -> bool:
        """PUT the content, then PATCH its status; True when both succeeded."""
        headers = {"Content-Type": found.content_type}
        # Google Cloud Storage refuses these headers on a signed URL (as the SDK notes).
        if "storage.googleapis.com" not in url:
            headers["x-amz-checksum-sha256"] = found.hash
            headers["x-ms-blob-type"] = "BlockBlob"
        started = time.perf_counter()
        try:
            response = http.request(
                "PUT",
                url,
                body=found.content,
                headers=headers,
                timeout=self.timeout,
                proxy=self.proxy,
                raise_for_status=False,
            )
        except obshub.ExportError as exc:
            # No status to report: Langfuse keeps offering the upload URL until one succeeds.
            self._failed("PUT", exc, found)
            return False
        took = int((time.perf_counter() - started) * 1000)
        ok = 200 <= response.status < 300
        status_error = None
        if not ok:
            status_error = response.body[:_ERROR_EXCERPT].decode("utf-8", "replace")
            self._failed(
                "PUT",
                obshub.ExportError(
                    f"PUT {http.safe_url(url)}: HTTP {response.status}", status=response.status
                ),
                found,
            )
        patch = {
            "uploadedAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "uploadHttpStatus": response.status,
            "uploadHttpError": status_error,
            "uploadTimeMs": took,
        }
        try:
            http.request(
                "PATCH",
                f"{self.base_url}{MEDIA_PATH}/{quote(given_id, safe='')}",
                body=json_string(patch).encode("utf-8"),
                headers=self._headers("application/json"),
                timeout=self.timeout,
                proxy=self.proxy,
            )
        except obshub.ExportError as exc:
            if ok:
                self._failed("PATCH", exc, found)
            return False
        if ok:
            self._count("uploaded")
            self._log.debug(
                "media_uploaded",
                media_id=given_id,
                content_type=found.content_type,
                bytes=len(found.content),
                upload_ms=took,
            )
        return ok

    def _failed(self, step: str, exc: obshub.ExportError, found: _Found) -> None:
        self._count("failed")
        self._limited(
            self._log,
            "warning",
            "media_upload_failed",
            limit_key=step,
            step=step,
            error=str(exc),
            status=exc.status,
            content_type=found.content_type,
            bytes=len(found.content),
            effect="the span is sent; the media is missing in Langfuse",
        )


def _is_text(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
