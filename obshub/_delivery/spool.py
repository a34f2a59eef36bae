"""The disk spool: what an exporter could not deliver, kept on disk until it can.

One directory per exporter instance (``<spool_dir>/<config>.<exporter>/``)
holds append-only segment files. Each line is one record — a span event or a
score, in the JSONL exporter's format — behind a CRC-32 of its bytes::

    1c291ca3 {"v":1,"kind":"ended","config":"prod","service":"bot","span":{...}}

Every append is one ``write()`` followed by ``fsync()``. A segment is closed
once it passes ``segment_bytes``; the directory is kept under ``max_bytes`` by
deleting the oldest segments (counted and logged as evicted). The segment
being written is named ``*.log.open`` and only becomes ``*.log`` (replayable)
when it is closed, so a replay never takes a segment another process is still
appending to. Replaying claims a segment by renaming it, so two processes (or
two spools of one process) sharing a spool directory never replay the same
segment; a claim or an open segment left by a process that died is taken back.
Corrupt or truncated lines are skipped with a warning, never fatal.

An append is all or nothing: when the disk refuses part of it (``ENOSPC``,
``EIO``), the segment is cut back to where the append began and closed, so a
later append never lands behind a half-written line. What `Spool.append`
reports as written is exactly what a replay can read back.

Items the backend refused for their content (see ``ExportError.rejected``) go
to ``dead-letter.jsonl`` in the same directory: plain JSON lines, each the
item's record plus a ``rejected`` table (status, reason, time). It is never
replayed by itself — fix what the backend refused, then send it with
``obshub replay --file``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from obshub._exporters import DEFAULT_SPOOL_MAX_BYTES
from obshub._logging import RateLimitedLog
from obshub._serialization import compact_json
from obshub.spans import Score, SpanEvent, item_record, record_to_item

__all__ = [
    "DEAD_LETTER_FILE",
    "DEFAULT_SPOOL_MAX_BYTES",
    "Spool",
    "SpoolWriteError",
    "encode_line",
    "read_records",
]

#: A segment is closed (and becomes replayable) past this size.
DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024

_SEGMENT = re.compile(r"^seg-(\d+)-(\d+)-(\d+)\.log$")
_CLAIMED = re.compile(r"^seg-(\d+)-(\d+)-(\d+)\.log\.replaying-(\d+)$")
_OPEN = re.compile(r"^seg-(\d+)-(\d+)-(\d+)\.log\.open$")
_OPEN_SUFFIX = ".open"
#: The file, in an exporter's spool directory, that keeps items the backend refused.
DEAD_LETTER_FILE = "dead-letter.jsonl"


class SpoolWriteError(OSError):
    """The disk refused an append; ``written`` items of it are readable on disk anyway.

    ``written`` is 0 unless the partial append could not be cut back (then it
    counts the whole lines that made it to disk before the failure).
    """

    def __init__(self, cause: OSError, written: int) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.written = written


# Segments this process is writing or replaying right now (paths as str): the pid
# in a file name cannot tell two spools of one process apart.
_held: set[str] = set()
_held_lock = threading.Lock()


def _hold(path: Path) -> None:
    with _held_lock:
        _held.add(str(path))


def _unhold(path: Path) -> None:
    with _held_lock:
        _held.discard(str(path))


def _is_held(path: Path) -> bool:
    with _held_lock:
        return str(path) in _held


def _reset_held_after_fork() -> None:
    global _held_lock
    _held_lock = threading.Lock()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_held_after_fork)


def encode_line(record: dict[str, Any]) -> bytes:
    """One spool line: CRC-32 (8 hex digits), a space, compact JSON, newline."""
    body = compact_json(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """The record of a spool line or a plain JSONL line; None when corrupt."""
    line = line.rstrip(b"\r\n")
    if not line:
        return None
    body = line
    if len(line) > 9 and line[8:9] == b" " and not line.startswith(b"{"):
        try:
            expected = int(line[:8], 16)
        except ValueError:
            return None
        body = line[9:]
        if zlib.crc32(body) != expected:
            return None
    try:
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_records(path: str | os.PathLike[str]) -> tuple[list[SpanEvent | Score], int]:
    """The items of a spool segment or a JSONL file, and how many lines were unreadable."""
    items: list[SpanEvent | Score] = []
    bad = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = _decode_line(line)
            if record is None:
                bad += 1
                continue
            try:
                items.append(record_to_item(record))
            except (KeyError, TypeError, ValueError):
                bad += 1
    return items, bad


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """Append-only, size-bounded segment files for one exporter instance."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        log: Any = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(1, max_bytes // 4))
        self._log = log
        self._limited = RateLimitedLog()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._active: Path | None = None
        self._active_size = 0
        self._seq = 0
        self.evicted = 0

    # -- writing ---------------------------------------------------------------------

    def append(self, items: Iterable[SpanEvent | Score]) -> int:
        """Write ``items`` as one fsync'd append; returns how many were written.

        All or nothing: raises `SpoolWriteError` when the disk refuses, after
        cutting the segment back to where this append began (its ``written``
        says how many items are on disk anyway, when that cut failed).
        Raises OSError when the directory cannot be created or a segment opened.
        """
        lines = [encode_line(item_record(item)) for item in items]
        if not lines:
            return 0
        data = b"".join(lines)
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._fd is None or self._active_size >= self.segment_bytes:
                self._rotate()
            assert self._fd is not None
            done = 0
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    done += written
                    view = view[written:]
                os.fsync(self._fd)
            except OSError as exc:
                raise SpoolWriteError(exc, self._undo_append(done, lines)) from exc
            self._active_size += len(data)
            self._enforce_bound()
        return len(lines)

    def _undo_append(self, done: int, lines: list[bytes]) -> int:
        """Cut a failed append off the active segment; how many of its lines stay readable.

        The segment is closed either way, so the next append starts a new one
        and never continues a half-written line.
        """
        assert self._fd is not None
        kept = 0
        try:
            os.ftruncate(self._fd, self._active_size)
        except OSError:
            # Could not cut it back: the whole lines written before the failure
            # are readable (a replay skips the broken last one).
            for line in lines:
                if done < len(line):
                    break
                done -= len(line)
                kept += 1
        self._close_active()
        return kept

    def dead_letter(self, items: Iterable[SpanEvent | Score], rejection: dict[str, Any]) -> int:
        """Append refused items to ``dead-letter.jsonl`` with why; returns how many were kept.

        The file is bounded by a quarter of ``max_bytes``: past that nothing
        more is written (0 is returned; the caller logs and counts them).
        Raises OSError when the disk refuses.
        """
        lines = []
        for item in items:
            record = item_record(item)
            record["rejected"] = rejection
            lines.append(encode_line(record).split(b" ", 1)[1])  # plain JSON, no CRC
        if not lines:
            return 0
        data = b"".join(lines)
        path = self.directory / DEAD_LETTER_FILE
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size + len(data) > max(4096, self.max_bytes // 4):
                return 0
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                done = 0
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        done += written
                        view = view[written:]
                    os.fsync(fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)
        return len(lines)

    def _rotate(self) -> None:
        self._close_active()
        self._seq += 1
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}.log{_OPEN_SUFFIX}"
        self._active = self.directory / name
        self._fd = os.open(self._active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _hold(self._active)
        self._active_size = 0

    def _close_active(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            active = self._active
            if active is not None:
                # Closed: from now on it may be replayed (by any process).
                with contextlib.suppress(OSError):
                    os.rename(active, active.with_name(active.name[: -len(_OPEN_SUFFIX)]))
                _unhold(active)
        self._fd = None
        self._active = None
        self._active_size = 0

    def close(self) -> None:
        """Close the segment being written (it becomes replayable)."""
        with self._lock:
            self._close_active()

    def _enforce_bound(self) -> None:
        files = self._all_files()
        total = sum(size for _, size in files)
        for path, size in files:
            if total <= self.max_bytes:
                break
            if path == self._active or _is_held(path) or not self._claimable(path):
                continue  # being written or replayed (by this process or another)
            lost = _count_lines(path)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            total -= size
            self.evicted += lost
            if self._log is not None:
                self._limited(
                    self._log,
                    "error",
                    "spool_evicted",
                    segment=path.name,
                    records=lost,
                    evicted_total=self.evicted,
                    max_bytes=self.max_bytes,
                )

    def _all_files(self) -> list[tuple[Path, int]]:
        found: list[tuple[str, Path, int]] = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = (
                _SEGMENT.match(entry.name) or _CLAIMED.match(entry.name) or _OPEN.match(entry.name)
            )
            if match is None:
                continue
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            found.append((match.group(1), Path(entry.path), size))
        found.sort(key=lambda f: (f[0], f[1].name))
        return [(path, size) for _, path, size in found]

    # -- replaying -------------------------------------------------------------------

    def size(self) -> int:
        """Bytes on disk in this spool."""
        return sum(size for _, size in self._all_files())

    def pending(self) -> int:
        """How many segments wait to be replayed (the open one included)."""
        return len(self._all_files())

    @staticmethod
    def _claimable(path: Path) -> bool:
        """False for an open segment or a claim of another live process."""
        claimed = _CLAIMED.match(path.name)
        if claimed is not None:
            owner = int(claimed.group(4))
        else:
            opened = _OPEN.match(path.name)
            if opened is None:
                return _SEGMENT.match(path.name) is not None
            owner = int(opened.group(2))
        # Our own pid on a file no spool of this process holds: left behind by
        # an earlier process that had the same pid (a restarted container).
        return owner == os.getpid() or not _pid_alive(owner)

    def claim(self) -> list[Path]:
        """Claim every replayable segment, oldest first (renamed ``*.replaying-<pid>``).

        The segment being written is closed first so that it is included.
        Segments other processes still write, or replay, are left alone;
        claims and open segments of processes that no longer run are taken over.
        """
        with self._lock:
            self._close_active()
        claimed: list[Path] = []
        me = os.getpid()
        for path, _ in self._all_files():
            if _is_held(path) or not self._claimable(path):
                continue
            base = path.name.rsplit(".replaying-", 1)[0]
            base = base.removesuffix(_OPEN_SUFFIX)
            target = path.with_name(f"{base}.replaying-{me}")
            with _held_lock:
                # Checked again under the lock: another spool of this process
                # may have claimed it since.
                if str(path) in _held:
                    continue
                try:
                    os.rename(path, target)
                except FileNotFoundError:
                    continue  # another process claimed it first
                _held.add(str(target))
            claimed.append(target)
        return claimed

    def read(self, path: Path) -> list[SpanEvent | Score]:
        """The items of a claimed segment; unreadable lines are skipped with a warning."""
        try:
            items, bad = read_records(path)
        except OSError as exc:
            self._warn("spool_segment_unreadable", segment=path.name, error=exc.strerror)
            return []
        if bad:
            self._warn("spool_segment_corrupt", segment=path.name, skipped_lines=bad)
        return items

    def done(self, path: Path) -> None:
        """Delete a replayed segment."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _unhold(path)  # only once it is gone, or another spool could take it meanwhile

    def release(self, path: Path) -> None:
        """Give a claimed segment back (not replayed this time)."""
        base = path.name.rsplit(".replaying-", 1)[0]
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, path.with_name(base))
        _unhold(path)

    def _warn(self, event: str, **kw: Any) -> None:
        if self._log is not None:
            self._limited(self._log, "warning", event, **kw)

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's open segment (it stays the parent's)."""
        self._lock = threading.Lock()
        self._fd = None
        self._active = None
        self._active_size = 0


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0
