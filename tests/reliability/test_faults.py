"""Faults on the wire: random 5xx/429/resets/timeouts, 413 splitting, 401 cooldown."""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from obshub_langfuse.testing import Fault, IncomingRequest, LangfuseStandIn
from structlog.testing import capture_logs

from obshub.testing import wait_for

FAULT_RATE = 0.3
#: Client timeout in the random-fault test; a "slow" fault answers after it, so
#: the server processes a request the client has given up on: a duplicate.
CLIENT_TIMEOUT = 0.15
FAULTS = (
    Fault.error(500),
    Fault.error(502),
    Fault.error(503),
    Fault.error(504),
    Fault.error(429, retry_after=0.01),
    Fault.connection_reset(),
    Fault.slow(CLIENT_TIMEOUT + 0.05),
)


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def test_random_faults_on_30_percent_of_requests_lose_nothing(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any
) -> None:
    rng = random.Random(20261127)
    lock = threading.Lock()
    injected: dict[str, int] = {}

    def faults(request: IncomingRequest) -> Fault | None:
        with lock:
            if rng.random() >= FAULT_RATE:
                return None
            fault = rng.choice(FAULTS)
            key = "reset" if fault.reset else "slow" if fault.delay else str(fault.status)
            injected[key] = injected.get(key, 0) + 1
        return fault

    server.fault_function = faults
    hub = hubs(timeout=CLIENT_TIMEOUT, batch={"max_size": 10, "interval": 0.05})
    recorder = kit.Recorder(hub)
    started = time.monotonic()
    recorder.record_in_threads(threads=4, per_thread=250)
    assert hub.flush(kit.WAIT), kit.only_stats(hub)
    took = kit.elapsed(started)

    server.wait_for_observations(1000, timeout=kit.WAIT)
    delivered = kit.delivery_figures(server, recorder.sent)
    stats = kit.only_stats(hub)
    requests = server.requests("traces")
    kit.report(
        figures,
        "random_faults",
        **delivered,
        threads=4,
        fault_rate=FAULT_RATE,
        requests=len(requests),
        faults=sum(injected.values()),
        faults_by_kind=dict(sorted(injected.items())),
        retried=stats.retried,
        failed=stats.failed,
        dropped=stats.dropped,
        max_stall_ms=recorder.max_stall_ms,
        seconds=took,
    )
    assert delivered["lost"] == 0
    assert delivered["received"] == len(set(recorder.sent)) == 1000
    assert sum(injected.values()) > 0
    assert (stats.failed, stats.dropped) == (0, 0)
    assert recorder.max_stall < 0.25, f"a recording call took {recorder.max_stall_ms} ms"


def test_413_splits_batches_until_every_span_arrives(
    hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    limit = 8_000
    with LangfuseStandIn(max_body_size=limit) as small:
        hub = hubs(small, batch={"max_size": 200, "interval": 60})
        recorder = kit.Recorder(hub)
        with capture_logs() as logs:
            # Incompressible payloads, so gzip cannot hide the size.
            for _ in range(200):
                recorder.record(1, "chunky", {"blob": os.urandom(150).hex()})
            (huge,) = recorder.record(1, "huge", {"blob": os.urandom(20_000).hex()})
            assert hub.flush(kit.WAIT), kit.only_stats(hub)
        small.wait_for_observations(201, timeout=kit.WAIT)
        delivered = kit.delivery_figures(small, recorder.sent)
        statuses = [r.status for r in small.requests("traces")]
        truncated = next(o for o in small.observations() if o.id == huge)
        kit.report(
            figures,
            "split_413",
            **delivered,
            max_body_bytes=limit,
            requests=len(statuses),
            rejected_413=statuses.count(413),
            largest_accepted_body=max(
                r.body_size for r in small.requests("traces") if r.status == 200
            ),
            splits_logged=len(events(logs, "batch_split")),
        )
        hub.shutdown(timeout=kit.WAIT)
    assert delivered["lost"] == 0
    assert statuses.count(413) > 0
    assert events(logs, "batch_split")
    # The one span too large even alone is sent once, its input replaced by a marker.
    assert str(truncated.input).startswith("[obshub: truncated, ")
    assert len(events(logs, "span_truncated")) == 1


def _auth_fault_times(server: LangfuseStandIn) -> list[tuple[float, int | None]]:
    return [(r.received_at, r.status) for r in server.requests("traces")]


def test_401_pauses_without_a_retry_storm_and_resumes_after_the_cooldown(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any
) -> None:
    cooldown = 0.2
    server.inject("traces", Fault.error(401), Fault.error(401))
    hub = hubs(auth_cooldown=cooldown, realtime=True)
    recorder = kit.Recorder(hub)
    with capture_logs() as logs:
        recorder.record(10, "before")
        server.wait_for_requests(1, "traces", timeout=kit.WAIT)
        wait_for(lambda: kit.only_stats(hub).paused, message="not paused after a 401")
        # Recorded during the cooldown: held back, not sent.
        recorder.record(10, "during")
        assert hub.flush(kit.WAIT), kit.only_stats(hub)
    server.wait_for_observations(20, timeout=kit.WAIT)
    times = _auth_fault_times(server)
    first_401 = times[0][0]
    in_first_cooldown = [t for t, _ in times if t < first_401 + cooldown * 0.95]
    gaps = [round(b[0] - a[0], 3) for a, b in itertools.pairwise(times)]
    delivered = kit.delivery_figures(server, recorder.sent)
    kit.report(
        figures,
        "auth_401",
        **delivered,
        cooldown_s=cooldown,
        statuses=[s for _, s in times],
        requests_in_first_cooldown=len(in_first_cooldown),
        gaps_s=gaps[:3],
        export_paused_logged=len(events(logs, "export_paused")),
        export_resumed_logged=len(events(logs, "export_resumed")),
        max_stall_ms=recorder.max_stall_ms,
    )
    assert delivered["lost"] == 0
    assert [s for _, s in times[:3]] == [401, 401, 200]
    assert len(in_first_cooldown) == 1, "requests were sent during the cooldown"
    # The second refusal doubles the pause: probes at ~0.2 s, then ~0.4 s later.
    assert gaps[0] >= cooldown * 0.95
    assert gaps[1] >= 2 * cooldown * 0.95
    assert len(events(logs, "export_paused")) == 1
    assert len(events(logs, "export_resumed")) == 1
    assert not kit.only_stats(hub).paused


def test_401_with_a_spool_holds_on_disk_and_probes_by_itself_after_the_cooldown(
    server: LangfuseStandIn, hubs: Any, kit: Any, figures: Any, tmp_path: Path
) -> None:
    cooldown = 0.2
    server.inject("traces", Fault.error(401), Fault.error(401))
    hub = hubs(auth_cooldown=cooldown, realtime=True, spool_dir=str(tmp_path / "spool"))
    recorder = kit.Recorder(hub)
    started = time.monotonic()
    with capture_logs() as logs:
        recorder.record(10, "before")
        wait_for(lambda: kit.only_stats(hub).spooled == 10, message="held batch not spooled")
        # Nothing else is recorded: the replay thread must probe when the cooldown ends.
        server.wait_for_observations(10, timeout=kit.WAIT)
        wait_for(lambda: kit.only_stats(hub).exported == 10, message="not resumed")
    took = kit.elapsed(started)
    times = _auth_fault_times(server)
    in_first_cooldown = [t for t, _ in times if t < times[0][0] + cooldown * 0.95]
    stats = kit.only_stats(hub)
    delivered = kit.delivery_figures(server, recorder.sent)
    kit.report(
        figures,
        "auth_401_spool",
        **delivered,
        cooldown_s=cooldown,
        statuses=[s for _, s in times],
        requests_in_first_cooldown=len(in_first_cooldown),
        spooled=stats.spooled,
        replayed=stats.replayed,
        seconds_to_delivery=took,
    )
    assert delivered["lost"] == 0
    assert [s for _, s in times[:3]] == [401, 401, 200]
    assert len(in_first_cooldown) == 1
    assert any(e["reason"] == "paused" for e in events(logs, "events_spooled"))
    assert len(events(logs, "export_resumed")) == 1
    assert took < 5.0  # two cooldowns (0.2 s + 0.4 s), not a REPLAY_INTERVAL
