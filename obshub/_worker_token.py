"""One exporter worker at a time runs Python code; the application keeps its share.

CPython runs one thread's Python code at a time, and hands the interpreter
round-robin to every thread that wants it. With k busy exporter workers the
application thread would get about 1/(1+k) of it, so fanning out to three
exporters would triple what recording costs the application. Workers therefore
take this token around their CPU-bound work (building snapshots, encoding) and
give it back while they wait on the network or sleep before a retry: at most
one worker competes with the application at a time, and since only one thread
runs Python code anyway, throughput is unchanged.

The token is a courtesy, never a dependency: a worker that cannot get it
within ``PATIENCE`` seconds (another exporter is stuck holding it, e.g. in a
network call that does not go through `obshub.http`) goes ahead without
it, so one exporter's trouble cannot stop another's delivery.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["PATIENCE", "hold", "released"]

#: Seconds a worker waits for the token before going ahead without it.
PATIENCE = 0.25

_lock = threading.Lock()
_state = threading.local()


def _acquire() -> None:
    _state.held = _lock.acquire(timeout=PATIENCE)


def _release() -> None:
    if getattr(_state, "held", False):
        _state.held = False
        _lock.release()


@contextlib.contextmanager
def hold() -> Iterator[None]:
    """Hold the token (or give up waiting after ``PATIENCE``) for the block."""
    if getattr(_state, "held", False):
        yield  # re-entrant: already held by this thread
        return
    _acquire()
    try:
        yield
    finally:
        _release()


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Give the token back for a block that waits (network, sleep); take it again after."""
    if not getattr(_state, "held", False):
        yield
        return
    _release()
    try:
        yield
    finally:
        _acquire()


def _reset_after_fork() -> None:
    # A thread of the parent may have held the lock at fork time; that thread
    # does not exist in the child.
    global _lock, _state
    _lock = threading.Lock()
    _state = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
