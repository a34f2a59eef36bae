"""What the OTLP exporter adds to obshub's GenAI attributes: the span's content.

`obshub_otlp.encoding.span_attributes` carries the GenAI semantic conventions
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

from obshub.plugin import json_string
from obshub.spans import Span
from obshub_otlp.encoding import AttrValue

__all__ = [
    "CONTENT_ATTRIBUTES",
    "content_attributes",
]

#: The attribute names of each content field (value, MIME type).
CONTENT_ATTRIBUTES: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {"input": ("input.value", "input.mime_type"), "output": ("output.value", "output.mime_type")}
)
METADATA_ATTRIBUTE = "metadata"
TAGS_ATTRIBUTE = "tag.tags"


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
