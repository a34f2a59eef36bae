"""Compact JSON text: the one encoder plugins use for bodies and attribute values."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_string"]

# One encoder for every call: json.dumps() with options builds a new one each time,
# which was a visible share of the exporter worker's time.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def json_string(value: Any) -> str:
    """Compact JSON text of ``value`` (values that JSON cannot hold become strings)."""
    return _JSON.encode(value)
