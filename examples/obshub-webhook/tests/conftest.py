"""A local receiver for every test that needs one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from obshub.testing import HttpReceiver


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """An HTTP server on 127.0.0.1 that records what it receives (200 unless told otherwise)."""
    with HttpReceiver() as server:
        yield server
