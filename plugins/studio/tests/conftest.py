"""Fixtures of the studio's tests: a store filled through a real hub, and a running studio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_studio.server import StudioServer

import obshub


def make_hub(db: Path, **exporter: Any) -> obshub.Hub:
    return obshub.Hub.from_config(
        {
            "configs": {
                "app": {
                    "service_name": "support-bot",
                    "exporters": {
                        "studio": {"type": "sqlite", "path": str(db), "realtime": True, **exporter}
                    },
                }
            }
        }
    )


def record_agent(
    hub: obshub.Hub,
    *,
    question: str = "Where is my order #1234?",
    answer: str = "It ships tomorrow.",
    session_id: str = "s-42",
    user_id: str = "u-7",
    tags: tuple[str, ...] = ("beta",),
    model: str = "gpt-4o",
    fail: bool = False,
    name: str = "support-agent",
) -> str:
    """One agent trace: a chat generation with usage and cost, a tool call, an event, a score."""
    with hub.span(
        name,
        type="agent_run",
        input=question,
        session_id=session_id,
        user_id=user_id,
        tags=list(tags),
    ) as agent:
        with hub.span(
            model,
            type="model_generation",
            model=model,
            provider="openai",
            parameters={"temperature": 0.2},
            input=[
                {"role": "system", "content": "You are a support agent."},
                {"role": "user", "content": question},
            ],
        ) as gen:
            gen.update(
                output={"role": "assistant", "content": answer},
                usage={"input": 812, "output": 95, "cached_input": 512, "reasoning": 40},
                cost={"input": 0.002, "output": 0.001},
                completion_start_time=gen_start_plus(gen, 120_000_000),
            )
        try:
            with hub.span("lookup_order", type="tool_call", input={"order": 1234}) as tool:
                if fail:
                    raise LookupError("order service unreachable")
                tool.update(output={"status": "shipped"})
        except LookupError:
            pass
        agent.event("cache-hit", metadata={"key": "faq-12"})
        agent.update(output=answer)
    hub.score(trace_id=agent.trace_id, name="helpfulness", value=0.9)
    return agent.trace_id


def gen_start_plus(span: Any, ns: int) -> int:
    import time

    return time.time_ns() + ns


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "traces.db"


@pytest.fixture
def hub(db: Path) -> Iterator[obshub.Hub]:
    hub = make_hub(db)
    yield hub
    hub.shutdown(timeout=5)


@pytest.fixture
def studio(db: Path) -> Iterator[StudioServer]:
    server = StudioServer(db, port=0)
    server.start()
    yield server
    server.stop()
