"""A realistic support-agent conversation, recorded through a hub (``obshub demo``).

No model is called: answers, token counts and costs are fixed, timings are
short pauses. What the backends receive is what a real agent would produce: a
session of two turns, each an agent run with model generations carrying
usage and cost, a tool call, a retrieval and an event, and a score.
"""

from __future__ import annotations

import time
from typing import Any

from obshub._hub import Hub
from obshub.spans import SpanType

__all__ = ["run_demo"]

_SYSTEM = "You are the support agent of Acme Parcel. Be brief and precise."

_TURNS: list[dict[str, Any]] = [
    {
        "question": "My order #A-1042 hasn't arrived yet. Where is it?",
        "tool": "lookup_order",
        "tool_args": {"order_id": "A-1042"},
        "tool_result": {"status": "in_transit", "carrier": "DHL", "eta": "2026-11-29"},
        "plan_usage": {"input": 412, "output": 38, "cached_input": 256},
        "answer": "Your order A-1042 is in transit with DHL and should arrive on 29 November.",
        "answer_usage": {"input": 561, "output": 41, "cached_input": 256},
        "event": ("order-found", {"order_id": "A-1042", "status": "in_transit"}),
    },
    {
        "question": "Can you deliver it to my office instead? 5 Canal St, Springfield.",
        "tool": "change_delivery_address",
        "tool_args": {"order_id": "A-1042", "address": "5 Canal St, Springfield"},
        "tool_result": {"ok": True, "fee": 0},
        "plan_usage": {"input": 655, "output": 52, "cached_input": 512, "reasoning": 24},
        "answer": "Done: A-1042 will now be delivered to 5 Canal St, Springfield, at no cost.",
        "answer_usage": {"input": 742, "output": 37, "cached_input": 512},
        "event": ("address-changed", {"order_id": "A-1042"}),
    },
]

# gpt-4o-mini list prices per token (USD), to give the demo realistic costs.
_PRICE_IN = 0.15 / 1_000_000
_PRICE_CACHED = 0.075 / 1_000_000
_PRICE_OUT = 0.60 / 1_000_000


def _cost(usage: dict[str, int]) -> dict[str, float]:
    cached = usage.get("cached_input", 0)
    cost_in = (usage["input"] - cached) * _PRICE_IN + cached * _PRICE_CACHED
    cost_out = usage["output"] * _PRICE_OUT
    return {"input": cost_in, "output": cost_out, "total": cost_in + cost_out}


def _generation(
    hub: Hub, name: str, messages: list[dict[str, str]], output: Any, usage: dict[str, int]
) -> None:
    with hub.span(
        name,
        type=SpanType.MODEL_GENERATION,
        model="gpt-4o-mini",
        provider="openai",
        parameters={"temperature": 0.2, "max_tokens": 512},
        input=messages,
        prompt={"name": "support-agent", "version": 3},
    ) as gen:
        time.sleep(0.03)
        gen.update(completion_start_time=time.time_ns())
        time.sleep(0.02)
        gen.update(output=output, usage=usage, cost=_cost(usage))


def run_demo(hub: Hub, session_id: str = "demo-session-1", pause: float = 0.01) -> list[str]:
    """Record the two-turn conversation; returns the trace ids."""
    trace_ids: list[str] = []
    history: list[dict[str, str]] = [{"role": "system", "content": _SYSTEM}]

    @hub.observe(type=SpanType.RETRIEVAL, name="search_help_center")
    def search_help_center(query: str) -> list[str]:
        time.sleep(pause)
        return ["Deliveries: addresses can be changed until the parcel is out for delivery."]

    for turn in _TURNS:
        question = turn["question"]
        history.append({"role": "user", "content": question})
        with hub.span(
            "support-agent",
            type=SpanType.AGENT_RUN,
            input=question,
            session_id=session_id,
            user_id="customer-7",
            tags=["demo", "support"],
            metadata={"channel": "chat", "locale": "en-GB"},
        ) as agent:
            trace_ids.append(agent.trace_id)
            docs = search_help_center(question)
            tool_call = {"name": turn["tool"], "arguments": turn["tool_args"]}
            _generation(
                hub,
                "plan",
                [*history, {"role": "system", "content": docs[0]}],
                {"tool_call": tool_call},
                turn["plan_usage"],
            )
            with hub.span(turn["tool"], type=SpanType.TOOL_CALL, input=turn["tool_args"]) as tool:
                time.sleep(pause)
                tool.update(output=turn["tool_result"])
            event_name, event_meta = turn["event"]
            agent.event(event_name, metadata=event_meta)
            history.append({"role": "tool", "content": str(turn["tool_result"])})
            _generation(hub, "answer", list(history), turn["answer"], turn["answer_usage"])
            history.append({"role": "assistant", "content": turn["answer"]})
            agent.update(output=turn["answer"])
    hub.score(trace_id=trace_ids[-1], name="helpfulness", value=0.9, comment="resolved in chat")
    hub.score(trace_id=trace_ids[-1], name="resolved", value=True)
    return trace_ids
