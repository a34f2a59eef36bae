"""Media in recorded values: kept for uploading exporters, shown as today's marker to the rest."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import obshub
from obshub._processors import Redactor
from obshub._serialization import Limits, to_jsonable
from obshub.media import Media, MediaError, MediaValue, parse_data_uri, sniff_content_type

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20  # 5128 bytes, not text


def test_large_binary_bytes_keep_their_content_behind_the_old_marker() -> None:
    value = to_jsonable({"image": PNG})["image"]
    assert value == f"<{len(PNG)} bytes>"  # what the JSONL and console exporters show
    assert isinstance(value, MediaValue)
    assert value.media.read(10**6) == PNG
    assert value.media.source == "bytes"
    assert json.loads(json.dumps({"image": value})) == {"image": f"<{len(PNG)} bytes>"}


def test_small_binary_bytes_stay_base64_text_and_carry_media() -> None:
    value = to_jsonable(PNG[:100])
    assert value == "base64:" + base64.b64encode(PNG[:100]).decode()
    assert isinstance(value, MediaValue)
    assert to_jsonable(b"plain text") == "plain text"
    assert not isinstance(to_jsonable(b"plain text"), MediaValue)


def test_content_over_the_media_limit_is_the_marker_alone() -> None:
    value = to_jsonable(PNG, Limits(max_media_bytes=1000))
    assert value == f"<{len(PNG)} bytes>"
    assert not isinstance(value, MediaValue)


def test_a_long_data_uri_is_truncated_as_text_but_kept_as_media() -> None:
    uri = "data:image/png;base64," + base64.b64encode(PNG * 20).decode()
    value = to_jsonable(uri, Limits(max_string=1000))
    assert isinstance(value, MediaValue)
    assert value.startswith(uri[:1000])
    assert "...[truncated" in value
    assert value.media.read(10**7) == PNG * 20
    assert value.media.declared_type() == "image/png"
    assert value.media.source == "base64_data_uri"
    short = "data:image/png;base64," + base64.b64encode(b"abc").decode()
    assert type(to_jsonable(short)) is str  # whole: uploading exporters find it themselves


def test_a_media_value_names_its_type_and_file_and_reads_nothing_when_recorded(
    tmp_path: Path,
) -> None:
    missing = Media.from_file(tmp_path / "report.pdf")  # no such file yet: nothing is read
    value = to_jsonable([missing])[0]
    assert value == "<media application/pdf file report.pdf>"
    with pytest.raises(MediaError, match=r"cannot read report.pdf"):
        value.media.read(100)
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 body")
    assert value.media.read(100) == b"%PDF-1.7 body"
    with pytest.raises(MediaError, match="over the 5 byte limit"):
        value.media.read(5)
    assert to_jsonable(Media.from_bytes(PNG, "image/png")) == f"<media image/png {len(PNG)} bytes>"
    assert to_jsonable(value) is value


def test_media_takes_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Media()
    with pytest.raises(ValueError, match="exactly one"):
        Media(data=b"x", path="a.png")


def test_redaction_keeps_media_but_a_secret_key_still_hides_it() -> None:
    span = obshub.Span(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        name="s",
        input=to_jsonable({"image": PNG, "api_key": PNG}),
    )
    cleaned = Redactor().process(span)
    assert isinstance(cleaned.input["image"], MediaValue)
    assert cleaned.input["api_key"] == "[REDACTED]"


def test_data_uris_and_magic_numbers() -> None:
    assert parse_data_uri("data:image/png;base64,YWJj") == ("image/png", b"abc")
    assert parse_data_uri("data:text/plain,abc") is None  # not base64
    assert parse_data_uri("data:image/png;base64,@@") is None
    assert parse_data_uri("https://example.com/a.png") is None
    assert sniff_content_type(PNG) == "image/png"
    assert sniff_content_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_content_type(b"%PDF-1.4") == "application/pdf"
    assert sniff_content_type(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "audio/wav"
    assert sniff_content_type(b"ID3\x04") == "audio/mpeg"
    assert sniff_content_type(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff_content_type(b"just text") is None


def test_the_jsonl_exporter_writes_todays_marker(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    hub = obshub.Hub(exporters=[obshub.JsonlExporter(path=str(path), realtime=True)])
    try:
        with hub.span("vision", input={"image": PNG}, metadata={"scan": Media.from_bytes(PNG)}):
            pass
        assert hub.flush(5)
    finally:
        hub.shutdown(timeout=2)
    records = [json.loads(x) for x in path.read_text().splitlines()]
    (line,) = [r for r in records if r.get("kind") == "ended"]
    assert line["span"]["input"] == {"image": f"<{len(PNG)} bytes>"}
    assert line["span"]["metadata"] == {"scan": f"<media image/png {len(PNG)} bytes>"}
