"""Tenant routing: configs built on demand by the selector, in a bounded cache retired when idle."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import obshub
from obshub._plugins import get_registry
from obshub._tenants import OnDemandConfigs

WAIT = 5.0


class Closing(obshub.MemoryExporter):
    """A memory exporter that says when it was shut down."""

    def __init__(self, **common: Any) -> None:
        super().__init__(**common)
        self.closed = threading.Event()

    def shutdown(self) -> None:
        self.closed.set()


class Tenants:
    """Per-tenant exporters, as a key lookup would give per-tenant credentials."""

    def __init__(self) -> None:
        self.exporters: dict[str, Closing] = {}
        self.builds: list[str] = []

    def table(self, tenant: str) -> Mapping[str, Any]:
        self.builds.append(tenant)
        exporter = self.exporters[tenant] = Closing(instance_name=f"lf-{tenant}")
        return {"service_name": f"svc-{tenant}", "pii": ["email"], "exporters": [exporter]}

    def selector(self, _name: str, _type: Any, fields: Mapping[str, Any]) -> Any:
        tenant = (fields.get("metadata") or {}).get("tenant")
        if tenant is None:
            return None
        return obshub.OnDemand(f"tenant-{tenant}", lambda: self.table(tenant))


def record(hub: obshub.Hub, tenant: str | None, count: int = 1) -> list[str]:
    ids = []
    for _ in range(count):
        metadata = {"tenant": tenant} if tenant else {}
        with hub.span("chat", metadata=metadata, input="from jane.doe@example.com") as span:
            ids.append(span.trace_id)
    return ids


def test_each_tenant_gets_its_own_config_built_once(hub_factory: Any) -> None:
    tenants = Tenants()
    default = obshub.MemoryExporter(instance_name="default")
    hub = hub_factory(exporters=[default], selector=tenants.selector)
    a = record(hub, "a", 3)
    b = record(hub, "b", 2)
    rest = record(hub, None, 2)
    a += record(hub, "a")
    assert hub.flush(WAIT)
    assert tenants.builds == ["a", "b"]
    assert [s.trace_id for s in tenants.exporters["a"].spans()] == a
    assert [s.trace_id for s in tenants.exporters["b"].spans()] == b
    assert [s.trace_id for s in default.spans()] == rest
    span = tenants.exporters["a"].spans()[0]
    assert span.input == "from [EMAIL]"  # the template's pii setting applies
    assert tenants.exporters["a"].events[0].service_name == "svc-a"
    assert default.spans()[0].input == "from jane.doe@example.com"
    assert "tenant-a/lf-a" in hub.stats()


def test_beyond_the_bound_the_least_recently_used_is_flushed_and_closed(
    hub_factory: Any,
) -> None:
    tenants = Tenants()
    hub = hub_factory(
        exporters=[obshub.MemoryExporter()], selector=tenants.selector, on_demand_max_configs=2
    )
    first = record(hub, "a", 2)
    record(hub, "b")
    record(hub, "a")  # a is now the most recently used
    record(hub, "c")  # b is retired
    assert tenants.exporters["b"].closed.wait(WAIT)
    assert not tenants.exporters["a"].closed.is_set()
    assert len(tenants.exporters["b"].spans()) == 1  # flushed before it was closed
    record(hub, "b")  # built again
    assert tenants.builds == ["a", "b", "c", "b"]
    assert hub.flush(WAIT)
    assert [s.trace_id for s in tenants.exporters["a"].spans()][:2] == first
    assert hub.shutdown(WAIT)
    assert all(e.closed.is_set() for e in tenants.exporters.values())


def test_idle_configs_are_retired() -> None:
    now = [0.0]
    cache = OnDemandConfigs(
        get_registry, {}, max_configs=10, idle_timeout=60.0, monotonic=lambda: now[0]
    )
    tenants = Tenants()
    live_a = cache.get(obshub.OnDemand("a", lambda: tenants.table("a")))
    now[0] = 30.0
    cache.get(obshub.OnDemand("b", lambda: tenants.table("b")))
    now[0] = 70.0
    cache.sweep()
    assert tenants.exporters["a"].closed.wait(WAIT)
    assert cache.find("a") is None
    assert cache.find("b") is not None
    assert live_a is not None
    assert cache.retired == 1
    now[0] = 95.0
    cache.sweep()
    assert tenants.exporters["b"].closed.wait(WAIT)


def test_a_template_that_fails_routes_to_the_default_config(hub_factory: Any) -> None:
    default = obshub.MemoryExporter()

    def broken() -> Mapping[str, Any]:
        raise KeyError("no keys for this tenant")

    hub = hub_factory(exporters=[default], selector=lambda *_: obshub.OnDemand("tenant-x", broken))
    ids = record(hub, "x")
    assert hub.flush(WAIT)
    assert [s.trace_id for s in default.spans()] == ids


def test_a_score_follows_its_trace_to_the_tenant_config(hub_factory: Any) -> None:
    tenants = Tenants()
    default = obshub.MemoryExporter(instance_name="default")
    hub = hub_factory(exporters=[default], selector=tenants.selector)
    (trace_id,) = record(hub, "a")
    hub.score(trace_id=trace_id, name="helpful", value=1.0)
    assert hub.flush(WAIT)
    assert tenants.exporters["a"].wait_for_scores(1, WAIT)
    assert [s.trace_id for s in tenants.exporters["a"].scores] == [trace_id]
    assert default.scores == []
