"""Binary attachments (images, audio, PDFs) in a span's input, output or metadata.

Three ways in, all anywhere in ``input``, ``output`` or ``metadata``:

- ``bytes`` (``bytearray``, ``memoryview``): kept as media when they are not
  short UTF-8 text;
- a base64 data URI string (``"data:image/png;base64,iVBOR..."``);
- an `obshub.Media` value, e.g. ``obshub.Media.from_file("report.pdf")``.

Recording does no work: a `Media` holds a reference (to the bytes, the data
URI or the file path). On the exporter's worker the JSON-safe conversion
turns media into a `MediaValue`: a string, so every exporter can write it as
JSON (the JSONL and console exporters show that marker, ``"<5124 bytes>"``),
that still carries the `Media` for exporters that upload content (Langfuse).
Content over `obshub._serialization.Limits.max_media_bytes` (20 MiB by
default) is not kept: the marker alone remains.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from pathlib import PurePath
from typing import Literal

import attrs

__all__ = ["Media", "MediaError", "MediaValue", "parse_data_uri", "sniff_content_type"]

MediaSource = Literal["bytes", "base64_data_uri", "file"]


class MediaError(Exception):
    """Media content could not be read (file gone, too large, broken data URI)."""


def _path(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


@attrs.frozen(eq=False, repr=False)
class Media:
    """A binary attachment: raw ``data``, a file at ``path``, or a base64 ``data_uri``.

    Exactly one of the three is set. ``content_type`` is a MIME type such as
    ``image/png``; when not given it is taken from the data URI, guessed from
    the file name, or sniffed from the content's first bytes. Building one
    reads nothing: files are read (and data URIs decoded) on the exporter's
    worker, when an exporter asks for the content.
    """

    data: bytes | bytearray | memoryview | None = None
    path: str | None = attrs.field(default=None, converter=_path)
    data_uri: str | None = None
    content_type: str | None = None

    def __attrs_post_init__(self) -> None:
        given = sum(x is not None for x in (self.data, self.path, self.data_uri))
        if given != 1:
            raise ValueError("Media takes exactly one of data, path or data_uri")

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, content_type: str | None = None
    ) -> Media:
        """Media holding ``data`` (``content_type`` sniffed when not given)."""
        return cls(data=data, content_type=content_type)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], content_type: str | None = None) -> Media:
        """Media read from ``path`` on the exporter's worker (type guessed from the name)."""
        return cls(path=os.fspath(path), content_type=content_type)

    @classmethod
    def from_data_uri(cls, uri: str) -> Media:
        """Media holding a base64 data URI (``data:<type>;base64,<data>``)."""
        return cls(data_uri=uri)

    @property
    def source(self) -> MediaSource:
        """Where the content comes from: ``bytes``, ``base64_data_uri`` or ``file``."""
        if self.path is not None:
            return "file"
        if self.data_uri is not None:
            return "base64_data_uri"
        return "bytes"

    def declared_type(self) -> str | None:
        """The content type given, from the data URI, or guessed from the file name."""
        if self.content_type:
            return self.content_type
        if self.data_uri is not None:
            parsed = parse_data_uri(self.data_uri, decode=False)
            return parsed[0] if parsed else None
        if self.path is not None:
            guessed, _ = mimetypes.guess_type(self.path, strict=False)
            return guessed
        if self.data is not None:
            return sniff_content_type(bytes(memoryview(self.data)[:16]))
        return None

    def read(self, max_bytes: int) -> bytes:
        """The content (at most ``max_bytes``); `MediaError` when it cannot be had.

        Reads the file or decodes the data URI: call it on a worker thread.
        """
        if self.data is not None:
            size = memoryview(self.data).nbytes
            if size > max_bytes:
                raise MediaError(f"{size} bytes, over the {max_bytes} byte limit")
            return bytes(self.data)
        if self.data_uri is not None:
            if len(self.data_uri) > max_bytes * 4 // 3 + 1024:
                raise MediaError(f"data URI over the {max_bytes} byte limit")
            parsed = parse_data_uri(self.data_uri)
            if parsed is None:
                raise MediaError("not a base64 data URI")
            return parsed[1]
        assert self.path is not None
        try:
            with open(self.path, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size > max_bytes:
                    raise MediaError(f"file of {size} bytes, over the {max_bytes} byte limit")
                content = file.read(max_bytes + 1)
        except OSError as exc:
            raise MediaError(f"cannot read {PurePath(self.path).name}: {exc.strerror}") from None
        if len(content) > max_bytes:
            raise MediaError(f"file over the {max_bytes} byte limit")
        return content

    def marker(self, size: int | None = None) -> str:
        """The text other exporters show: ``<media image/png 5124 bytes>``."""
        kind = self.declared_type()
        words = ["media"] if kind is None else ["media", kind]
        if self.path is not None:
            words += ["file", PurePath(self.path).name]
        else:
            if size is None and self.data is not None:
                size = memoryview(self.data).nbytes
            if size is not None:
                words += [str(size), "bytes"]
        return f"<{' '.join(words)}>"

    def __repr__(self) -> str:
        return f"Media({self.marker()})"


class MediaValue(str):
    """The JSON-safe form of media in a span: a marker string that keeps the `Media`.

    It is a ``str``, so it is JSON as it stands (exporters that ignore media
    write the marker); exporters that upload media find it with
    ``isinstance(value, MediaValue)`` and read ``value.media``.
    """

    media: Media

    def __new__(cls, text: str, media: Media) -> MediaValue:
        self = super().__new__(cls, text)
        self.media = media
        return self

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        # Pickled (or deep-copied) it becomes its plain marker: content stays in memory only.
        return (str, (str(self),))


_BASE64 = ";base64"


def parse_data_uri(uri: str, *, decode: bool = True) -> tuple[str, bytes] | None:
    """``(content type, content)`` of a base64 data URI, or None if ``uri`` is none.

    With ``decode=False`` the content is not decoded (``b""``): a cheap test.
    """
    if not uri.startswith("data:"):
        return None
    header, comma, payload = uri[5:].partition(",")
    if not comma or not header.endswith(_BASE64):
        return None
    content_type = header[: -len(_BASE64)].split(";", 1)[0].strip().lower()
    if not content_type or "/" not in content_type:
        return None
    if not decode:
        return content_type, b""
    try:
        return content_type, base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def sniff_content_type(head: bytes) -> str | None:
    """The MIME type the first bytes of a file announce, or None if unknown."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:12] == b"M4A " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    return None
