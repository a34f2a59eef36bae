"""obshub-langfuse: the ``langfuse`` exporter for obshub.

Installing the distribution is enough: obshub finds this module through the
``obshub`` entry-point group, and a config names the exporter with
``type = "langfuse"``. In code::

    from obshub_langfuse import LangfuseExporter

    hub = obshub.Hub(exporters=[LangfuseExporter(realtime=True)])
"""

from __future__ import annotations

from collections.abc import Callable

import obshub
from obshub.plugin import distribution_version
from obshub_langfuse.exporter import LangfuseExporter
from obshub_langfuse.scores import score_fields

__all__ = ["LangfuseExporter", "__version__", "obshub_register_exporters", "score_fields"]

__version__ = distribution_version("obshub-langfuse")


@obshub.hookimpl
def obshub_register_exporters(register: Callable[[type[obshub.Exporter]], None]) -> None:
    """Register the ``langfuse`` exporter type."""
    register(LangfuseExporter)
