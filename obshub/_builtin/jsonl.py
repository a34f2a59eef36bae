"""``jsonl``: one JSON object per event, appended to a file.

Each batch is encoded first and written with one ``write()`` on a descriptor
opened with ``O_APPEND``, so lines from several processes never interleave and
a crash never leaves half a batch behind a whole line. The records are complete
enough to replay later (see ``SpanEvent.from_dict``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from obshub._config_errors import ConfigError
from obshub._exporters import CheckResult, Exporter, ExportError
from obshub._serialization import compact_json
from obshub.spans import RECORD_VERSION, EventKind, Score, SpanEvent, item_record

__all__ = ["JsonlExporter"]

#: Version of the line format; written as ``"v"`` in every line.
FORMAT_VERSION = RECORD_VERSION


def _encode(record: dict[str, Any]) -> bytes:
    return compact_json(record) + b"\n"


class JsonlExporter(Exporter):
    """Appends every event (and score) to ``path`` as a JSON line.

    Settings: ``path`` (default ``obshub-traces.jsonl``), ``events`` (which
    kinds to write; default all three), ``fsync`` (fsync after each batch).
    """

    name: ClassVar[str] = "jsonl"

    def __init__(
        self,
        *,
        path: str = "obshub-traces.jsonl",
        events: Sequence[str] = ("started", "updated", "ended"),
        fsync: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not path:
            raise ConfigError("must not be empty", "path")
        kinds = []
        for i, kind in enumerate(events):
            try:
                kinds.append(EventKind(kind))
            except ValueError:
                raise ConfigError("must be started, updated or ended", f"events[{i}]") from None
        self.event_kinds = frozenset(kinds)  # type: ignore[misc]
        self.path = Path(path)
        self.fsync = fsync
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _write(self, records: Iterable[dict[str, Any]]) -> None:
        data = b"".join(_encode(r) for r in records)
        if not data:
            return
        with self._lock:
            try:
                fd = self._open()
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(fd)
            except OSError as exc:
                # A full disk may clear; a missing permission will not.
                raise ExportError(
                    f"cannot write {self.path}: {exc.strerror}",
                    retryable=exc.errno in (28, 5, 11),  # ENOSPC, EIO, EAGAIN
                ) from None

    def export(self, events: Sequence[SpanEvent]) -> None:
        self._write(item_record(e) for e in events)

    def export_scores(self, scores: Sequence[Score]) -> None:
        self._write(item_record(s) for s in scores)

    def shutdown(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def check(self) -> CheckResult:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        probe = directory
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            return CheckResult(ok=False, message=f"{probe} is not a directory")
        if self.path.is_dir():
            return CheckResult(ok=False, message=f"{self.path} is a directory")
        if not os.access(probe, os.W_OK):
            return CheckResult(ok=False, message=f"{probe} is not writable")
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return CheckResult(ok=False, message=f"{self.path} is not writable")
        return CheckResult(ok=True, message=f"writes to {self.path}")
