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
_RECORD_BYTES = 800
#: Estimated bytes per element of a container value (the slot plus a small object).
_ELEMENT_BYTES = 72
_SIZED = (str, bytes, bytearray)


def approx_size(fields: dict[str, Any]) -> int:
    """Bytes a queued record keeps alive, estimated cheaply on the application thread.

    Counts the lengths of strings and bytes two levels deep (a message list's
    contents, an input dict's values) and a fixed cost per element; deeper
    values count as one element each. An estimate for the queue's byte bound,
    not an exact figure (``bench/burst.py`` compares it with tracemalloc).
    """
    total = _RECORD_BYTES
    for value in fields.values():
        kind = type(value)
        if kind is str or kind is bytes or kind is bytearray:
            total += len(value)
        elif kind is dict or kind is list or kind is tuple:
            total += _ELEMENT_BYTES * len(value)
            for element in value.values() if kind is dict else value:
                inner = type(element)
                if inner is str or inner is bytes:
                    total += len(element)
                elif inner is dict or inner is list or inner is tuple:
                    total += _ELEMENT_BYTES * len(element)
                    for leaf in element.values() if inner is dict else element:
                        if type(leaf) is str:
                            total += len(leaf)
        elif isinstance(value, _SIZED):  # a str or bytes subclass
            total += len(value)
    return total
