"""The hooks obshub plugins implement.

A plugin is a module (found through the ``obshub`` entry-point group) with
functions marked ``@obshub.hookimpl`` whose names match the specs below.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from obshub._exporters import Exporter

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec", "obshub_register_exporters"]

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
