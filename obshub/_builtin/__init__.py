"""The exporters that ship with obshub, registered through the plugin hook like any other."""

from __future__ import annotations

from collections.abc import Callable

from obshub._builtin.console import ConsoleExporter
from obshub._builtin.jsonl import JsonlExporter
from obshub._builtin.memory import MemoryExporter
from obshub._exporters import Exporter
from obshub._hookspecs import hookimpl

__all__ = ["ConsoleExporter", "JsonlExporter", "MemoryExporter"]


@hookimpl
def obshub_register_exporters(register: Callable[[type[Exporter]], None]) -> None:
    """Register ``console``, ``jsonl`` and ``memory``."""
    register(ConsoleExporter)
    register(JsonlExporter)
    register(MemoryExporter)
