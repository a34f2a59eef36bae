"""Interpreter exit: spans recorded just before a normal exit are sent (or spooled)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from obshub_langfuse.testing import LangfuseStandIn

import obshub
from obshub._delivery.spool import read_records
from obshub.spans import SpanEvent
from obshub.testing import wait_for

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import obshub

    exporter = {
        "type": "langfuse",
        "public_key": os.environ["T_PK"],
        "secret_key": os.environ["T_SK"],
        "base_url": os.environ["T_URL"],
        "timeout": 60,
        "batch": {"max_size": 512, "interval": 60},
    }
    if os.environ.get("T_SPOOL"):
        exporter["spool_dir"] = os.environ["T_SPOOL"]
    hub = obshub.Hub.from_config({"configs": {"app": {"exporters": {"langfuse": exporter}}}})
    ids = []
    for i in range(int(os.environ["T_COUNT"])):
        with hub.span("before-exit", type="tool_call", input={"i": i}) as span:
            pass
        ids.append(span.span_id)
    print("IDS", json.dumps(ids), flush=True)
    # No flush, no shutdown: the atexit handler must deliver (or spool) them.
    """
)


def run_app(server: LangfuseStandIn, count: int, **env: str) -> tuple[list[str], float]:
    """Run SCRIPT in a fresh interpreter; return the span ids it recorded and its wall time."""
    environ = {
        **os.environ,
        "T_PK": server.public_key,
        "T_SK": server.secret_key,
        "T_URL": server.url,
        "T_COUNT": str(count),
        **env,
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("IDS ")]
    return json.loads(line[4:]), took


def test_spans_recorded_right_before_a_normal_exit_are_delivered(
    server: LangfuseStandIn, kit: Any, figures: Any
) -> None:
    sent, took = run_app(server, 200)
    server.wait_for_observations(200, timeout=kit.WAIT)
    delivered = kit.delivery_figures(server, sent)
    kit.report(figures, "exit_without_flush", **delivered, process_seconds=round(took, 3))
    assert delivered["lost"] == 0


def test_exit_with_a_hung_backend_is_bounded_and_spools_what_was_left(
    server: LangfuseStandIn, hubs: Any, stall: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    stall.install(server)  # every traces request hangs (up to 60 s)
    spool_dir = tmp_path / "spool"
    shutdown_timeout = 1.0
    sent, took = run_app(
        server, 200, T_SPOOL=str(spool_dir), OBSHUB_SHUTDOWN_TIMEOUT=str(shutdown_timeout)
    )
    on_disk: list[str] = []
    for path in sorted(spool_dir.rglob("seg-*")):
        items, bad = read_records(path)
        assert bad == 0
        on_disk.extend(i.span.span_id for i in items if isinstance(i, SpanEvent))
    assert sorted(on_disk) == sorted(sent)  # the batch stuck in the request included

    # Later, the backend is healthy again and the app starts again on the same spool.
    stall.release()
    started = time.monotonic()
    config = {
        "type": "langfuse",
        "public_key": server.public_key,
        "secret_key": server.secret_key,
        "base_url": server.url,
        "spool_dir": str(spool_dir),
    }
    restarted = obshub.Hub.from_config({"configs": {"app": {"exporters": {"langfuse": config}}}})
    hubs.built.append(restarted)  # shut down by the fixture
    server.wait_for_observations(200, timeout=kit.WAIT)
    wait_for(lambda: not list(spool_dir.rglob("seg-*")), message="spool not emptied")
    delivered = kit.delivery_figures(server, sent)
    kit.report(
        figures,
        "exit_hung_backend_spool",
        **delivered,
        shutdown_timeout_s=shutdown_timeout,
        backend_delay_s=stall.limit,
        process_seconds=round(took, 3),
        spooled_at_exit=len(on_disk),
        redelivery_seconds=kit.elapsed(started),
    )
    assert took < shutdown_timeout + 4.0, f"exit took {took:.1f} s"
    assert delivered["lost"] == 0
