"""Compact JSON: the one encoder for bodies, attribute values, spool and JSONL lines."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["compact_json", "json_string"]

# One encoder for every call: json.dumps() with options builds a new one each time,
# which was a visible share of the exporter worker's time.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_JSON_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str)


def json_string(value: Any) -> str:
    """Compact JSON text of ``value`` (values that JSON cannot hold become strings)."""
    return _JSON.encode(value)


def compact_json(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8 (no spaces; unknown objects as ``str()``).

    Text with a lone surrogate (from a badly decoded file name, say) has no
    UTF-8 form; then the JSON is written in ASCII, where its ``\\u`` escape keeps
    it exactly.
    """
    try:
        return _JSON.encode(value).encode()
    except UnicodeEncodeError:
        return _JSON_ASCII.encode(value).encode()
