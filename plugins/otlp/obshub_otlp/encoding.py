"""The OTLP encoding of obshub spans, shared by every exporter that speaks OTLP.

The public face of the encoder (the implementation is ``obshub_otlp._encoding``),
as ``opentelemetry-exporter-otlp-proto-common`` is for the OpenTelemetry SDK's
exporters. The ``otlp`` exporter uses it, and so does ``obshub-langfuse``,
which depends on this distribution for it:

- `encode_spans`: a batch of `obshub.SpanEvent` as one
  ``ExportTraceServiceRequest``, with the GenAI semantic conventions and a
  backend's own attributes (``extra_attributes``); ``cache_key`` shares one
  encoding of a span across the exporters of a config;
- `encode_spans_protobuf`: the same request as protobuf bytes, written
  directly (no message objects): what the exporters send;
  `encode_spans_parts` gives those bytes in parts (one per span), to
  compress without joining them first (`obshub_otlp.wire.gzip_body`);
- `span_attributes`: the attributes obshub derives for one span, in the
  conventions asked for (`CONVENTIONS`: ``"genai"``, ``"openinference"``);
- `request_to_json`: the OTLP/JSON form of a request;
- `AttrValue`, `ExtraAttributes`: the types of attribute values and of the hook;
- `SCOPE_NAME`, `GENAI_OPERATIONS`, `GENAI_PARAMETERS`, `OPENINFERENCE_KINDS`,
  `COST_ATTRIBUTES`: the names used.

Everything else in ``_encoding`` may change without notice.
"""

from __future__ import annotations

from obshub_otlp._encoding import (
    SCOPE_NAME,
    AttrValue,
    Conventions,
    ExtraAttributes,
    encode_spans,
    encode_spans_parts,
    encode_spans_protobuf,
    request_to_json,
    span_attributes,
)
from obshub_otlp._semconv import (
    CONVENTIONS,
    COST_ATTRIBUTES,
    GENAI_OPERATIONS,
    GENAI_PARAMETERS,
    OPENINFERENCE_KINDS,
)

__all__ = [
    "CONVENTIONS",
    "COST_ATTRIBUTES",
    "GENAI_OPERATIONS",
    "GENAI_PARAMETERS",
    "OPENINFERENCE_KINDS",
    "SCOPE_NAME",
    "AttrValue",
    "Conventions",
    "ExtraAttributes",
    "encode_spans",
    "encode_spans_parts",
    "encode_spans_protobuf",
    "request_to_json",
    "span_attributes",
]
