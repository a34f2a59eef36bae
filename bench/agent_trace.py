"""The five-span agent request of ``wholeprocess.py`` and ``dropcurve.py``, per tracing API.

One request of the application = what an agent does for one user question:

- ``support-agent`` (root, agent): the question in, the final answer out,
  a little metadata;
- ``kb-retrieval`` (retrieval): the query in, two knowledge-base passages out;
- ``gpt-4o`` (model generation): model, provider, parameters, a system prompt
  and two chat messages in, the answer out, token usage;
- ``search_tickets`` and ``get_account`` (tool calls): small JSON arguments
  in, small JSON results out.

About 1 KB of payload per span (``payload_bytes()`` measures it), every
request with its own newly built question and containers (a live
application's data), the strings that an application keeps (system prompt,
knowledge-base passages) shared.

``work`` is the application's own CPU-bound work, pure Python: the request
runs a quarter of it inside each child span (so the spans have a duration),
and the baseline runs the same work and builds the same data without
recording anything. ``calibrate`` sizes it to a number of microseconds on
this machine.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

SPANS_PER_REQUEST = 5
CHUNKS = 4  # the work is split over the four child spans

SYSTEM = (
    "You are a helpful, precise support agent for Acme Cloud. Answer only from the "
    "knowledge-base passages and the account data you are given; if they do not cover the "
    "question, say so and offer to open a ticket. Never ask for passwords or one-time codes. "
    "Keep answers under 120 words, use numbered steps for procedures, and end with a short "
    "question that checks whether the user's problem is solved."
)
PASSAGES = (
    "Account recovery without the recovery email: open Settings > Security and choose "
    "'Reset password'. If the recovery email is no longer reachable, pick 'Verify by SMS' "
    "to receive a six-digit code on the phone number on file. Codes expire after ten minutes.",
    "If neither the recovery email nor the phone number is available, support can verify "
    "identity with the last four digits of the payment card and the date of the most recent "
    "invoice. Verification by support takes up to one business day.",
    "To change the recovery email, sign in, open Settings > Security > Recovery and enter "
    "the new address; a confirmation link is sent to it and must be opened within 24 hours.",
)
ANSWER = (
    "1. Open Settings > Security and choose 'Reset password'. 2. Select 'Verify by SMS': "
    "a six-digit code goes to the phone number on your account (it expires after ten "
    "minutes). 3. Enter the code and choose a new password. If you no longer have that "
    "phone either, I can start an identity check using your payment card's last four digits "
    "and your latest invoice date; it takes up to one business day. Did the SMS option work?"
)

#: ``request(i)``: the application's i-th request (work + data + its spans, if any)
RequestFn = Callable[[int], None]


def spin(n: int) -> int:
    """Pure-Python CPU work: ``n`` loop iterations of integer arithmetic."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


def calibrate(target_us: float, samples: int = 300) -> tuple[int, float]:
    """Iterations per chunk so that ``CHUNKS`` chunks take ``target_us``; the measured µs.

    Corrects on the median of ``samples`` requests' work until one measurement
    lands within 5% of the target (at most 8 tries). The machine's speed
    drifts: each run's process measures the work again and reports it.
    """
    chunk = 500
    took = measure_work(chunk, samples)
    for _ in range(8):
        chunk = max(1, round(chunk * target_us / took))
        took = measure_work(chunk, samples)
        if abs(took - target_us) <= 0.05 * target_us:
            break
    return chunk, took


def measure_work(chunk: int, samples: int = 300) -> float:
    """Median µs of one request's work (``CHUNKS`` chunks of ``chunk`` iterations)."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(CHUNKS):
            spin(chunk)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


# -- the request's data -------------------------------------------------------------------


def request_data(i: int) -> dict[str, Any]:
    """The i-th request's own data (new objects; the constant strings shared)."""
    question = (
        f"How do I reset my password if I no longer have access to my recovery email? "
        f"My username is user{i % 10_000} and I am on the Team plan (request {i})."
    )
    query = f"password reset without recovery email team plan user{i % 10_000}"
    return {
        "question": question,
        "meta": {
            "channel": "web",
            "session": f"s-{i // 8}",
            "locale": "en-GB",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0",
            "steps": ["kb-retrieval", "gpt-4o", "search_tickets", "get_account"],
        },
        "query": query,
        "passages": [
            {"id": "kb-1042", "score": 0.91, "title": "Reset your password", "text": PASSAGES[0]},
            {"id": "kb-2210", "score": 0.84, "title": "Identity checks", "text": PASSAGES[1]},
            {"id": "kb-0311", "score": 0.62, "title": "Recovery email", "text": PASSAGES[2]},
        ],
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": "Let me check the recovery options on your plan."},
        ],
        "answer": ANSWER,
        "search_args": {"query": query, "status": ["open", "pending"], "limit": 5},
        "search_result": {
            "tickets": [
                {
                    "id": f"T-{80_000 + i % 997}",
                    "subject": "Cannot receive recovery email",
                    "status": "closed",
                    "resolution": "Verified by SMS, password reset by the user.",
                },
                {
                    "id": f"T-{70_000 + i % 991}",
                    "subject": "Password reset link expired",
                    "status": "closed",
                    "resolution": "New link sent; the user reset the password within the hour.",
                },
                {
                    "id": f"T-{60_000 + i % 983}",
                    "subject": "Locked out after changing phone number",
                    "status": "closed",
                    "resolution": "Identity verified by support with card digits and invoice.",
                },
            ],
            "total": 3,
            "note": "Both tickets were closed after SMS verification; no open ticket remains.",
        },
        "account_args": {"username": f"user{i % 10_000}", "fields": ["plan", "contact"]},
        "account_result": {
            "username": f"user{i % 10_000}",
            "plan": "team",
            "seats": 12,
            "phone_on_file": True,
            "recovery_email_verified": False,
            "mfa": "sms",
            "created": "2023-04-11",
            "region": "eu-west-1",
            "status": "active",
            "last_invoice": "2026-10-31",
            "billing_contact": {"name": "Finance team", "email": "billing@example.com"},
            "address": {"city": "Leeds", "country": "GB", "postcode": "LS1 4AP"},
            "features": ["sso", "audit-log", "priority-support", "sms-recovery"],
            "open_tickets": 0,
        },
    }


def payload_bytes() -> dict[str, int]:
    """JSON bytes of each span's input + output (+ metadata) in one request."""
    d = request_data(0)

    def size(*values: Any) -> int:
        return sum(len(json.dumps(v)) for v in values)

    return {
        "support-agent": size(d["question"], d["answer"], d["meta"]),
        "kb-retrieval": size(d["query"], d["passages"]),
        "gpt-4o": size(d["messages"], d["answer"]),
        "search_tickets": size(d["search_args"], d["search_result"]),
        "get_account": size(d["account_args"], d["account_result"]),
    }


# -- the request, per API ----------------------------------------------------------------


def baseline_request(chunk: int) -> RequestFn:
    """The same work and data, nothing recorded."""

    def request(i: int) -> None:
        d = request_data(i)
        for _ in range(CHUNKS):
            spin(chunk)
        if d["answer"] is None:  # keep the data alive as long as a traced request does
            raise AssertionError

    return request


def obshub_request(hub: Any, chunk: int) -> RequestFn:
    span = hub.span

    def request(i: int) -> None:
        d = request_data(i)
        with span("support-agent", type="agent_run", input=d["question"], metadata=d["meta"]) as a:
            with span("kb-retrieval", type="retrieval", input=d["query"]) as r:
                spin(chunk)
                r.update(output=d["passages"])
            with span(
                "gpt-4o",
                type="model_generation",
                model="gpt-4o",
                provider="openai",
                parameters={"temperature": 0.2, "max_tokens": 512},
                input=d["messages"],
            ) as gen:
                spin(chunk)
                gen.update(
                    output=d["answer"], usage={"input": 812, "output": 95, "cached_input": 200}
                )
            with span("search_tickets", type="tool_call", input=d["search_args"]) as t1:
                spin(chunk)
                t1.update(output=d["search_result"])
            with span("get_account", type="tool_call", input=d["account_args"]) as t2:
                spin(chunk)
                t2.update(output=d["account_result"])
            a.update(output=d["answer"])

    return request


def otel_request(tracer: Any, chunk: int) -> RequestFn:
    """The OTel SDK: ``gen_ai.*`` attributes, JSON strings made on the app thread."""
    start = tracer.start_as_current_span
    dumps = json.dumps

    def request(i: int) -> None:
        d = request_data(i)
        with start(
            "support-agent",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "support-agent",
                "input.value": dumps(d["question"]),
                "metadata": dumps(d["meta"]),
            },
        ) as a:
            with start(
                "kb-retrieval",
                attributes={"gen_ai.operation.name": "retrieval", "input.value": dumps(d["query"])},
            ) as r:
                spin(chunk)
                r.set_attribute("output.value", dumps(d["passages"]))
            with start(
                "gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.request.max_tokens": 512,
                    "gen_ai.input.messages": dumps(d["messages"]),
                },
            ) as gen:
                spin(chunk)
                gen.set_attributes(
                    {
                        "gen_ai.output.messages": dumps(d["answer"]),
                        "gen_ai.usage.input_tokens": 812,
                        "gen_ai.usage.output_tokens": 95,
                        "gen_ai.usage.cache_read.input_tokens": 200,
                    }
                )
            for name, args, result in (
                ("search_tickets", d["search_args"], d["search_result"]),
                ("get_account", d["account_args"], d["account_result"]),
            ):
                with start(
                    name,
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": name,
                        "gen_ai.tool.call.arguments": dumps(args),
                    },
                ) as tool:
                    spin(chunk)
                    tool.set_attribute("gen_ai.tool.call.result", dumps(result))
            a.set_attribute("output.value", dumps(d["answer"]))

    return request


def langfuse_request(client: Any, chunk: int) -> RequestFn:
    """The Langfuse SDK's observation types: agent, retriever, generation, tool."""
    start = client.start_as_current_observation

    def request(i: int) -> None:
        d = request_data(i)
        with start(
            name="support-agent", as_type="agent", input=d["question"], metadata=d["meta"]
        ) as a:
            with start(name="kb-retrieval", as_type="retriever", input=d["query"]) as r:
                spin(chunk)
                r.update(output=d["passages"])
            with start(
                name="gpt-4o",
                as_type="generation",
                model="gpt-4o",
                model_parameters={"temperature": 0.2, "max_tokens": 512},
                input=d["messages"],
            ) as gen:
                spin(chunk)
                # Langfuse's convention: "input" excludes the cached tokens (812 - 200).
                gen.update(
                    output=d["answer"],
                    usage_details={"input": 612, "output": 95, "input_cached_tokens": 200},
                )
            with start(name="search_tickets", as_type="tool", input=d["search_args"]) as t1:
                spin(chunk)
                t1.update(output=d["search_result"])
            with start(name="get_account", as_type="tool", input=d["account_args"]) as t2:
                spin(chunk)
                t2.update(output=d["account_result"])
            a.update(output=d["answer"])

    return request


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value); the value is read as JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value
