"""A local receiver for every test that needs one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from obshub import http
from obshub.testing import HttpReceiver


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own proxy variables must not route test traffic (all loopback)."""
    for var in http.PROXY_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """An HTTP server on 127.0.0.1 that records what it receives (200 unless told otherwise)."""
    with HttpReceiver() as server:
        yield server
