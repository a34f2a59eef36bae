"""The embedded store: span events and scores in one sqlite file.

Layout (schema version `SCHEMA_VERSION`, kept in ``PRAGMA user_version``):

- ``spans``: one row per span (the latest event wins), the span's searchable
  fields as columns and the whole record as JSON in ``data``;
- ``traces``: one row per trace, aggregated from its spans after every write
  (root name, input and output, session, user, tags, models, tokens, cost,
  duration, error flag), so that listing traces never scans spans;
- ``trace_tags``: (tag, trace) pairs for the tag filter;
- ``scores``: one row per score;
- ``meta``: ``changes``, a counter bumped by every write (the viewer polls it).

Safety with several processes: the file runs in WAL mode (readers never block
the writer), every write is one ``BEGIN IMMEDIATE`` transaction, and a busy
file is waited for (``busy_timeout``) rather than failed. A process that forks
opens its own connection.

Migrations: `MIGRATIONS` lists the SQL that takes a store from version ``n``
to ``n + 1``; opening a file applies the missing ones in one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from obshub.plugin import clean_text

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Store",
    "read_record_lines",
]

#: The store's schema version (``PRAGMA user_version``).
SCHEMA_VERSION = 1
#: Characters of a trace's input/output kept in the ``traces`` row for text search.
SEARCH_TEXT_CHARS = 4096
#: Seconds a write waits for another process holding the file.
BUSY_TIMEOUT_MS = 30_000

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('changes', 0);
    CREATE TABLE spans (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER,
        level TEXT NOT NULL,
        model TEXT,
        session_id TEXT,
        user_id TEXT,
        is_event INTEGER NOT NULL DEFAULT 0,
        has_error INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        config TEXT,
        service TEXT,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (trace_id, span_id)
    ) WITHOUT ROWID;
    CREATE INDEX spans_model ON spans (model, start_ns) WHERE model IS NOT NULL;
    CREATE INDEX spans_start ON spans (start_ns);
    CREATE TABLE traces (
        trace_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER,
        duration_ns INTEGER NOT NULL DEFAULT 0,
        session_id TEXT,
        user_id TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        level TEXT NOT NULL,
        has_error INTEGER NOT NULL DEFAULT 0,
        models TEXT NOT NULL DEFAULT '',
        tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        span_count INTEGER NOT NULL DEFAULT 0,
        service TEXT,
        input_text TEXT NOT NULL DEFAULT '',
        output_text TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX traces_start ON traces (start_ns, trace_id);
    CREATE INDEX traces_duration ON traces (duration_ns, trace_id);
    CREATE INDEX traces_tokens ON traces (tokens, trace_id);
    CREATE INDEX traces_cost ON traces (cost, trace_id);
    CREATE INDEX traces_session ON traces (session_id, start_ns) WHERE session_id IS NOT NULL;
    CREATE INDEX traces_user ON traces (user_id, start_ns) WHERE user_id IS NOT NULL;
    CREATE INDEX traces_name ON traces (name, start_ns);
    CREATE INDEX traces_level ON traces (level, start_ns);
    CREATE INDEX traces_error ON traces (has_error, start_ns);
    CREATE TABLE trace_tags (
        tag TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        PRIMARY KEY (tag, trace_id)
    ) WITHOUT ROWID;
    CREATE INDEX trace_tags_trace ON trace_tags (trace_id);
    CREATE TABLE scores (
        id TEXT PRIMARY KEY,
        trace_id TEXT NOT NULL,
        span_id TEXT,
        session_id TEXT,
        name TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX scores_trace ON scores (trace_id);
    CREATE INDEX scores_session ON scores (session_id) WHERE session_id IS NOT NULL;
    """,
)

_LEVEL_RANK = {"debug": 0, "default": 1, "warning": 2, "error": 3}


def connect(path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the store at ``path`` (created and migrated unless ``readonly``)."""
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
            isolation_level=None,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        os.fspath(path),
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
        isolation_level=None,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations in one transaction; returns the version reached."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version >= len(MIGRATIONS):
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while this one waited for the lock.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for step in MIGRATIONS[version:]:
            for statement in step.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:SEARCH_TEXT_CHARS]


def _clean_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Lone surrogates (which sqlite cannot store as UTF-8) become U+FFFD."""
    return tuple(clean_text(v) if isinstance(v, str) else v for v in row)


def _span_row(record: Mapping[str, Any]) -> tuple[Any, ...] | None:
    span = record.get("span")
    if not isinstance(span, Mapping):
        return None
    trace_id, span_id = span.get("trace_id"), span.get("span_id")
    if not isinstance(trace_id, str) or not isinstance(span_id, str):
        return None
    raw_usage, raw_cost = span.get("usage"), span.get("cost")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, Mapping) else {}
    cost: Mapping[str, Any] = raw_cost if isinstance(raw_cost, Mapping) else {}
    tokens = usage.get("total") or (_num(usage.get("input")) + _num(usage.get("output")))
    start = span.get("start_time")
    end = span.get("end_time")
    return (
        trace_id,
        span_id,
        span.get("parent_span_id"),
        str(span.get("name") or ""),
        str(span.get("type") or "generic"),
        int(start) if isinstance(start, int) else 0,
        int(end) if isinstance(end, int) else None,
        str(span.get("level") or "default"),
        span.get("model"),
        span.get("session_id"),
        span.get("user_id"),
        1 if span.get("is_event") else 0,
        1 if span.get("error") or span.get("level") == "error" else 0,
        int(_num(tokens)),
        _num(cost.get("total")) or (_num(cost.get("input")) + _num(cost.get("output"))),
        record.get("config"),
        record.get("service"),
        str(record.get("kind") or "ended"),
        json.dumps(span, ensure_ascii=False, default=str),
    )


_UPSERT_SPAN = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, type, start_ns, end_ns, level, model,
                   session_id, user_id, is_event, has_error, tokens, cost, config, service, kind,
                   data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (trace_id, span_id) DO UPDATE SET
    parent_span_id = excluded.parent_span_id, name = excluded.name, type = excluded.type,
    start_ns = excluded.start_ns, end_ns = excluded.end_ns, level = excluded.level,
    model = excluded.model, session_id = excluded.session_id, user_id = excluded.user_id,
    is_event = excluded.is_event, has_error = excluded.has_error, tokens = excluded.tokens,
    cost = excluded.cost, config = excluded.config, service = excluded.service,
    kind = excluded.kind, data = excluded.data
WHERE spans.kind != 'ended' OR excluded.kind = 'ended'
"""


class Store:
    """A read-write handle on one store file (one connection, guarded by a lock).

    ``max_age`` (seconds) and ``max_bytes`` bound the store: traces that
    started longer ago than ``max_age``, then the oldest traces while the
    live pages exceed ``max_bytes``, are deleted (checked at most every
    ``retention_interval`` seconds of writing, and by `enforce_retention`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_age: float | None = None,
        max_bytes: int | None = None,
        retention_interval: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.retention_interval = retention_interval
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._last_retention = 0.0

    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            # After fork() the parent's connection must not be used in the child.
            self._conn = connect(self.path)
            self._pid = os.getpid()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def write_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Store event and score records (`obshub.spans.item_record` dicts); returns how many."""
        span_rows: list[tuple[Any, ...]] = []
        score_rows: list[tuple[Any, ...]] = []
        for record in records:
            if record.get("kind") == "score":
                row = _score_row(record)
                if row is not None:
                    score_rows.append(_clean_row(row))
                continue
            span_row = _span_row(record)
            if span_row is not None:
                span_rows.append(_clean_row(span_row))
        if not span_rows and not score_rows:
            return 0
        with self._lock:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT_SPAN, span_rows)
                conn.executemany(
                    "INSERT OR REPLACE INTO scores (id, trace_id, span_id, session_id, name, data)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    score_rows,
                )
                for trace_id in dict.fromkeys(row[0] for row in span_rows):
                    _aggregate_trace(conn, trace_id)
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'changes'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            now = time.monotonic()
            if (self.max_age or self.max_bytes) and (
                now - self._last_retention >= self.retention_interval
            ):
                self._last_retention = now
                self._enforce(conn)
        return len(span_rows) + len(score_rows)

    def enforce_retention(self) -> int:
        """Delete what ``max_age`` / ``max_bytes`` rule out now; returns traces deleted."""
        with self._lock:
            return self._enforce(self.connection())

    def _enforce(self, conn: sqlite3.Connection) -> int:
        deleted = 0
        if self.max_age is not None:
            cutoff = time.time_ns() - int(self.max_age * 1e9)
            while True:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT trace_id FROM traces WHERE start_ns < ? LIMIT 1000", (cutoff,)
                    )
                ]
                if not ids:
                    break
                deleted += self._delete_traces(conn, ids)
        if self.max_bytes is not None:
            while _live_bytes(conn) > self.max_bytes:
                count = int(conn.execute("SELECT count(*) FROM traces").fetchone()[0])
                if count == 0:
                    break
                # The oldest tenth (at least one) per round, so a large excess takes few rounds.
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT trace_id FROM traces ORDER BY start_ns, trace_id LIMIT ?",
                        (max(1, count // 10),),
                    )
                ]
                deleted += self._delete_traces(conn, ids)
        return deleted

    @staticmethod
    def _delete_traces(conn: sqlite3.Connection, ids: Sequence[str]) -> int:
        marks = ",".join("?" * len(ids))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in ("spans", "traces", "trace_tags", "scores"):
                conn.execute(f"DELETE FROM {table} WHERE trace_id IN ({marks})", list(ids))
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'changes'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(ids)

    def import_file(self, path: str | os.PathLike[str], batch: int = 2000) -> tuple[int, int]:
        """Import a JSONL file, spool segment or spool directory: (records stored, bad lines)."""
        source = Path(path)
        files = (
            sorted(p for p in source.rglob("*") if p.is_file() and _importable(p))
            if source.is_dir()
            else [source]
        )
        stored = bad = 0
        for file in files:
            chunk: list[Mapping[str, Any]] = []
            for record in read_record_lines(file):
                if record is None:
                    bad += 1
                    continue
                chunk.append(record)
                if len(chunk) >= batch:
                    stored += self.write_records(chunk)
                    chunk = []
            stored += self.write_records(chunk)
        return stored, bad


def _importable(path: Path) -> bool:
    return path.suffix in (".jsonl", ".log") or path.name.endswith(".log.open")


def _live_bytes(conn: sqlite3.Connection) -> int:
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return (pages - free) * size


def _score_row(record: Mapping[str, Any]) -> tuple[Any, ...] | None:
    score = record.get("score")
    if not isinstance(score, Mapping) or not isinstance(score.get("trace_id"), str):
        return None
    return (
        str(score.get("id") or f"{score['trace_id']}:{score.get('name')}"),
        score["trace_id"],
        score.get("span_id"),
        score.get("session_id"),
        str(score.get("name") or ""),
        json.dumps(score, ensure_ascii=False, default=str),
    )


_AGGREGATE = """
SELECT min(start_ns), max(coalesce(end_ns, start_ns)), max(has_error), sum(tokens), sum(cost),
       count(*), group_concat(DISTINCT model), max(session_id), max(user_id), max(service)
FROM spans WHERE trace_id = ?
"""


def _aggregate_trace(conn: sqlite3.Connection, trace_id: str) -> None:
    (start, end, has_error, tokens, cost, count, models, session, user, service) = conn.execute(
        _AGGREGATE, (trace_id,)
    ).fetchone()
    levels = [
        r[0]
        for r in conn.execute("SELECT DISTINCT level FROM spans WHERE trace_id = ?", (trace_id,))
    ]
    level = max(levels, key=lambda lv: _LEVEL_RANK.get(lv, 1)) if levels else "default"
    root = conn.execute(
        "SELECT data FROM spans WHERE trace_id = ? AND parent_span_id IS NULL"
        " ORDER BY start_ns LIMIT 1",
        (trace_id,),
    ).fetchone()
    span: dict[str, Any] = json.loads(root[0]) if root else {}
    name = span.get("trace_name") or span.get("name") or ""
    if not root:
        first = conn.execute(
            "SELECT name FROM spans WHERE trace_id = ? ORDER BY start_ns LIMIT 1", (trace_id,)
        ).fetchone()
        name = first[0] if first else ""
    tags = [str(t) for t in span.get("tags") or []]
    session = span.get("session_id") or session
    user = span.get("user_id") or user
    conn.execute(
        "INSERT OR REPLACE INTO traces (trace_id, name, start_ns, end_ns, duration_ns, session_id,"
        " user_id, tags, level, has_error, models, tokens, cost, span_count, service, input_text,"
        " output_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            trace_id,
            name,
            start,
            end,
            max(0, (end or start) - start),
            session,
            user,
            json.dumps(tags, ensure_ascii=False),
            level,
            has_error,
            models or "",
            tokens or 0,
            cost or 0.0,
            count,
            service,
            _text(span.get("input")),
            _text(span.get("output")),
        ),
    )
    conn.execute("DELETE FROM trace_tags WHERE trace_id = ?", (trace_id,))
    conn.executemany(
        "INSERT OR IGNORE INTO trace_tags (tag, trace_id) VALUES (?, ?)",
        [(tag, trace_id) for tag in tags],
    )


def read_record_lines(path: str | os.PathLike[str]) -> Iterator[dict[str, Any] | None]:
    """The records of a JSONL file or spool segment (None for each unreadable line).

    Spool lines carry a CRC-32 in front of the JSON (``1c291ca3 {...}``); it is checked.
    """
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            if len(line) > 9 and line[8:9] == b" " and not line.startswith(b"{"):
                crc, body = line[:8], line[9:]
                try:
                    if int(crc, 16) != zlib.crc32(body):
                        yield None
                        continue
                except ValueError:
                    yield None
                    continue
                line = body
            try:
                record = json.loads(line)
            except ValueError:
                yield None
                continue
            yield record if isinstance(record, dict) else None
