"""``sqlite``: every span event and score into the studio's embedded store."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from obshub import CheckResult, ConfigError, Exporter, ExportError
from obshub.spans import EventKind, Score, SpanEvent, item_record
from obshub_studio.store import Store

__all__ = ["DEFAULT_DB", "SqliteExporter"]

#: The store file the built-in default config and ``obshub studio`` use.
DEFAULT_DB = "obshub-traces.db"


class SqliteExporter(Exporter):
    """Writes every event (started, updated, ended) and score to a sqlite store.

    Settings: ``path`` (default ``obshub-traces.db``), ``max_age`` (seconds;
    older traces are deleted), ``max_bytes`` (the oldest traces are deleted
    while the store holds more). Open the store with ``obshub studio --db PATH``.
    """

    name: ClassVar[str] = "sqlite"
    event_kinds: ClassVar[frozenset[EventKind]] = frozenset(EventKind)

    def __init__(
        self,
        *,
        path: str = DEFAULT_DB,
        max_age: float | None = None,
        max_bytes: int | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not path:
            raise ConfigError("must not be empty", "path")
        if max_age is not None and (isinstance(max_age, bool) or not max_age > 0):
            raise ConfigError(f"must be a number of seconds > 0, got {max_age!r}", "max_age")
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 4096
        ):
            raise ConfigError(f"must be an integer >= 4096, got {max_bytes!r}", "max_bytes")
        self.path = Path(path)
        self.store = Store(self.path, max_age=max_age, max_bytes=max_bytes)

    @property
    def view_command(self) -> str:
        """The command that opens this store in the studio (``obshub demo`` prints it)."""
        return f"obshub studio --db {self.path}"

    def _write(self, records: list[dict[str, Any]]) -> None:
        try:
            self.store.write_records(records)
        except sqlite3.OperationalError as exc:
            # "database is locked" past the busy timeout, a full disk: may clear.
            raise ExportError(f"cannot write {self.path}: {exc}", retryable=True) from None
        except (sqlite3.DatabaseError, OSError) as exc:
            raise ExportError(f"cannot write {self.path}: {exc}", retryable=False) from None

    def export(self, events: Sequence[SpanEvent]) -> None:
        self._write([item_record(e) for e in events])

    def export_scores(self, scores: Sequence[Score]) -> None:
        self._write([item_record(s) for s in scores])

    def shutdown(self) -> None:
        self.store.close()

    def check(self) -> CheckResult:
        try:
            self.store.connection().execute("SELECT count(*) FROM traces").fetchone()
        except (sqlite3.Error, OSError) as exc:
            return CheckResult(ok=False, message=f"cannot open {self.path}: {exc}")
        if not os.access(self.path, os.W_OK):
            return CheckResult(ok=False, message=f"{self.path} is not writable")
        return CheckResult(ok=True, message=f"writes to {self.path}")
