"""The studio's JSON API and server: filters, sort, keyset paging, read-only, loopback only."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from obshub_studio import queries
from obshub_studio.server import StudioServer
from obshub_studio.store import Store

import obshub

from .conftest import record_agent


def get(studio: StudioServer, path: str, host: str | None = None) -> tuple[int, Any, Any]:
    port = studio.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host} if host else {}
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    kind = response.getheader("Content-Type") or ""
    data = json.loads(body) if kind.startswith("application/json") else body
    return response.status, data, response.headers


def test_the_list_filters_and_sorts_and_the_detail_has_every_span(
    hub: obshub.Hub, studio: StudioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = record_agent(hub, question="refund please", session_id="s-1", tags=("vip",))
    second = record_agent(hub, model="claude-sonnet", session_id="s-2", user_id="u-9", fail=True)
    assert hub.flush(timeout=5)

    status, page, headers = get(studio, "/api/traces")
    assert status == 200
    assert [t["trace_id"] for t in page["traces"]] == [second, first]  # newest first
    assert "script-src 'self'" in headers["Content-Security-Policy"]

    def ids(query: str) -> list[str]:
        return [t["trace_id"] for t in get(studio, "/api/traces?" + query)[1]["traces"]]

    assert ids("session=s-1") == [first]
    assert ids("user=u-9") == [second]
    assert ids("tag=vip") == [first]
    assert ids("model=claude-sonnet") == [second]
    assert ids("error=1") == [second]
    # Common values take the other plan (walk the sort index, check each trace): same answers.
    for rare in (queries.RARE, 0):
        monkeypatch.setattr(queries, "RARE", rare)
        assert ids("tag=vip") == [first]
        assert ids("model=claude-sonnet") == [second]
        assert ids("model=gpt-4o") == [first]
    assert ids("q=refund") == [first]
    assert ids("q=%25") == []  # LIKE wildcards are taken literally
    assert ids("name=support-agent&order=asc") == [first, second]
    assert ids(f"since={time.time() + 60}") == []
    assert ids("sort=tokens&order=asc") in ([first, second], [second, first])

    status, detail, _ = get(studio, f"/api/traces/{second}")
    assert status == 200
    by_name = {s["name"]: s for s in detail["spans"]}
    assert set(by_name) == {"support-agent", "claude-sonnet", "lookup_order", "cache-hit"}
    assert by_name["lookup_order"]["error"]["type"] == "LookupError"
    assert "order service unreachable" in by_name["lookup_order"]["error"]["message"]
    assert "raise LookupError" in by_name["lookup_order"]["error"]["stack"]
    assert by_name["claude-sonnet"]["usage"]["cached_input"] == 512
    assert by_name["cache-hit"]["is_event"] is True
    assert [s["name"] for s in detail["scores"]] == ["helpfulness"]
    assert get(studio, "/api/traces/" + "0" * 32)[0] == 404


def test_keyset_paging_walks_every_trace_once(tmp_path: Path) -> None:
    db = tmp_path / "paging.db"
    store = Store(db)
    start = time.time_ns()
    store.write_records(
        {
            "kind": "ended",
            "span": {
                "trace_id": f"{i:032x}",
                "span_id": f"{i:016x}",
                "name": "t",
                "start_time": start + (i // 3),
                "end_time": start + 1000 + i,
            },
        }
        for i in range(130)
    )
    store.close()
    server = StudioServer(db)
    server.start()
    try:
        for sort in ("start", "latency"):
            seen: list[str] = []
            cursor = ""
            while True:
                page = get(server, f"/api/traces?limit=50&sort={sort}&cursor={cursor}")[1]
                seen += [t["trace_id"] for t in page["traces"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert len(seen) == 130
            assert len(set(seen)) == 130
    finally:
        server.stop()


def test_sessions_dashboard_and_changes(hub: obshub.Hub, studio: StudioServer) -> None:
    before = get(studio, "/api/changes")[1]["changes"]
    record_agent(hub, question="first question")
    record_agent(hub, question="second question", answer="second answer")
    assert hub.flush(timeout=5)
    assert get(studio, "/api/changes")[1]["changes"] > before
    sessions = get(studio, "/api/sessions")[1]["sessions"]
    assert [(s["session_id"], s["traces"]) for s in sessions] == [("s-42", 2)]
    turns = get(studio, "/api/sessions/s-42")[1]["turns"]
    assert [(t["input"], t["output"]) for t in turns] == [
        ("first question", "It ships tomorrow."),
        ("second question", "second answer"),
    ]
    dash = get(studio, "/api/dashboard")[1]
    assert dash["traces"] == 2
    [model] = dash["per_model"]
    assert (model["model"], model["generations"], model["tokens"]) == ("gpt-4o", 2, 1814)
    assert model["p50_ms"] is not None
    assert model["p95_ms"] >= model["p50_ms"]
    assert dash["per_day"][0]["traces"] == 2


def test_the_server_is_read_only_and_answers_loopback_hosts_only(
    studio: StudioServer,
) -> None:
    assert studio.server_address[0] == "127.0.0.1"
    assert get(studio, "/api/traces", host="evil.example:80")[0] == 403
    assert get(studio, "/", host=f"localhost:{studio.server_address[1]}")[0] == 200
    conn = studio.open()
    with pytest.raises(Exception, match="readonly"):
        conn.execute("DELETE FROM traces")
    conn.close()
    status, body, _headers = get(studio, "/static/app.js")
    assert status == 200
    assert b"textContent" in body
    assert b"innerHTML" not in body
    assert get(studio, "/nope")[0] == 404


def test_obshub_studio_on_port_0_prints_its_url_and_imports_a_file(tmp_path: Path) -> None:
    jsonl = tmp_path / "events.jsonl"
    hub = obshub.Hub.from_config(
        {"configs": {"app": {"exporters": {"j": {"type": "jsonl", "path": str(jsonl)}}}}}
    )
    trace_id = record_agent(hub)
    assert hub.flush(timeout=5)
    hub.shutdown()
    db = tmp_path / "cli.db"
    args = ["studio", "--db", str(db), "--port", "0", "--no-browser", "--import", str(jsonl)]
    code = "import sys; from obshub._cli import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        imported = process.stdout.readline()
        assert imported.startswith("imported ")
        assert str(db) in imported
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)  # type: ignore[union-attr]
        assert not url.endswith(":0/")
        with urllib.request.urlopen(url + "api/traces", timeout=10) as response:
            listed = json.load(response)
        assert [t["trace_id"] for t in listed["traces"]] == [trace_id]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)
    assert process.returncode == 0


def test_the_demo_on_the_built_in_default_fills_the_store_and_says_how_to_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from obshub import _cli as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBSHUB_CONFIG", raising=False)
    out = io.StringIO()
    assert cli.main(["demo"], out=out) == 0
    capsys.readouterr()  # the console exporter's trees
    assert (
        out.getvalue()
        .rstrip()
        .endswith("see these traces in your browser:\n  obshub studio --db obshub-traces.db")
    )
    conn = Store(tmp_path / "obshub-traces.db").connection()
    assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 2
    assert conn.execute("SELECT count(DISTINCT session_id) FROM traces").fetchone()[0] == 1
    conn.close()
