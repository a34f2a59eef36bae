"""What the OTLP exporter adds to obshub's GenAI attributes: the span's content.

`obshub.otlp.span_attributes` carries the GenAI semantic conventions
(model, provider, parameters, token usage, session, user). A span's input,
output, metadata and tags have no attribute there; they are sent under the
OpenInference names, which Phoenix, Arize and Langfuse read from any OTLP
source:

======================  =====================================================
``input.value``         the input: a string as it is, anything else as JSON
``input.mime_type``     ``text/plain`` or ``application/json``
``output.value``        the output, the same way
``output.mime_type``    ``text/plain`` or ``application/json``
``metadata``            the metadata, as a JSON object
``tag.tags``            the tags, as a list of strings
======================  =====================================================

An attribute the application set itself (``span.attributes``) is never
overwritten.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import attrs

from obshub.otlp import AttrValue, json_string
from obshub.spans import Span

__all__ = [
    "CONTENT_ATTRIBUTES",
    "TRUNCATE_ABOVE_BYTES",
    "content_attributes",
    "truncated",
    "truncation_marker",
]

#: The attribute names of each content field (value, MIME type).
CONTENT_ATTRIBUTES: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {"input": ("input.value", "input.mime_type"), "output": ("output.value", "output.mime_type")}
)
METADATA_ATTRIBUTE = "metadata"
TAGS_ATTRIBUTE = "tag.tags"
#: A field of an oversize span larger than this (as JSON) is replaced by a marker.
TRUNCATE_ABOVE_BYTES = 1024
_TRUNCATED_FIELDS = ("input", "output", "metadata", "attributes")


def content_attributes(span: Span) -> dict[str, AttrValue]:
    """The content attributes of ``span`` (see the module's table); None values are left out."""
    out: dict[str, AttrValue] = {}
    for field, (value_key, mime_key) in CONTENT_ATTRIBUTES.items():
        value = getattr(span, field)
        if value is None:
            continue
        if isinstance(value, str):
            out[value_key] = value
            out[mime_key] = "text/plain"
        else:
            out[value_key] = json_string(value)
            out[mime_key] = "application/json"
    if span.metadata:
        out[METADATA_ATTRIBUTE] = json_string(dict(span.metadata))
    if span.tags:
        out[TAGS_ATTRIBUTE] = list(span.tags)
    return {key: value for key, value in out.items() if key not in span.attributes}


def truncation_marker(size: int) -> str:
    """What replaces a field too large to send: ``[obshub: truncated, 123456 bytes]``."""
    return f"[obshub: truncated, {size} bytes]"


def truncated(span: Span) -> Span:
    """``span`` with each large input, output, metadata and attributes replaced by a marker.

    A field is replaced when its JSON form exceeds `TRUNCATE_ABOVE_BYTES`;
    metadata and attributes become ``{"obshub.truncated": <marker>}``.
    """
    changes: dict[str, Any] = {}
    for field in _TRUNCATED_FIELDS:
        value = getattr(span, field)
        if value is None:
            continue
        size = len(json_string(value).encode("utf-8"))
        if size <= TRUNCATE_ABOVE_BYTES:
            continue
        marker = truncation_marker(size)
        changes[field] = (
            {"obshub.truncated": marker} if field in ("metadata", "attributes") else marker
        )
    return attrs.evolve(span, **changes) if changes else span
