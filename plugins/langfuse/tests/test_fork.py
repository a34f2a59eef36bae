"""After ``os.fork()`` the child sends through its own connections; the parent is unaffected."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
from obshub_langfuse.testing import LangfuseStandIn

import obshub

MakeHub = Callable[..., obshub.Hub]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_delivers_and_the_parent_keeps_working(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with hub.span("parent-before"):
        pass
    # The pool now holds a kept-alive connection the child must not reuse.
    assert hub.flush(5)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which reports through its exit code
        code = 1
        try:
            # A deadlock in the child must fail the test, not hang it.
            signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
            signal.alarm(10)
            with hub.span("from-child"):
                pass
            code = 0 if hub.flush(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with hub.span("parent-after"):
        pass
    assert hub.flush(5)
    names = {o.name for o in server.observations()}
    assert names == {"parent-before", "from-child", "parent-after"}
