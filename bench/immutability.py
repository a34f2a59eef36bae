"""What it costs to keep one exporter from changing what another receives.

A span snapshot is built once per event and config and shared by every
exporter of the config. Two ways to make sure no exporter can change what the
others get, measured against sharing plain mutable values (how obshub worked
before), in one run, on the same data:

- ``shared-mutable`` (before): the worker converts the span's input to JSON
  values once (``to_jsonable``); every exporter encodes the same plain dicts.
- ``read-only`` (what obshub does): the conversion builds read-only dicts and
  lists (``FrozenDict`` / ``FrozenList``) in the same pass
  (``to_jsonable(..., frozen=True)``), once per event; exporters encode the
  frozen values.
- ``read-only-2-pass``: the plain conversion, then a separate `freeze` pass
  (the option not taken).
- ``per-exporter-copy``: the same conversion, then each exporter gets its own
  deep copy (`thaw`) and encodes that.

Each component is timed on its own (best of ``--repeat`` runs of ``--number``
calls, µs per call), then combined per event for a config with ``--exporters``
exporters that each JSON-encode the event (as ``jsonl``, and the Langfuse and
OTLP exporters for input and output, do). Payloads: a ~1 KB chat input (three
messages) and a ~100 KB retrieval input (100 documents with metadata).

    .venv/bin/python bench/immutability.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obshub._serialization import to_jsonable
from obshub.spans import freeze, thaw

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def chat_input() -> dict[str, Any]:
    """About 1 KB: a model call's messages and settings."""
    return {
        "messages": [
            {"role": "system", "content": "You are a helpful support assistant. " * 6},
            {"role": "user", "content": "My order 12345 has not arrived, what can I do? " * 5},
            {
                "role": "assistant",
                "content": "Let me check the status of order 12345 for you.",
                "tool_calls": [{"id": "call_1", "name": "lookup_order", "args": {"id": 12345}}],
            },
        ],
        "temperature": 0.2,
        "max_tokens": 512,
        "password": "hunter2",
    }


def retrieval_input() -> dict[str, Any]:
    """About 100 KB: a retrieval step's documents, each with text and metadata."""
    return {
        "query": "refund policy for damaged items",
        "documents": [
            {
                "id": f"doc-{i}",
                "score": 0.9 - i / 1000,
                "text": ("Refunds for damaged items are issued within 14 days. " * 16)[:900],
                "metadata": {"source": "kb", "section": i % 7, "tags": ["policy", "refund"]},
            }
            for i in range(100)
        ],
        "password": "hunter2",
    }


def best_us(fns: dict[str, Callable[[], Any]], number: int, repeat: int) -> dict[str, float]:
    """µs per call of each function: the best of ``repeat`` rounds.

    The functions take turns within each round, so that a burst of load on the
    machine slows them all alike instead of one of them.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number))
    return {name: seconds / number * 1e6 for name, seconds in best.items()}


def measure(payload: Any, exporters: int, number: int, repeat: int) -> dict[str, Any]:
    converted = to_jsonable(payload)
    frozen = freeze(converted)
    assert frozen == converted
    assert _ENCODER.encode(frozen) == _ENCODER.encode(converted)
    size = len(_ENCODER.encode(converted).encode("utf-8"))
    assert to_jsonable(payload, frozen=True) == converted
    parts = best_us(
        {
            "convert": lambda: to_jsonable(payload),
            "convert_frozen": lambda: to_jsonable(payload, frozen=True),
            "freeze_pass": lambda: freeze(converted),
            "encode_plain": lambda: _ENCODER.encode(converted),
            "encode_frozen": lambda: _ENCODER.encode(frozen),
            "copy": lambda: thaw(converted),
        },
        number,
        repeat,
    )
    totals = {
        "shared-mutable": parts["convert"] + exporters * parts["encode_plain"],
        "read-only": parts["convert_frozen"] + exporters * parts["encode_frozen"],
        "read-only-2-pass": parts["convert"]
        + parts["freeze_pass"]
        + exporters * parts["encode_frozen"],
        "per-exporter-copy": parts["convert"] + exporters * (parts["copy"] + parts["encode_plain"]),
    }
    return {"bytes": size, "parts_us": parts, "per_event_us": totals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a second or two")
    parser.add_argument("--exporters", type=int, default=2, help="exporters in the config (2)")
    parser.add_argument("--repeat", type=int, default=None, help="timing runs per figure (7)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 15)
    cases = {"1KB": (chat_input(), 1000), "100KB": (retrieval_input(), 20)}
    results: dict[str, Any] = {
        "exporters": args.exporters,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cases": {},
    }
    for label, (payload, number) in cases.items():
        number = max(1, number // 10) if args.quick else number
        results["cases"][label] = measure(payload, args.exporters, number, repeat)

    print(f"µs per event, config with {args.exporters} exporters that JSON-encode the event")
    names = ("shared-mutable", "read-only", "read-only-2-pass", "per-exporter-copy")
    print(
        f"{'input':>7} {'bytes':>7} | "
        + " ".join(f"{n:>17}" for n in names)
        + " | read-only vs before"
    )
    for label, case in results["cases"].items():
        totals = case["per_event_us"]
        before = totals["shared-mutable"]
        extra = totals["read-only"] - before
        figures = " ".join(f"{totals[n]:>17.1f}" for n in names)
        print(f"{label:>7} {case['bytes']:>7} | {figures} | {extra:>+8.1f} ({extra / before:+.0%})")
    print("\ncomponents, µs per call:")
    for label, case in results["cases"].items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in case["parts_us"].items())
        print(f"  {label}: {parts}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
