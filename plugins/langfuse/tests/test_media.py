"""Media: uploaded through Langfuse's media API and replaced by reference strings."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_langfuse.media import media_id, reference_string
from obshub_langfuse.testing import Fault, LangfuseStandIn, MediaLink
from structlog.testing import capture_logs

import obshub
from obshub import http

MakeHub = Callable[..., obshub.Hub]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20  # 5128 bytes: today's "<5128 bytes>"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256))
PDF = b"%PDF-1.7\n" + b"0" * 3000


def digest(content: bytes) -> str:
    return base64.b64encode(hashlib.sha256(content).digest()).decode()


def ref(content_type: str, content: bytes, source: str) -> str:
    return reference_string(content_type, media_id(digest(content)), source)


def exporter_of(hub: obshub.Hub) -> LangfuseExporter:
    (config,) = hub.configs.values()
    (exporter,) = config.exporters
    assert isinstance(exporter, LangfuseExporter)
    return exporter


def test_image_bytes_in_input_are_uploaded_and_referenced(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with hub.span("vision", type="model_generation", input={"image": PNG, "q": "what?"}) as span:
        pass
    assert hub.flush(5)
    observation = server.observation("vision")
    assert observation.input == {"image": ref("image/png", PNG, "bytes"), "q": "what?"}
    (record,) = server.media()
    assert record.content == PNG
    assert record.content_type == "image/png"
    assert record.upload_http_status == 200
    assert record.upload_time_ms is not None
    assert record.links == (MediaLink(span.trace_id, span.span_id, "input"),)
    (post,) = server.requests("media")
    assert json.loads(post.body) == {
        "traceId": span.trace_id,
        "observationId": span.span_id,
        "contentType": "image/png",
        "contentLength": len(PNG),
        "sha256Hash": digest(PNG),
        "field": "input",
    }
    (put,) = server.requests("media-upload")
    assert put.headers["content-type"] == "image/png"
    assert put.headers["x-amz-checksum-sha256"] == digest(PNG)
    assert "authorization" not in put.headers  # the URL is signed: no credentials to storage
    (patch,) = server.requests("media-patch")
    assert json.loads(patch.body)["uploadHttpStatus"] == 200
    assert exporter_of(hub).media is not None
    stats = exporter_of(hub).media.stats()  # type: ignore[union-attr]
    assert (stats.found, stats.uploaded, stats.failed) == (1, 1, 0)
    # And Langfuse serves it back (what the UI does with the reference).
    auth = {"Authorization": http.basic_auth(server.public_key, server.secret_key)}
    got = json.loads(http.get(f"{server.url}/api/public/media/{record.id}", auth).body)
    assert (got["mediaId"], got["contentType"], got["contentLength"]) == (
        record.id,
        "image/png",
        len(PNG),
    )
    assert http.get(got["url"]).body == PNG


def test_a_data_uri_in_output_is_uploaded_with_its_type(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    uri = "data:audio/wav;base64," + base64.b64encode(WAV).decode()
    hub = make_hub()
    with hub.span("speak", type="model_generation") as span:
        span.update(output=[{"type": "audio", "data": uri}])
    assert hub.flush(5)
    output = server.observation("speak").output
    assert output == [{"type": "audio", "data": ref("audio/wav", WAV, "base64_data_uri")}]
    (record,) = server.media()
    assert (record.content, record.links[0].field) == (WAV, "output")


def test_a_long_data_uri_is_uploaded_whole_not_truncated(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    big = PNG * 40  # 205 kB: a data URI of 273k characters, over the 100k string limit
    hub = make_hub()
    with hub.span("vision", input="data:image/png;base64," + base64.b64encode(big).decode()):
        pass
    assert hub.flush(5)
    assert server.observation("vision").input == ref("image/png", big, "base64_data_uri")
    assert server.media()[0].content == big


def test_a_file_in_metadata_is_read_on_the_worker_and_uploaded(
    make_hub: MakeHub, server: LangfuseStandIn, tmp_path: Path
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(PDF)
    hub = make_hub()
    with hub.span("summarise", metadata={"attachment": obshub.Media.from_file(report)}):
        pass
    assert hub.flush(5)
    metadata = server.observation("summarise").metadata
    assert metadata["attachment"] == ref("application/pdf", PDF, "file")
    (record,) = server.media()
    assert (record.content, record.links[0].field) == (PDF, "metadata")


def test_a_repeat_is_linked_but_never_uploaded_twice(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with hub.span("agent", type="agent_run", input={"image": PNG}) as agent:
        with hub.span("look", type="tool_call", input={"image": PNG}) as look:
            pass
        with hub.span("again", type="tool_call", input=[PNG, PNG]) as again_span:
            pass
    assert hub.flush(5)
    (record,) = server.media()
    assert len(server.requests("media-upload")) == 1  # one PUT for one content
    # Each observation is linked (what the UI lists as its attachments), once.
    linked = [link.observation_id for link in record.links]
    assert sorted(linked) == sorted([agent.span_id, look.span_id, again_span.span_id])
    assert len(server.requests("media")) == 3
    again = server.observation("again").input
    assert again == [ref("image/png", PNG, "bytes")] * 2
    stats = exporter_of(hub).media.stats()  # type: ignore[union-attr]
    assert (stats.found, stats.uploaded, stats.deduplicated) == (4, 1, 3)


def test_content_langfuse_already_holds_is_not_uploaded_again(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    first = make_hub()
    with first.span("one", input=PNG):
        pass
    assert first.flush(5)
    second = make_hub()  # a new process: its own memory is empty
    with second.span("two", input=PNG):
        pass
    assert second.flush(5)
    assert len(server.requests("media")) == 2
    assert len(server.requests("media-upload")) == 1
    assert server.observation("two").input == ref("image/png", PNG, "bytes")


def test_post_failure_sends_the_span_with_a_marker(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    server.inject("media", Fault.error(400))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("vision", input={"image": PNG}):
            pass
        assert hub.flush(5)
    assert server.observation("vision").input == {
        "image": f"<media image/png {len(PNG)} bytes: upload failed>"
    }
    (warning,) = [r for r in logs if r["event"] == "media_upload_failed"]
    assert (warning["step"], warning["status"]) == ("POST", 400)
    assert exporter_of(hub).media.stats().failed == 1  # type: ignore[union-attr]
    assert server.requests("media-upload") == []


def test_put_refused_sends_the_span_with_the_reference_and_reports_the_status(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    server.inject("media-upload", Fault.error(403))
    hub = make_hub()
    with capture_logs() as logs:
        with hub.span("vision", input={"image": PNG}):
            pass
        assert hub.flush(5)
    assert server.observation("vision").input == {"image": ref("image/png", PNG, "bytes")}
    (record,) = server.media()
    assert record.content is None
    assert record.upload_http_status == 403
    assert record.upload_http_error is not None
    assert [r["step"] for r in logs if r["event"] == "media_upload_failed"] == ["PUT"]
    assert exporter_of(hub).media.stats().failed == 1  # type: ignore[union-attr]


def test_patch_failure_sends_the_span_with_the_reference(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    server.inject("media-patch", Fault.error(500))
    hub = make_hub()
    with hub.span("vision", input={"image": PNG}):
        pass
    assert hub.flush(5)
    assert server.observation("vision").input == {"image": ref("image/png", PNG, "bytes")}
    assert server.media()[0].content == PNG
    assert exporter_of(hub).media.stats().failed == 1  # type: ignore[union-attr]


def test_a_slow_upload_times_out_and_the_span_still_goes(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    server.inject("media-upload", Fault.slow(5))
    hub = make_hub(timeout=1.0)
    with hub.span("vision", input={"image": PNG}):
        pass
    assert hub.flush(5)
    assert server.observation("vision").input == {"image": ref("image/png", PNG, "bytes")}
    assert server.requests("media-patch") == []  # no status to report without an answer
    stats = exporter_of(hub).media.stats()  # type: ignore[union-attr]
    assert (stats.uploaded, stats.failed) == (0, 1)


def test_a_failed_upload_is_tried_again_with_the_next_span(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    server.inject("media-upload", Fault.error(503))
    hub = make_hub()
    for name in ("first", "second"):
        with hub.span(name, input=PNG):
            pass
        assert hub.flush(5)
    assert server.media()[0].content == PNG
    assert [r.status for r in server.requests("media-upload")] == [503, 200]


def test_an_unreadable_file_becomes_a_marker(
    make_hub: MakeHub, server: LangfuseStandIn, tmp_path: Path
) -> None:
    hub = make_hub()
    with hub.span("summarise", input=obshub.Media.from_file(tmp_path / "gone.pdf")):
        pass
    assert hub.flush(5)
    assert server.observation("summarise").input == (
        "<media application/pdf file gone.pdf: unreadable>"
    )
    assert server.requests("media") == []
    assert exporter_of(hub).media.stats().unreadable == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["argument", "env"])
def test_media_upload_can_be_switched_off(
    make_hub: MakeHub, server: LangfuseStandIn, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "env":
        monkeypatch.setenv("LANGFUSE_MEDIA_UPLOAD_ENABLED", "false")
        hub = make_hub()
    else:
        hub = make_hub(media_upload=False)
    with hub.span("vision", input={"image": PNG}):
        pass
    assert hub.flush(5)
    assert server.observation("vision").input == {"image": f"<{len(PNG)} bytes>"}
    assert server.requests("media") == []


def test_small_text_bytes_stay_text(make_hub: MakeHub, server: LangfuseStandIn) -> None:
    hub = make_hub()
    with hub.span("echo", input=b"hello"):
        pass
    assert hub.flush(5)
    assert server.observation("echo").input == "hello"
    assert server.requests("media") == []


def test_the_stand_in_checks_uploads_as_langfuse_and_storage_do(server: LangfuseStandIn) -> None:
    auth = {
        "Authorization": http.basic_auth(server.public_key, server.secret_key),
        "Content-Type": "application/json",
    }

    def announce(**changes: object) -> http.Response:
        body = {
            "traceId": "ab" * 16,
            "observationId": "cd" * 8,
            "contentType": "image/png",
            "contentLength": len(PNG),
            "sha256Hash": digest(PNG),
            "field": "input",
            **changes,
        }
        body = {k: v for k, v in body.items() if v is not None}
        url = f"{server.url}/api/public/media"
        return http.post(url, json.dumps(body).encode(), auth, raise_for_status=False)

    assert announce(contentType="image/x-unknown").status == 400
    assert announce(field="attributes").status == 400
    assert announce(sha256Hash="not-a-hash").status == 400
    assert announce(traceId=None).status == 400
    assert announce(timestamp="now").status == 400
    answer = announce()
    assert answer.status == 201
    upload_url = json.loads(answer.body)["uploadUrl"]
    good = {"Content-Type": "image/png", "x-amz-checksum-sha256": digest(PNG)}

    def put(body: bytes, headers: dict[str, str]) -> int:
        return http.request(
            "PUT", upload_url, body=body, headers=headers, raise_for_status=False
        ).status

    assert put(PNG, {**good, "Authorization": auth["Authorization"]}) == 400
    assert put(PNG, {**good, "Content-Type": "image/jpeg"}) == 403
    assert put(PNG, {**good, "x-amz-checksum-sha256": digest(b"other")}) == 400
    assert put(PNG[:-1] + b"!", good) == 400  # right length, wrong content
    assert put(PNG, good) == 200
    assert server.media()[0].content == PNG


def test_a_media_api_that_does_not_answer_is_skipped_for_a_while(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    server.inject("media", Fault.error(500))
    hub = make_hub()
    with hub.span("vision", input={"a": PNG, "b": WAV}):
        pass
    assert hub.flush(5)
    # One POST failed with a 500: the second value is not tried (no second timeout).
    assert len(server.requests("media")) == 1
    assert server.observation("vision").input == {
        "a": f"<media image/png {len(PNG)} bytes: upload failed>",
        "b": f"<media audio/wav {len(WAV)} bytes: upload failed>",
    }
    media = exporter_of(hub).media
    assert media is not None
    assert media.stats().failed == 2
    media.pause = 0.0  # the pause over (ends at the next value):
    media._paused_until = 0.0
    with hub.span("later", input=PNG):
        pass
    assert hub.flush(5)
    assert server.observation("later").input == ref("image/png", PNG, "bytes")
