"""pytest fixtures for code that records with obshub, and for plugin authors.

Installed with obshub and registered through the ``pytest11`` entry point, so
the fixtures are there in every test run without configuration:

- ``obshub_memory``: a `MemoryHub` (``hub, exporter``)
  whose exporter records everything; it is the process default hub during the
  test (so ``obshub.span()`` and ``@obshub.observe`` record into it too) and
  is shut down afterwards.
- ``obshub_hub_factory``: a `HubFactory`; every hub it
  builds is shut down after the test.
- ``obshub_capture_logs``: the list of obshub's structured log events during
  the test (``structlog.testing.capture_logs``), with the rate limits of
  repeated warnings reset so that each test sees its own.

::

    def test_the_agent_records_a_generation(obshub_memory):
        hub, recorded = obshub_memory
        run_agent(hub, "Where is my order?")
        assert hub.flush(timeout=5)
        assert recorded.span("gpt-4o-mini").usage.output > 0

obshub itself is imported only when a fixture is used, so merely having the
plugin installed adds nothing to a test session's start-up.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from obshub.testing import HubFactory, MemoryHub

__all__ = ["obshub_capture_logs", "obshub_hub_factory", "obshub_memory"]


@pytest.fixture
def obshub_hub_factory() -> Iterator[HubFactory]:
    """Build hubs with ``factory(...)`` / ``factory.from_config(...)``; all shut down after."""
    from obshub.testing import HubFactory

    factory = HubFactory()
    yield factory
    factory.shutdown()


@pytest.fixture
def obshub_memory(obshub_hub_factory: HubFactory) -> Iterator[MemoryHub]:
    """A hub recording into a `RecordingExporter`, as the default hub."""
    from obshub import _hub as hub_module

    recording = obshub_hub_factory.memory()
    previous = hub_module.set_global_hub(recording.hub)
    try:
        yield recording
    finally:
        # Put back whatever was the default, including "none configured yet".
        hub_module.set_global_hub(previous)


@pytest.fixture
def obshub_capture_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """obshub's log events during the test, as dicts (``event``, ``exporter``, ``level``, ...)."""
    from structlog.testing import capture_logs

    from obshub.testing import reset_rate_limits

    reset_rate_limits()
    with capture_logs() as logs:
        yield logs
