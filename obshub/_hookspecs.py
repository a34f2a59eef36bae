"""The hooks obshub plugins implement.

A plugin is a module (found through the ``obshub`` entry-point group) with
functions marked ``@obshub.hookimpl`` whose names match the specs below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from obshub._exporters import Exporter

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "obshub_register_exporters",
    "obshub_register_processors",
    "obshub_register_samplers",
]

#: The pluggy project name, and the entry-point group plugins are found in.
PROJECT_NAME = "obshub"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def obshub_register_exporters(register: Callable[[type[Exporter]], None]) -> None:
    """Register the exporter classes this plugin provides.

    Call ``register(SomeExporter)`` once per class; ``SomeExporter.name`` is
    the ``type`` users write in a config::

        @obshub.hookimpl
        def obshub_register_exporters(register):
            register(WebhookExporter)
    """


@hookspec
def obshub_register_processors(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register span processors by name, for ``processors`` in a config or on an exporter.

    ``register(name, factory)``: ``factory(**options)`` returns a processor
    (an object with ``process(span) -> Span | None``). A config names it as
    ``processors = ["name"]`` or ``processors = [{ type = "name", option = 1 }]``::

        @obshub.hookimpl
        def obshub_register_processors(register):
            register("presidio", PresidioProcessor)
    """


@hookspec
def obshub_register_samplers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register samplers by name, for ``sampling = { type = "name", ... }``.

    ``register(name, factory)``: ``factory(**options)`` returns a function
    that takes a trace id and returns true to keep the trace.
    """
