"""How many bytes a queued record keeps alive, estimated on the application thread.

The delivery queue is bounded by this estimate (``max_queue_bytes``) as well
as by a count. It must cost next to nothing, so it reads lengths, never
serialises.
"""

from __future__ import annotations

from typing import Any

__all__ = ["approx_size"]

#: Estimated bytes of a queued record before its values: the record, the live
#: span it keeps alive and their dicts (measured with tracemalloc: bench/burst.py).
_RECORD_BYTES = 1200
#: Estimated bytes per element of a container value (the slot plus a small object).
_ELEMENT_BYTES = 72
_SIZED = (str, bytes, bytearray)


def approx_size(fields: dict[str, Any]) -> int:
    """Bytes a queued record keeps alive, estimated cheaply on the application thread.

    Counts the lengths of strings and bytes two levels deep (a message list's
    contents, an input dict's values) and a fixed cost per element; deeper
    values count as one element each. An estimate for the queue's byte bound,
    not an exact figure.
    """
    total = _RECORD_BYTES
    for value in fields.values():
        if isinstance(value, _SIZED):
            total += len(value)
        elif isinstance(value, (dict, list, tuple)):
            total += _container_size(value, 2)
    return total


def _container_size(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> int:
    total = _ELEMENT_BYTES * len(value)
    for element in value.values() if isinstance(value, dict) else value:
        if isinstance(element, _SIZED):
            total += len(element)
        elif depth > 1 and isinstance(element, (dict, list, tuple)):
            total += _container_size(element, depth - 1)
    return total
