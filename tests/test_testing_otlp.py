"""obshub.testing.otlp: what a test receiver uses to read the OTLP it was sent."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from obshub.testing.otlp import (
    HTTP_JSON,
    HTTP_PROTOBUF,
    any_value,
    attribute_map,
    decode_traces,
    hex_ids_to_base64,
)
from obshub.testing.server import Rejected

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def _request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(TRACE_ID)
    span.span_id = bytes.fromhex(SPAN_ID)
    span.name = "agent"
    tags = span.attributes.add(key="tags").value.array_value.values
    tags.add(string_value="a")
    tags.add(int_value=2)
    usage = span.attributes.add(key="usage").value.kvlist_value.values
    usage.add(key="input").value.int_value = 10
    span.attributes.add(key="ok").value.bool_value = True
    span.attributes.add(key="unset")
    return request


def test_a_protobuf_body_decodes_to_plain_attribute_values() -> None:
    decoded = decode_traces(_request().SerializeToString(), HTTP_PROTOBUF)
    (span,) = decoded.resource_spans[0].scope_spans[0].spans
    assert (span.trace_id.hex(), span.span_id.hex(), span.name) == (TRACE_ID, SPAN_ID, "agent")
    assert attribute_map(span.attributes) == {
        "tags": ["a", 2],
        "usage": {"input": 10},
        "ok": True,
        "unset": None,
    }
    assert any_value(span.attributes[0].value) == ["a", 2]


def test_otlp_json_takes_hex_ids_and_ignores_unknown_fields() -> None:
    document = json_format.MessageToDict(_request())
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"], span["spanId"] = TRACE_ID, SPAN_ID
    span["fieldFromTheFuture"] = 1
    decoded = decode_traces(json.dumps(document).encode(), HTTP_JSON)
    assert decoded.resource_spans[0].scope_spans[0].spans[0].trace_id.hex() == TRACE_ID
    assert decode_traces(b"", HTTP_JSON) == ExportTraceServiceRequest()


@pytest.mark.parametrize(
    ("body", "protocol", "message"),
    [
        (b"\xff\xff\xff", HTTP_PROTOBUF, "invalid protobuf body"),
        (b"{not json", HTTP_JSON, "invalid JSON body"),
        (b"[1, 2]", HTTP_JSON, "not a JSON object"),
        (b'{"resourceSpans": 5}', HTTP_JSON, "invalid OTLP/JSON body"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            HTTP_JSON,
            "traceId is not hex",
        ),
    ],
)
def test_a_broken_body_is_rejected_with_400(body: bytes, protocol: str, message: str) -> None:
    with pytest.raises(Rejected) as caught:
        decode_traces(body, protocol)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_an_unknown_protocol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="grpc"):
        decode_traces(b"", "grpc")


def test_hex_ids_become_base64_only_in_id_fields() -> None:
    converted = hex_ids_to_base64({"spanId": "00ff", "name": "00ff", "list": [{"traceId": "01"}]})
    assert converted == {"spanId": "AP8=", "name": "00ff", "list": [{"traceId": "AQ=="}]}


def test_the_kit_imports_without_opentelemetry_proto() -> None:
    script = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.startswith(("opentelemetry", "google.protobuf")):
                    raise ImportError(f"blocked {name}")
                return None

        sys.meta_path.insert(0, Block())
        import obshub.testing, obshub.testing.net, obshub.testing.otlp, obshub.testing.server
        try:
            obshub.testing.otlp.decode_traces(b"")
        except ImportError:
            print("decode needs it")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "decode needs it"), done.stderr
