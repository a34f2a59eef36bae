"""The opt-in that carries the current span into threads and executors (`obshub.bind_threads`).

asyncio tasks copy the context by themselves; threads start with an empty one.
With `bind_threads` on, every ``threading.Thread`` runs in a copy of the context
that started it, and every ``ThreadPoolExecutor.submit`` runs the function in
a copy of the submitter's context, so spans opened there (obshub's and, through
`obshub.otel`, OpenTelemetry's) nest under the span that was current, without
`obshub.bind_context` at each call site.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["bind_threads", "threads_bound"]

_lock = threading.Lock()
_original_start = threading.Thread.start
_original_submit = ThreadPoolExecutor.submit
_bound = False


def _start(self: threading.Thread) -> None:
    context = contextvars.copy_context()
    run = self.run
    self.run = lambda: context.run(run)  # type: ignore[method-assign]
    _original_start(self)


def _submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
    return _original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)


def bind_threads(enabled: bool = True) -> None:
    """Carry the current context (span included) into new threads and executor tasks.

    Process-wide; ``bind_threads(False)`` turns it off again. Threads started
    and tasks submitted afterwards run in a copy of the context of the code
    that started or submitted them.
    """
    global _bound
    with _lock:
        if enabled and not _bound:
            threading.Thread.start = _start  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign,assignment]
        elif not enabled and _bound:
            threading.Thread.start = _original_start  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign]
        _bound = enabled


def threads_bound() -> bool:
    """True while `bind_threads` is on."""
    return _bound
