"""obshub studio: an embedded sqlite store for traces, and a local web viewer over it.

The plugin registers the exporter type ``sqlite`` and the command ``obshub studio``
through obshub's hooks::

    [configs.default.exporters.studio]
    type = "sqlite"
    path = "obshub-traces.db"

    $ obshub studio --db obshub-traces.db
"""

from __future__ import annotations

from typing import Any

import obshub
from obshub_studio.exporter import DEFAULT_DB, SqliteExporter
from obshub_studio.store import Store

__all__ = ["DEFAULT_DB", "SqliteExporter", "Store", "__version__"]

__version__ = "0.1.0"


@obshub.hookimpl
def obshub_register_exporters(register: Any) -> None:
    register(SqliteExporter)


@obshub.hookimpl
def obshub_register_commands(register: Any) -> None:
    from obshub_studio.cli import add_arguments, run_studio

    register(
        "studio",
        run_studio,
        help="open the local trace viewer on a sqlite store",
        arguments=add_arguments,
    )
