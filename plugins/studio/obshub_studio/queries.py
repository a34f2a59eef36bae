"""The read side of the store: what the studio's JSON API answers.

Every function takes a (read-only) connection and plain values, and returns
JSON-ready dicts. Lists page by keyset (a cursor of the last row's sort value
and trace id), so the newest page and the ten-thousandth cost the same.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "SORTS",
    "changes",
    "dashboard",
    "list_sessions",
    "list_traces",
    "session_detail",
    "trace_detail",
]

#: ``sort`` values of the traces list and the column each one orders by.
SORTS = {"start": "start_ns", "latency": "duration_ns", "tokens": "tokens", "cost": "cost"}
MAX_PAGE = 200
#: Strings longer than this are cut in API answers (the page folds anything past a few KB).
MAX_STRING = 1_000_000

_TRACE_COLUMNS = (
    "trace_id, name, start_ns, end_ns, duration_ns, session_id, user_id, tags, level, has_error,"
    " models, tokens, cost, span_count, service"
)


def _trace_row(row: Sequence[Any]) -> dict[str, Any]:
    (
        trace_id,
        name,
        start,
        end,
        duration,
        session,
        user,
        tags,
        level,
        has_error,
        models,
        tokens,
        cost,
        count,
        service,
    ) = row
    return {
        "trace_id": trace_id,
        "name": name,
        "start_ns": start,
        "end_ns": end,
        "duration_ms": duration / 1e6,
        "session_id": session,
        "user_id": user,
        "tags": json.loads(tags),
        "level": level,
        "error": bool(has_error),
        "models": [m for m in models.split(",") if m],
        "tokens": tokens,
        "cost": cost,
        "span_count": count,
        "service": service,
    }


def _encode_cursor(value: Any, trace_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, trace_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, str] | None:
    try:
        value, trace_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(trace_id, str) or not isinstance(value, (int, float)):
        return None
    return value, trace_id


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _seconds_to_ns(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(float(value) * 1e9)
    except ValueError:
        return None


#: Below this many matching rows a tag or model filter collects its traces first (then sorts
#: them); above it, the sort index is walked and each trace checked, stopping after a page.
RARE = 5000


def _rare(conn: sqlite3.Connection, select: str, value: str) -> bool:
    """True when ``select`` (one ``?``) matches fewer than `RARE` rows (an index-only count)."""
    row = conn.execute(f"SELECT count(*) FROM ({select} LIMIT {RARE})", (value,)).fetchone()
    return int(row[0]) < RARE


def list_traces(conn: sqlite3.Connection, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of traces: filters, sort and keyset paging from the query string."""
    where: list[str] = []
    args: list[Any] = []
    for key, column in (
        ("name", "name"),
        ("session", "session_id"),
        ("user", "user_id"),
        ("level", "level"),
    ):
        if params.get(key):
            where.append(f"{column} = ?")
            args.append(params[key])
    if params.get("error") in ("1", "true"):
        where.append("has_error = 1")
    if params.get("tag"):
        tag = params["tag"]
        if _rare(conn, "SELECT 1 FROM trace_tags WHERE tag = ?", tag):
            where.append("trace_id IN (SELECT trace_id FROM trace_tags WHERE tag = ?)")
        else:
            where.append(
                "EXISTS (SELECT 1 FROM trace_tags g"
                " WHERE g.tag = ? AND g.trace_id = traces.trace_id)"
            )
        args.append(tag)
    if params.get("model"):
        model = params["model"]
        if _rare(conn, "SELECT 1 FROM spans WHERE model = ?", model):
            where.append("trace_id IN (SELECT trace_id FROM spans WHERE model = ?)")
        else:
            where.append(
                "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = traces.trace_id AND s.model = ?)"
            )
        args.append(model)
    since, until = _seconds_to_ns(params.get("since")), _seconds_to_ns(params.get("until"))
    if since is not None:
        where.append("start_ns >= ?")
        args.append(since)
    if until is not None:
        where.append("start_ns < ?")
        args.append(until)
    if params.get("q"):
        pattern = _like(params["q"])
        where.append(
            "(input_text LIKE ? ESCAPE '\\' OR output_text LIKE ? ESCAPE '\\'"
            " OR name LIKE ? ESCAPE '\\')"
        )
        args += [pattern, pattern, pattern]
    column = SORTS.get(params.get("sort", "start"), "start_ns")
    descending = params.get("order", "desc") != "asc"
    cursor = _decode_cursor(params["cursor"]) if params.get("cursor") else None
    if cursor is not None:
        op = "<" if descending else ">"
        where.append(f"({column} {op} ? OR ({column} = ? AND trace_id {op} ?))")
        args += [cursor[0], cursor[0], cursor[1]]
    try:
        limit = max(1, min(MAX_PAGE, int(params.get("limit", "50"))))
    except ValueError:
        limit = 50
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {_TRACE_COLUMNS} FROM traces"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {column} {direction}, trace_id {direction} LIMIT ?"
    )
    rows = conn.execute(sql, [*args, limit + 1]).fetchall()
    traces = [_trace_row(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        value = {"start_ns": last[2], "duration_ns": last[4], "tokens": last[11], "cost": last[12]}[
            column
        ]
        next_cursor = _encode_cursor(value, last[0])
    return {"traces": traces, "next_cursor": next_cursor, "sort": column, "order": direction}


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + f"\u2026 [cut by the studio: {len(value):,} characters]"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def trace_detail(conn: sqlite3.Connection, trace_id: str) -> dict[str, Any] | None:
    """A trace, every span of it (full records, ordered by start) and its scores."""
    row = conn.execute(
        f"SELECT {_TRACE_COLUMNS} FROM traces WHERE trace_id = ?", (trace_id,)
    ).fetchone()
    if row is None:
        return None
    spans = [
        {**_clip(json.loads(data)), "state": kind}
        for data, kind in conn.execute(
            "SELECT data, kind FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id",
            (trace_id,),
        )
    ]
    scores = [
        _clip(json.loads(d))
        for (d,) in conn.execute(
            "SELECT data FROM scores WHERE trace_id = ? ORDER BY rowid", (trace_id,)
        )
    ]
    return {"trace": _trace_row(row), "spans": spans, "scores": scores}


def list_sessions(conn: sqlite3.Connection, params: Mapping[str, str]) -> dict[str, Any]:
    """Sessions, most recently active first."""
    try:
        limit = max(1, min(MAX_PAGE, int(params.get("limit", "50"))))
    except ValueError:
        limit = 50
    rows = conn.execute(
        "SELECT session_id, count(*), min(start_ns), max(start_ns), sum(tokens), sum(cost),"
        " max(has_error), max(user_id) FROM traces WHERE session_id IS NOT NULL"
        " GROUP BY session_id ORDER BY max(start_ns) DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return {
        "sessions": [
            {
                "session_id": s,
                "traces": n,
                "first_ns": first,
                "last_ns": last,
                "tokens": tokens,
                "cost": cost,
                "error": bool(err),
                "user_id": user,
            }
            for s, n, first, last, tokens, cost, err, user in rows
        ]
    }


def session_detail(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    """A session's traces in order, each with its root span's input and output."""
    turns = []
    for row in conn.execute(
        f"SELECT {_TRACE_COLUMNS} FROM traces WHERE session_id = ? ORDER BY start_ns LIMIT 1000",
        (session_id,),
    ):
        trace = _trace_row(row)
        root = conn.execute(
            "SELECT data FROM spans WHERE trace_id = ? AND parent_span_id IS NULL"
            " ORDER BY start_ns LIMIT 1",
            (trace["trace_id"],),
        ).fetchone()
        span = json.loads(root[0]) if root else {}
        turns.append(
            {**trace, "input": _clip(span.get("input")), "output": _clip(span.get("output"))}
        )
    scores = [
        _clip(json.loads(d))
        for (d,) in conn.execute(
            "SELECT data FROM scores WHERE session_id = ? ORDER BY rowid", (session_id,)
        )
    ]
    return {"session_id": session_id, "turns": turns, "scores": scores}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def dashboard(conn: sqlite3.Connection, days: int = 30) -> dict[str, Any]:
    """Per model and per day: traces or generations, tokens, cost, latency p50/p95, errors."""
    since = time.time_ns() - days * 86_400 * 10**9
    per_model: dict[str, dict[str, Any]] = {}
    for model, tokens, cost, start, end, err in conn.execute(
        "SELECT model, tokens, cost, start_ns, end_ns, has_error FROM spans"
        " WHERE model IS NOT NULL AND start_ns >= ?",
        (since,),
    ):
        entry = per_model.setdefault(
            model,
            {"model": model, "generations": 0, "tokens": 0, "cost": 0.0, "errors": 0, "_lat": []},
        )
        entry["generations"] += 1
        entry["tokens"] += tokens
        entry["cost"] += cost
        entry["errors"] += err
        if end is not None:
            entry["_lat"].append((end - start) / 1e6)
    per_day: dict[str, dict[str, Any]] = {}
    for day, tokens, cost, duration, err in conn.execute(
        "SELECT date(start_ns / 1000000000, 'unixepoch'), tokens, cost, duration_ns, has_error"
        " FROM traces WHERE start_ns >= ?",
        (since,),
    ):
        entry = per_day.setdefault(
            day, {"day": day, "traces": 0, "tokens": 0, "cost": 0.0, "errors": 0, "_lat": []}
        )
        entry["traces"] += 1
        entry["tokens"] += tokens
        entry["cost"] += cost
        entry["errors"] += err
        entry["_lat"].append(duration / 1e6)

    def finish(entry: dict[str, Any], count_key: str) -> dict[str, Any]:
        latencies = entry.pop("_lat")
        entry["p50_ms"] = _percentile(latencies, 0.5)
        entry["p95_ms"] = _percentile(latencies, 0.95)
        entry["error_rate"] = entry["errors"] / entry[count_key] if entry[count_key] else 0.0
        return entry

    days_out = [finish(e, "traces") for _, e in sorted(per_day.items(), reverse=True)]
    total = sum(e["traces"] for e in days_out)
    errors = sum(e["errors"] for e in days_out)
    return {
        "days": days,
        "traces": total,
        "tokens": sum(e["tokens"] for e in days_out),
        "cost": sum(e["cost"] for e in days_out),
        "error_rate": errors / total if total else 0.0,
        "per_model": [finish(e, "generations") for _, e in sorted(per_model.items())],
        "per_day": days_out,
    }


def changes(conn: sqlite3.Connection) -> int:
    """The store's write counter: it moves whenever anything was written."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()
    return int(row[0]) if row else 0
