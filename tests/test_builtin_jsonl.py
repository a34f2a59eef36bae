"""``jsonl``: one strict JSON object per event, whole lines only, replayable."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

import obshub
from obshub import EventKind, ExportError, SpanEvent
from obshub.builtin.jsonl import FORMAT_VERSION, JsonlExporter
from obshub.delivery.spool import read_records

WAIT = 5.0


def strict_loads(line: str) -> Any:
    def reject(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=reject)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [strict_loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_event_is_one_json_line_that_rebuilds_the_same_event(
    hub_factory: Any, tmp_path: Path
) -> None:
    path = tmp_path / "traces.jsonl"
    jsonl = JsonlExporter(path=str(path), realtime=True)
    memory = obshub.MemoryExporter()
    hub = hub_factory(exporters=[jsonl, memory], service_name="bot")
    with hub.span("agent", type="agent_run", input={"q": "hi"}, session_id="s") as agent:
        agent.update(output="hello", usage={"input": 3, "output": 2})
        with hub.span("tool"):
            pass
    assert hub.flush(WAIT)
    records = lines_of(path)
    assert [(r["kind"], r["span"]["name"]) for r in records] == [
        ("started", "agent"),
        ("updated", "agent"),
        ("started", "tool"),
        ("ended", "tool"),
        ("ended", "agent"),
    ]
    assert all(r["v"] == FORMAT_VERSION for r in records)
    assert {(r["config"], r["service"]) for r in records} == {("default", "bot")}
    rebuilt = [SpanEvent.from_dict(r) for r in records]
    assert rebuilt == memory.events


def test_the_events_setting_chooses_which_kinds_are_written(
    hub_factory: Any, tmp_path: Path
) -> None:
    path = tmp_path / "ended.jsonl"
    hub = hub_factory(exporters=[JsonlExporter(path=str(path), events=["ended"], realtime=True)])
    with hub.span("agent") as agent:
        agent.update(output=1)
    assert hub.flush(WAIT)
    assert [r["kind"] for r in lines_of(path)] == ["ended"]


def test_scores_are_written_as_score_lines_and_read_back(hub_factory: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    hub = hub_factory(exporters=[JsonlExporter(path=str(path), realtime=True)])
    with hub.span("agent") as agent:
        pass
    hub.score(trace_id=agent.trace_id, name="quality", value="good", comment="c")
    assert hub.flush(WAIT)
    with path.open("a") as fh:
        fh.write("not json\n\n")
    items, bad = read_records(path)  # the reader obshub replay uses
    events = [i for i in items if isinstance(i, obshub.SpanEvent)]
    scores = [i for i in items if isinstance(i, obshub.Score)]
    assert [e.span.name for e in events if e.kind is EventKind.ENDED] == ["agent"]
    assert [(s.name, s.value, s.trace_id, s.comment) for s in scores] == [
        ("quality", "good", agent.trace_id, "c")
    ]
    assert bad == 1


def test_hostile_values_are_written_as_strict_json(hub_factory: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    hub = hub_factory(exporters=[JsonlExporter(path=str(path), realtime=True)])
    loop: list[Any] = []
    loop.append(loop)
    with hub.span(
        "agent",
        input={"nan": math.nan, "bytes": b"\xff", "set": {2, 1}, "loop": loop},
        metadata={"inf": math.inf},
        parameters={"temperature": math.nan},
    ):
        pass
    assert hub.flush(WAIT)
    (record,) = [r for r in lines_of(path) if r["kind"] == "ended"]
    assert record["span"]["input"] == {
        "nan": "NaN",
        "bytes": "base64:/w==",
        "set": [1, 2],
        "loop": ["<cycle>"],
    }
    assert record["span"]["metadata"] == {"inf": "Infinity"}


def test_the_file_and_its_directories_are_created_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "t.jsonl"
    path_event = SpanEvent(
        EventKind.ENDED,
        obshub.Span(trace_id="a" * 32, span_id="b" * 16, name="x"),
        "default",
        "svc",
    )
    for _ in range(2):
        exporter = JsonlExporter(path=str(path))
        exporter.export([path_event])
        exporter.shutdown()
    assert len(lines_of(path)) == 2


def test_concurrent_writers_only_ever_produce_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    writers = [JsonlExporter(path=str(path), instance_name=f"w{i}") for i in range(4)]
    big_input = "x" * 20_000  # lines far larger than a pipe buffer
    start = threading.Barrier(len(writers))

    def write(exporter: JsonlExporter, index: int) -> None:
        start.wait()
        for batch in range(25):
            events = [
                SpanEvent(
                    EventKind.ENDED,
                    obshub.Span(
                        trace_id=f"{index + 1:032x}",
                        span_id=f"{batch * 10 + i + 1:016x}",
                        name=f"w{index}-{batch}-{i}",
                        input=big_input,
                    ),
                    "default",
                    "svc",
                )
                for i in range(4)
            ]
            exporter.export(events)

    threads = [threading.Thread(target=write, args=(w, i)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.shutdown()
    records = lines_of(path)  # every line parses: none was interleaved or cut
    assert len(records) == 4 * 25 * 4
    assert len({r["span"]["name"] for r in records}) == 400
    assert all(r["span"]["input"] == big_input for r in records)


def test_a_path_that_cannot_be_written_raises_a_non_retryable_export_error(
    tmp_path: Path,
) -> None:
    exporter = JsonlExporter(path=str(tmp_path))  # a directory
    event = SpanEvent(
        EventKind.ENDED, obshub.Span(trace_id="a" * 32, span_id="b" * 16, name="x"), "d", "s"
    )
    with pytest.raises(ExportError) as raised:
        exporter.export([event])
    assert raised.value.retryable is False
    assert str(tmp_path) in str(raised.value)


def test_the_check_fails_when_the_file_cannot_be_created_there(tmp_path: Path) -> None:
    assert JsonlExporter(path=str(tmp_path / "new" / "t.jsonl")).check().ok
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = JsonlExporter(path=str(blocker / "t.jsonl")).check()
    assert result.ok is False
    assert str(blocker) in result.message


def test_an_empty_path_is_rejected() -> None:
    with pytest.raises(obshub.ConfigError, match="path"):
        JsonlExporter(path="")
