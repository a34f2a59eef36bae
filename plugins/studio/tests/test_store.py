"""The embedded store: schema, writes, aggregation, retention, several processes, import."""

from __future__ import annotations

import json
import multiprocessing
import time
import zlib
from pathlib import Path
from typing import Any, ClassVar

import pytest
from obshub_studio import SqliteExporter
from obshub_studio.store import MIGRATIONS, SCHEMA_VERSION, Store, connect

import obshub
from obshub.spans import item_record
from obshub.testing import ExporterContract

from .conftest import make_hub, record_agent


class TestSqliteContract(ExporterContract):
    exporter_class = SqliteExporter
    config: ClassVar[dict[str, Any]] = {"path": "replaced-by-backend-settings.db"}
    installed = True
    expect_retryable = False  # a path under a regular file never becomes writable

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Path:
        return tmp_path

    def backend_settings(self, backend: Path) -> dict[str, Any]:
        return {"path": str(backend / "store.db")}

    def failing_config(self, backend: Path) -> dict[str, Any]:
        blocker = backend / "a-file"
        blocker.write_text("not a directory")
        return {"path": str(blocker / "store.db")}

    def received(self, backend: Path, exporter: obshub.Exporter) -> int:
        assert isinstance(exporter, SqliteExporter)
        conn = connect(exporter.path)
        try:
            return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
        finally:
            conn.close()


def test_a_new_store_has_the_current_schema_wal_and_its_indexes(db: Path) -> None:
    conn = connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    for wanted in (
        "traces_start",
        "traces_session",
        "traces_user",
        "traces_name",
        "traces_level",
        "traces_error",
        "spans_model",
        "scores_trace",
    ):
        assert wanted in indexes
    # Opening again migrates nothing and keeps the data.
    conn.execute("INSERT INTO meta VALUES ('probe', 1)")
    conn.close()
    again = connect(db)
    assert again.execute("SELECT value FROM meta WHERE key='probe'").fetchone()[0] == 1
    again.close()


def test_a_trace_is_stored_with_its_aggregates(hub: obshub.Hub, db: Path) -> None:
    trace_id = record_agent(hub)
    assert hub.flush(timeout=5)
    conn = connect(db, readonly=True)
    row = conn.execute(
        "SELECT name, session_id, user_id, tags, models, tokens, cost, span_count, level,"
        " input_text, output_text FROM traces WHERE trace_id = ?",
        (trace_id,),
    ).fetchone()
    assert row[:5] == ("support-agent", "s-42", "u-7", '["beta"]', "gpt-4o")
    assert row[5] == 907
    assert row[6] == pytest.approx(0.003)
    assert row[7] == 4  # agent, generation, tool call, event
    assert row[9:] == ("Where is my order #1234?", "It ships tomorrow.")
    assert (
        conn.execute("SELECT count(*) FROM scores WHERE trace_id = ?", (trace_id,)).fetchone()[0]
        == 1
    )
    assert conn.execute(
        "SELECT tag FROM trace_tags WHERE trace_id = ?", (trace_id,)
    ).fetchall() == [("beta",)]
    conn.close()


def test_an_error_marks_the_trace_and_a_late_started_event_never_overwrites_ended(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db")
    hub = obshub.Hub(exporters=[obshub.MemoryExporter(realtime=True)])
    with hub.span("root") as root:
        root.update(level="error", status_message="broken")
    assert hub.flush(timeout=5)
    [memory] = hub.exporters()
    events = memory.events  # type: ignore[attr-defined]
    started = [item_record(e) for e in events if e.kind.value == "started"]
    ended = [item_record(e) for e in events if e.kind.value == "ended"]
    store.write_records(ended)
    store.write_records(started)  # arrives late (another process, a replay)
    conn = store.connection()
    assert conn.execute("SELECT kind FROM spans").fetchone()[0] == "ended"
    assert conn.execute("SELECT level, has_error FROM traces").fetchone() == ("error", 1)
    hub.shutdown()
    store.close()


def test_retention_by_age_deletes_old_traces_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", max_age=3600, retention_interval=3600)
    now = time.time_ns()
    old = _record("a" * 32, now - 7200 * 10**9)
    new = _record("b" * 32, now)
    store.write_records([old, new])  # the first write checks retention at once
    store.write_records([_record("d" * 32, now - 7200 * 10**9)])  # the next within the hour do not
    assert store.connection().execute("SELECT count(*) FROM traces").fetchone()[0] == 2
    assert store.enforce_retention() == 1
    ids = [r[0] for r in store.connection().execute("SELECT trace_id FROM traces")]
    assert ids == ["b" * 32]
    assert store.connection().execute("SELECT count(*) FROM spans").fetchone()[0] == 1
    store.close()


def test_retention_by_size_keeps_the_store_under_max_bytes_deleting_the_oldest(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db", max_bytes=300_000, retention_interval=0)
    start = time.time_ns()
    for i in range(200):
        store.write_records([_record(f"{i:032x}", start + i, payload="x" * 4000)])
    conn = store.connection()
    live = (
        conn.execute("PRAGMA page_count").fetchone()[0]
        - conn.execute("PRAGMA freelist_count").fetchone()[0]
    ) * 4096
    assert live <= 300_000
    kept = [int(r[0], 16) for r in conn.execute("SELECT trace_id FROM traces ORDER BY start_ns")]
    assert kept, "the newest traces are kept"
    assert kept == list(range(200 - len(kept), 200)), "only the oldest were deleted"
    store.close()


def _record(trace_id: str, start: int, payload: str = "in") -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "ended",
        "config": "app",
        "service": "svc",
        "span": {
            "trace_id": trace_id,
            "span_id": trace_id[:16],
            "parent_span_id": None,
            "name": "t",
            "type": "generic",
            "start_time": start,
            "end_time": start + 1000,
            "input": payload,
            "level": "default",
        },
    }


def _write_many(path: str, worker: int, count: int) -> None:
    hub = make_hub(Path(path))
    for i in range(count):
        record_agent(hub, session_id=f"w{worker}", question=f"q{worker}-{i}")
    assert hub.flush(timeout=30)
    hub.shutdown(timeout=10)


def test_several_processes_write_one_store_and_nothing_is_lost(db: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(db), w, 25)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 75
    per_worker = dict(conn.execute("SELECT session_id, count(*) FROM traces GROUP BY 1"))
    assert per_worker == {"w0": 25, "w1": 25, "w2": 25}
    assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 300
    conn.close()


def test_a_jsonl_file_and_a_spool_directory_are_imported(tmp_path: Path) -> None:
    jsonl = tmp_path / "events.jsonl"
    hub = obshub.Hub.from_config(
        {"configs": {"app": {"exporters": {"j": {"type": "jsonl", "path": str(jsonl)}}}}}
    )
    first = record_agent(hub)
    assert hub.flush(timeout=5)
    hub.shutdown()
    with jsonl.open("a") as fh:
        fh.write("not json\n")
    spool = tmp_path / "spool" / "app.studio"
    spool.mkdir(parents=True)
    body = json.dumps(_record("c" * 32, time.time_ns())).encode()
    (spool / "00000001.log").write_bytes(
        b"%08x %s\n" % (zlib.crc32(body), body) + b'00000000 {"corrupt": true}\n'
    )
    store = Store(tmp_path / "s.db")
    lines = jsonl.read_text().splitlines()
    assert store.import_file(jsonl) == (len(lines) - 1, 1)
    assert store.import_file(tmp_path / "spool") == (1, 1)
    ids = {r[0] for r in store.connection().execute("SELECT trace_id FROM traces")}
    assert ids == {first, "c" * 32}
    store.close()
