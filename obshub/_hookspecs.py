"""The hooks obshub plugins implement.

A plugin is a module (found through the ``obshub`` entry-point group) with
functions marked ``@obshub.hookimpl`` whose names match the specs below.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol, TextIO

import pluggy

from obshub._exporters import Exporter

__all__ = [
    "PROJECT_NAME",
    "CommandRunner",
    "RegisterCommand",
    "hookimpl",
    "hookspec",
    "obshub_register_commands",
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


#: What a plugin command runs: ``run(args, out) -> exit status`` (``out`` is stdout).
CommandRunner = Callable[[argparse.Namespace, TextIO], int]


class RegisterCommand(Protocol):
    """The ``register`` callable handed to `obshub_register_commands`."""

    def __call__(
        self,
        name: str,
        run: CommandRunner,
        *,
        help: str = "",
        arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    ) -> None: ...


@hookspec
def obshub_register_commands(register: RegisterCommand) -> None:
    """Register the ``obshub`` subcommands this plugin provides.

    Call ``register(name, run, help=..., arguments=...)`` once per command:
    ``arguments(parser)`` adds the command's options to its argparse parser,
    ``run(args, out)`` runs it and returns the exit status::

        @obshub.hookimpl
        def obshub_register_commands(register):
            register("studio", run_studio, help="open the local trace viewer",
                     arguments=add_studio_arguments)
    """
