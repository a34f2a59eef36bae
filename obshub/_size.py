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


#: The fields that carry payloads of any size; the others (model, usage,
#: parameters, ...) are small and covered by ``_RECORD_BYTES``.
_PAYLOAD_FIELDS = frozenset({"input", "output", "metadata", "attributes"})


#: At most this many elements of a container are looked into; the rest are
#: estimated from them, so a long chat history costs no more than a short one.
_LOOK_AT = 8


def approx_size(fields: dict[str, Any]) -> int:
    """Bytes a queued record keeps alive, estimated cheaply on the application thread.

    Counts the lengths of strings and bytes in the payload fields (input,
    output, metadata, attributes) two levels deep (a message list's contents,
    an input dict's values) and a fixed cost per element; deeper values count
    as one element each, and a container's elements past the first eight are
    taken to be like those. An estimate for the queue's byte bound, not an
    exact figure (``bench/burst.py`` compares it with tracemalloc).
    """
    total = _RECORD_BYTES
    payload = _PAYLOAD_FIELDS
    for name, value in fields.items():
        if name not in payload:
            continue
        kind = type(value)
        if kind is str or kind is bytes or kind is bytearray:
            total += len(value)
            continue
        if not (kind is dict or kind is list or kind is tuple):
            if isinstance(value, _SIZED):  # a str or bytes subclass
                total += len(value)
            continue
        count = len(value)
        content = seen = 0
        # Inlined two levels (no recursion): this runs for every recorded span.
        for element in value.values() if kind is dict else value:
            if seen == _LOOK_AT:
                break
            seen += 1
            inner = type(element)
            if inner is str or inner is bytes:
                content += len(element)
            elif inner is dict or inner is list or inner is tuple:
                content += _ELEMENT_BYTES * len(element)
                for leaf in element.values() if inner is dict else element:
                    if type(leaf) is str:
                        content += len(leaf)
        if seen < count:
            content = content * count // seen
        total += _ELEMENT_BYTES * count + content
    return total
