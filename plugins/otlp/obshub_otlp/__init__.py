"""obshub-otlp: the ``otlp`` exporter for obshub.

Installing the distribution is enough: obshub finds this module through the
``obshub`` entry-point group, and a config names the exporter with
``type = "otlp"``. In code::

    from obshub_otlp import OtlpExporter

    hub = obshub.Hub(exporters=[OtlpExporter(endpoint="http://collector:4318/v1/traces")])
"""

from __future__ import annotations

from collections.abc import Callable

import obshub
from obshub.plugin import distribution_version
from obshub_otlp.exporter import OtlpExporter

__all__ = ["OtlpExporter", "__version__", "obshub_register_exporters"]

__version__ = distribution_version("obshub-otlp")


@obshub.hookimpl
def obshub_register_exporters(register: Callable[[type[obshub.Exporter]], None]) -> None:
    """Register the ``otlp`` exporter type."""
    register(OtlpExporter)
