"""The media part of the Langfuse stand-in (mixed into `LangfuseStandIn`).

It emulates Langfuse's media API and the object storage behind it:

- ``POST /api/public/media``: checks the request as Langfuse does
  (``GetMediaUploadUrlRequest``); answers ``201`` with the ``mediaId``
  (Langfuse's derivation: the first 22 URL-safe base64 characters of the
  hash) and an ``uploadUrl`` on the stand-in itself, or no ``uploadUrl``
  when content with that hash and type was uploaded already (status 200);
- ``PUT /media-upload/<mediaId>``: the presigned URL. Like S3 it refuses an
  ``Authorization`` header, a ``Content-Type`` or length other than the one
  signed, and an ``x-amz-checksum-sha256`` that is not the content's;
- ``PATCH /api/public/media/<mediaId>``: the upload status
  (``PatchMediaBody``), answered ``204``;
- ``GET /api/public/media/<mediaId>``: ``GetMediaResponse``, with a download
  URL on the stand-in (``GET /media-download/<mediaId>``).

Faults are injected with `LangfuseStandIn.inject` under ``media`` (the POST),
``media-upload`` (the PUT), ``media-patch`` and ``media-get``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

from obshub.testing import DEFAULT_TIMEOUT, wait_for_count
from obshub.testing.server import IncomingRequest, Reply
from obshub.testing.server import Rejected as _Rejected
from obshub_langfuse.media import MEDIA_CONTENT_TYPES, MEDIA_FIELDS, MEDIA_PATH

__all__ = [
    "MEDIA_DOWNLOAD_PREFIX",
    "MEDIA_UPLOAD_PREFIX",
    "MediaEmulation",
    "MediaLink",
    "MediaRecord",
]

MEDIA_UPLOAD_PREFIX = "/media-upload/"
MEDIA_DOWNLOAD_PREFIX = "/media-download/"
_ITEM_PREFIX = MEDIA_PATH + "/"
#: Fault keys of the media routes other than the POST (whose key is its path).
MEDIA_FAULT_KEYS = ("media-upload", "media-patch", "media-get")
_UPLOAD_KEYS = frozenset(
    {
        "traceId",
        "observationId",
        "datasetId",
        "datasetItemId",
        "contentType",
        "contentLength",
        "sha256Hash",
        "field",
    }
)
_PATCH_KEYS = frozenset({"uploadedAt", "uploadHttpStatus", "uploadHttpError", "uploadTimeMs"})


@attrs.frozen
class MediaLink:
    """Where a media record is used: a trace, optionally one observation, and a field."""

    trace_id: str
    observation_id: str | None
    field: str


@attrs.frozen
class MediaRecord:
    """A media record: what was announced, what was uploaded, the reported status.

    ``content`` is None until a PUT stored it; ``upload_http_status`` and the
    rest are as the client's PATCH reported them; ``links`` lists every
    trace/observation/field the media was announced for, in order.
    """

    id: str
    content_type: str
    content_length: int
    sha256_hash: str
    content: bytes | None = None
    upload_http_status: int | None = None
    upload_http_error: str | None = None
    upload_time_ms: int | None = None
    uploaded_at: str | None = None
    links: tuple[MediaLink, ...] = ()


def fault_key(method: str, path: str) -> str:
    """The key faults and request filters use for a request (its path, or a media key)."""
    if path.startswith(MEDIA_UPLOAD_PREFIX):
        return "media-upload"
    if path.startswith(_ITEM_PREFIX):
        return "media-patch" if method == "PATCH" else "media-get"
    return path


def json_body(incoming: IncomingRequest) -> dict[str, Any]:
    try:
        data = json.loads(incoming.body)
    except ValueError:
        raise _Rejected(400, "invalid JSON") from None
    if not isinstance(data, dict):
        raise _Rejected(400, "expected a JSON object")
    return data


def _reply(status: int, payload: Any = None) -> Reply:
    if payload is None:
        return Reply(status)
    body = json.dumps(payload).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json"})


class MediaEmulation:
    """Langfuse's media API and storage; state lives under the stand-in's condition."""

    _cond: threading.Condition

    @property
    def url(self) -> str:
        raise NotImplementedError  # the stand-in's base URL

    def _media_init(self) -> None:
        self._media: dict[str, MediaRecord] = {}

    # -- accessors -----------------------------------------------------------------------

    def media(self) -> list[MediaRecord]:
        """Every media record, in the order they were announced."""
        with self._cond:
            return list(self._media.values())

    def media_record(self, media_id: str) -> MediaRecord:
        """The media record ``media_id`` (KeyError if none)."""
        with self._cond:
            return self._media[media_id]

    def wait_for_media(self, count: int, *, timeout: float = DEFAULT_TIMEOUT) -> list[MediaRecord]:
        """Block until ``count`` media records hold uploaded content; return those records.

        Raises `TimeoutError` saying how many were uploaded if not within ``timeout``.
        """
        return wait_for_count(
            lambda: [m for m in self._media.values() if m.content is not None],
            count,
            condition=self._cond,
            timeout=timeout,
            what="uploaded media",
        )

    def _media_clear(self) -> None:
        self._media.clear()

    # -- routes --------------------------------------------------------------------------

    def _media_route(self, incoming: IncomingRequest, authorised: bool) -> Reply | None:
        """The answer to a media request (None: not a media route)."""
        path, method = incoming.path, incoming.method
        try:
            if path == MEDIA_PATH:
                if method != "POST":
                    return _reply(405, {"message": "method not allowed"})
                if not authorised:
                    return _reply(401, {"message": "unauthorised"})
                return self._announce(incoming)
            if path.startswith(MEDIA_UPLOAD_PREFIX) and method == "PUT":
                return self._store(incoming, path[len(MEDIA_UPLOAD_PREFIX) :])
            if path.startswith(MEDIA_DOWNLOAD_PREFIX) and method == "GET":
                return self._download(path[len(MEDIA_DOWNLOAD_PREFIX) :])
            if path.startswith(_ITEM_PREFIX):
                if not authorised:
                    return _reply(401, {"message": "unauthorised"})
                media_id = path[len(_ITEM_PREFIX) :]
                if method == "PATCH":
                    return self._patch(incoming, media_id)
                if method == "GET":
                    return self._get(media_id)
                return _reply(405, {"message": "method not allowed"})
        except _Rejected as rejected:
            return _reply(rejected.status, {"message": rejected.message})
        return None

    def _announce(self, incoming: IncomingRequest) -> Reply:
        data = json_body(incoming)
        unknown = sorted(set(data) - _UPLOAD_KEYS)
        if unknown:
            raise _Rejected(400, f"unknown GetMediaUploadUrlRequest field(s): {', '.join(unknown)}")
        content_type = data.get("contentType")
        if content_type not in MEDIA_CONTENT_TYPES:
            raise _Rejected(400, f"unsupported contentType {content_type!r}")
        length = data.get("contentLength")
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise _Rejected(400, "contentLength must be a positive integer")
        digest = data.get("sha256Hash")
        try:
            valid = isinstance(digest, str) and len(base64.b64decode(digest, validate=True)) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise _Rejected(400, "sha256Hash must be the base64 SHA-256 of the content")
        assert isinstance(digest, str)
        field = data.get("field")
        if field not in MEDIA_FIELDS:
            raise _Rejected(400, f"field must be one of {', '.join(MEDIA_FIELDS)}")
        trace_id, observation_id = data.get("traceId"), data.get("observationId")
        if not isinstance(trace_id, str) or not trace_id:
            raise _Rejected(400, "traceId is required for trace media")
        if observation_id is not None and not isinstance(observation_id, str):
            raise _Rejected(400, "observationId must be a string or null")
        link = MediaLink(trace_id, observation_id, field)
        with self._cond:
            existing = next((m for m in self._media.values() if m.sha256_hash == digest), None)
            if (
                existing is not None
                and existing.upload_http_status == 200
                and existing.content_type == content_type
            ):
                if link not in existing.links:
                    self._media[existing.id] = attrs.evolve(existing, links=(*existing.links, link))
                return _reply(201, {"mediaId": existing.id, "uploadUrl": None})
            media_id = (
                existing.id
                if existing is not None
                else digest.replace("+", "-").replace("/", "_")[:22]
            )
            links = existing.links if existing is not None else ()
            self._media[media_id] = MediaRecord(
                id=media_id,
                content_type=content_type,
                content_length=length,
                sha256_hash=digest,
                content=None if existing is None else existing.content,
                links=links if link in links else (*links, link),
            )
            self._cond.notify_all()
        upload_url = f"{self.url}{MEDIA_UPLOAD_PREFIX}{media_id}?X-Amz-Signature=stand-in"
        return _reply(201, {"mediaId": media_id, "uploadUrl": upload_url})

    def _store(self, incoming: IncomingRequest, media_id: str) -> Reply:
        with self._cond:
            record = self._media.get(media_id)
        if record is None:
            raise _Rejected(404, "NoSuchUpload")
        headers = incoming.headers
        if "authorization" in headers:
            raise _Rejected(400, "Only one auth mechanism allowed (the URL is signed)")
        if headers.get("content-type") != record.content_type:
            raise _Rejected(403, "SignatureDoesNotMatch: Content-Type differs from the signed one")
        if len(incoming.body) != record.content_length:
            raise _Rejected(403, "SignatureDoesNotMatch: Content-Length differs")
        actual = base64.b64encode(hashlib.sha256(incoming.body).digest()).decode("ascii")
        if (
            headers.get("x-amz-checksum-sha256") != record.sha256_hash
            or actual != record.sha256_hash
        ):
            raise _Rejected(400, "BadDigest: x-amz-checksum-sha256 does not match the content")
        with self._cond:
            current = self._media.get(media_id, record)
            self._media[media_id] = attrs.evolve(current, content=incoming.body)
            self._cond.notify_all()
        return Reply(200)

    def _patch(self, incoming: IncomingRequest, media_id: str) -> Reply:
        data = json_body(incoming)
        unknown = sorted(set(data) - _PATCH_KEYS)
        if unknown:
            raise _Rejected(400, f"unknown PatchMediaBody field(s): {', '.join(unknown)}")
        uploaded_at, status = data.get("uploadedAt"), data.get("uploadHttpStatus")
        if not isinstance(uploaded_at, str):
            raise _Rejected(400, "uploadedAt (date-time) is required")
        try:
            datetime.fromisoformat(uploaded_at.replace("Z", "+00:00"))
        except ValueError:
            raise _Rejected(400, "uploadedAt must be a date-time") from None
        if isinstance(status, bool) or not isinstance(status, int):
            raise _Rejected(400, "uploadHttpStatus (integer) is required")
        error, took = data.get("uploadHttpError"), data.get("uploadTimeMs")
        if error is not None and not isinstance(error, str):
            raise _Rejected(400, "uploadHttpError must be a string or null")
        if took is not None and (isinstance(took, bool) or not isinstance(took, int)):
            raise _Rejected(400, "uploadTimeMs must be an integer or null")
        with self._cond:
            record = self._media.get(media_id)
            if record is None:
                raise _Rejected(404, "media not found")
            self._media[media_id] = attrs.evolve(
                record,
                upload_http_status=status,
                upload_http_error=error,
                upload_time_ms=took,
                uploaded_at=uploaded_at,
            )
            self._cond.notify_all()
        return Reply(204)

    def _get(self, media_id: str) -> Reply:
        with self._cond:
            record = self._media.get(media_id)
        if record is None or record.uploaded_at is None:
            raise _Rejected(404, "media not found")
        expiry = datetime.now(timezone.utc) + timedelta(hours=1)
        return _reply(
            200,
            {
                "mediaId": record.id,
                "contentType": record.content_type,
                "contentLength": record.content_length,
                "uploadedAt": record.uploaded_at,
                "url": f"{self.url}{MEDIA_DOWNLOAD_PREFIX}{record.id}",
                "urlExpiry": expiry.isoformat(),
            },
        )

    def _download(self, media_id: str) -> Reply:
        with self._cond:
            record = self._media.get(media_id)
        if record is None or record.content is None:
            raise _Rejected(404, "NoSuchKey")
        return Reply(200, record.content, {"Content-Type": record.content_type})


def media_aliases() -> Mapping[str, str]:
    """Names `LangfuseStandIn.inject` and ``requests`` accept for the media routes."""
    return {"media": MEDIA_PATH, **{key: key for key in MEDIA_FAULT_KEYS}}
