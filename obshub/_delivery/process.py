"""Delivery in a helper process: the exporter key ``delivery = "process"``.

A thread-mode exporter (`Channel`) builds snapshots, encodes and sends on a
worker thread of the application's own process, so its CPU competes with the
application for the interpreter. With ``delivery = "process"`` the exporters
of a config that ask for it run in one helper process instead, started and
supervised by the hub:

- **Application side** (`Link`, one `ProcessChannel` per exporter): `put` is
  the same few checks and a deque append as a thread channel's. A feeder
  thread takes what is queued every few milliseconds, pickles it in one call
  (recorded spans ship as their raw recorded values; values that are not
  plain data are made JSON-safe first, as a snapshot would) and writes it to
  a pipe. That is all the application's interpreter pays: about a
  microsecond or two per span, against tens for building, encoding and
  sending.
- **Helper side** (`serve`): the helper is a fork of the application made by
  the feeder, so it has the config, its exporters and their settings without
  re-reading anything. It runs an ordinary `Channel` per exporter — the same
  queue bounds, batching, retry and pause policy, spool, dead letter and
  counters as thread mode — fed from the pipe.

Flushes, stats, replays and stops go down the same pipe, in order with the
items, and their answers come back on a second pipe. The helper never
outlives the application: it ignores SIGINT/SIGTERM (the application decides
when delivery ends), and when the pipe closes (the application exited or was
killed) it delivers or spools what it holds within ``EXIT_GRACE`` seconds and
exits. It is restarted if it dies (what it held is counted as dropped, from
its last report); after ``MAX_RESTARTS`` deaths within ``RESTART_WINDOW``
seconds, or where the platform cannot fork, the exporters go back to thread
delivery in the application's process, logged once. After the application
forks (a pre-fork server), the child starts empty with a helper of its own.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import io
import itertools
import marshal
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from types import BuiltinFunctionType, FunctionType
from typing import Any

from obshub._delivery import channel as channel_module
from obshub._delivery.channel import Channel, shut_down
from obshub._delivery.keep import Keeper
from obshub._delivery.records import SIZED_FROM, Sized, size_of
from obshub._delivery.stats import ChannelStats, Counters, ExporterFlush, Losses
from obshub._exporters import Exporter
from obshub._logging import RateLimitedLog, get_logger
from obshub._sampling import TailRule
from obshub._serialization import DEFAULT_LIMITS, Limits, describe, to_jsonable
from obshub.spans import Score, SpanEvent

__all__ = ["EXIT_GRACE", "Link", "ProcessChannel", "can_fork"]

_log = get_logger()

#: Seconds the helper spends delivering (or spooling) what it holds once the
#: application is gone.
EXIT_GRACE = 5.0
#: Seconds past `EXIT_GRACE` after which a helper that is still there ends
#: itself regardless (see `_Helper.finish`).
HARD_EXIT_MARGIN = 5.0
#: Helper deaths tolerated within `RESTART_WINDOW` seconds before the link
#: falls back to thread delivery.
MAX_RESTARTS = 3
RESTART_WINDOW = 60.0
#: Seconds the feeder lets items gather before it writes them (batch mode).
FEED_INTERVAL = 0.02
#: Records per frame at most.
FRAME_RECORDS = 2048
#: Seconds between the helper's reports (queued, paused, counters).
REPORT_INTERVAL = 0.1
#: The helper reports at least this often, even when nothing changed ...
HEARTBEAT = 1.0
#: ... and is taken for stuck (killed, restarted) after this many silent seconds.
SILENCE_LIMIT = 30.0
#: Seconds `ProcessChannel.stats` waits for the helper's answer.
STATS_WAIT = 1.0
#: Pipe capacity asked for (Linux), so the feeder rarely waits on the helper.
PIPE_BYTES = 1 << 20

_HEADER = struct.Struct("<I")
_F_SETPIPE_SZ = 1031
# Exact types pickle writes natively; everything else is looked at by
# `_Shipper.reducer_override`.
_NATIVE = frozenset({str, bytes, int, float, bool, type(None), dict, list, tuple})

_fork_lock = threading.Lock()
_links: weakref.WeakSet[Link] = weakref.WeakSet()


def can_fork() -> bool:
    """True where a helper process can be forked (POSIX)."""
    return hasattr(os, "fork") and hasattr(os, "register_at_fork")


# -- the wire ---------------------------------------------------------------------------


class _Shipper(pickle.Pickler):
    """Pickles queued records: plain data natively, other values made JSON-safe first.

    A record class says how it ships with ``__reduce__`` (recorded spans ship
    their raw values, the helper builds the snapshot); obshub's own types
    pickle as they are; any other object in a recorded value (a pydantic
    model, a datetime, a client object) is converted here as the snapshot
    would convert it, so the helper never needs the application's classes and
    never receives a whole object graph.
    """

    def __init__(self, file: io.BytesIO, limits: Limits) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.limits = limits

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _NATIVE or kind.__module__.startswith("obshub"):
            return NotImplemented
        if isinstance(obj, (type, FunctionType, BuiltinFunctionType)):
            return NotImplemented
        return _plain, (to_jsonable(obj, self.limits),)


def _plain(value: Any) -> Any:
    return value


def _dumps(value: Any, limits: Limits) -> bytes:
    """One frame: length, format byte, body.

    Plain data (what recorded spans nearly always hold) goes as ``marshal``,
    about three times cheaper than pickle for it; marshal refuses anything
    else (subclasses included), and then the frame is pickled by `_Shipper`.
    """
    try:
        body = marshal.dumps(value)
    except (ValueError, RecursionError):
        buffer = io.BytesIO()
        buffer.write(b"\0\0\0\0P")
        _Shipper(buffer, limits).dump(value)
        frame = buffer.getbuffer()
        _HEADER.pack_into(frame, 0, len(frame) - 5)
        del frame
        return buffer.getvalue()
    return b"".join((_HEADER.pack(len(body)), b"M", body))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _widen(fd: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)


class _FrameStream:
    """Frames read from a pipe, with a limit on how long the pipe may stay silent."""

    def __init__(self, fd: int, chunk: int = 1 << 16) -> None:
        self.fd = fd
        self.chunk = chunk
        self.buffer = bytearray()

    def next(self, timeout: float | None) -> Any:
        """The next frame's value; None at end of stream; `TimeoutError` after ``timeout`` s."""
        buffer = self.buffer
        while True:
            if len(buffer) >= 5:
                (length,) = _HEADER.unpack_from(buffer)
                end = 5 + length
                if len(buffer) >= end:
                    kind, body = buffer[4:5], bytes(buffer[5:end])
                    del buffer[:end]
                    return marshal.loads(body) if kind == b"M" else pickle.loads(body)
            if timeout is not None:
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if not ready:
                    raise TimeoutError
            chunk = os.read(self.fd, self.chunk)
            if not chunk:
                return None
            buffer += chunk


class _Built:
    """A record built in the application's process (one that cannot ship raw)."""

    __slots__ = ("event",)

    def __init__(self, event: SpanEvent) -> None:
        self.event = event

    def build_event(self) -> SpanEvent:
        return self.event

    def approx_size(self) -> int:
        return 1024

    def __reduce__(self) -> tuple[Any, ...]:
        return _Built, (self.event,)


_UNKNOWN: Any = object()


# -- application side ---------------------------------------------------------------------


class _Reply:
    """An answer the application side waits for."""

    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None


class _Control:
    """A request queued in order with the items (flush, stats, replay, stop ...)."""

    __slots__ = ("args", "op", "reply")

    def __init__(self, op: str, args: tuple[Any, ...], reply: _Reply | None) -> None:
        self.op = op
        self.args = args
        self.reply = reply


class ProcessFlush:
    """A flush asked of a process channel: ``done`` is set when the helper answered."""

    __slots__ = ("base", "done", "reply")

    def __init__(self, base: Losses, reply: _Reply) -> None:
        self.base = base
        self.reply = reply
        self.done = reply.done

    @property
    def ok(self) -> bool:
        if not self.done.is_set() or self.reply.value is None:
            return False
        losses, pending = self.reply.value
        return not pending and not any(losses)


class Link:
    """The application side of one config's helper process.

    Owns the queue shared by the config's process channels, the feeder thread
    (hands off: marshals and writes) and the reader thread (answers and reports).
    """

    def __init__(
        self,
        config_name: str,
        exporters: Sequence[Exporter],
        *,
        tail: TailRule | None,
        limits: Limits = DEFAULT_LIMITS,
        child_init: Callable[[], None] = lambda: None,
        restore: Callable[[tuple[Any, ...], dict[int, Any]], Any] = lambda payload, _: payload,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_name = config_name
        self.exporters = tuple(exporters)
        self.tail = tail
        self.limits = limits
        self.child_init = child_init
        #: In the helper: a shipped record (a tuple) into something a channel queues.
        self.restore = restore
        # Per record class: its ``shipped`` method, or None.
        self._ship_of: dict[type, Any] = {}
        self._monotonic = monotonic
        self._limited = RateLimitedLog()
        self.channels = tuple(ProcessChannel(self, slot, e) for slot, e in enumerate(exporters))
        self._realtime = any(e.realtime for e in exporters)
        self._lost_lock = threading.Lock()
        self._deaths: deque[float] = deque()
        self._reset_state()
        _links.add(self)

    def start(self) -> None:
        """Start the feeder, which forks the helper (call once the config is complete)."""
        if not self._threads:
            self._start()

    def _reset_state(self) -> None:
        self.queue: deque[Any] = deque()
        self.wake = threading.Event()
        self.bytes = 0
        self._ids = itertools.count(1)
        self._replies: dict[int, _Reply] = {}
        self._replies_lock = threading.Lock()
        self.pid: int | None = None
        self._down: int | None = None
        self._up: int | None = None
        self._stopping = False
        self._exited = threading.Event()
        #: The helper's latest report per slot: (queued, paused, counters).
        self.reports: list[tuple[int, bool, tuple[int, ...]]] = [
            (0, False, (0,) * 7) for _ in self.channels
        ]
        #: Records handed to the helper since its latest report, per slot.
        self.shipped = [0] * len(self.channels)
        #: Records written to the pipe so far (every helper).
        self.written = 0
        self.thread_mode = False
        #: A request waits in the queue: hand off now, without gathering.
        self.urgent = False
        #: The (slot, record) entries of the frame being written to the pipe.
        self.writing: list[tuple[int, Any]] = []
        #: Shutdown gave up on what was not handed off (see `_abandon`).
        self.abandoned = False
        self._threads: list[threading.Thread] = []

    def _start(self) -> None:
        name = f"obshub-{self.config_name}-feeder"
        feeder = threading.Thread(target=self._feed_loop, name=name, daemon=True)
        feeder.start()
        self._threads = [feeder]

    # -- feeder ---------------------------------------------------------------------

    def _feed_loop(self) -> None:
        queue = self.queue
        held: list[tuple[bytes, list[tuple[int, Any]]]] = []  # frames a dead helper missed
        while True:
            if self.abandoned:
                return
            if self.thread_mode:
                self._drain_to_threads(held)
                return
            if self.pid is None and not self._spawn():
                continue
            if not held:
                if not queue:
                    self.wake.wait(None)
                    self.wake.clear()
                    continue
                if not (self._realtime or self.urgent) and len(queue) < FRAME_RECORDS:
                    # Let a batch gather: one write and one marshal call for many
                    # spans. A request (flush ...) or a full frame ends the wait.
                    self.wake.wait(FEED_INTERVAL)
                    self.wake.clear()
                frame = self._next_frame()
                if frame is None:
                    continue
                held.append(frame)
            data, items = held[0]
            self.writing = items
            try:
                _write_all(self._down, data)  # type: ignore[arg-type]
            except OSError:
                self.writing = []
                self._helper_lost("pipe closed")
                continue
            if self.abandoned:
                return  # counted as dropped by `_abandon`
            self.writing = []
            held.pop(0)
            for slot, _ in items:
                self.shipped[slot] += 1
            self.written += len(items)
            if self._stopping and not queue and not held:
                return

    def _next_frame(self) -> tuple[bytes, list[tuple[int, Any]]] | None:
        """Take up to `FRAME_RECORDS` queued entries (stopping at a control) and pickle them.

        A record whose class has ``shipped()`` goes as the plain tuple it
        returns (the helper restores and builds it); scores as they are;
        anything else is built here. A record queued for several exporters in
        a row is shipped once and shared again by the helper.
        """
        queue = self.queue
        popleft = queue.popleft
        ship_of = self._ship_of
        items: list[tuple[int, Any]] = []
        add = items.append
        records: list[Any] = []
        keep = records.append
        size = 0
        count = 0
        last: Any = None
        payload: Any = None
        # The class of the previous record and its ``shipped``: nearly every
        # record is a recorded span, so the loop mostly takes the first branch.
        fast_kind: Any = None
        fast_ship: Any = None
        while queue and count < FRAME_RECORDS:
            slot, record = popleft()
            kind = type(record)
            if kind is fast_kind:
                if record is not last:
                    last = record
                    payload = fast_ship(record)
                add((slot, payload))
                keep(record)
                count += 1
                continue
            if kind is Sized:
                size += record.size
                record = record.item
                kind = type(record)
            if kind is _Control:
                if items:
                    queue.appendleft((slot, record))
                    break
                self.urgent = False
                return self._control_frame(record), []
            if record is not last:
                ship = ship_of.get(kind, _UNKNOWN)
                if ship is _UNKNOWN:
                    ship = ship_of[kind] = getattr(kind, "shipped", None)
                last = record
                if ship is not None:
                    payload = ship(record)
                    fast_kind, fast_ship = kind, ship
                elif kind is Score or kind is _Built:
                    payload = record
                else:
                    payload = self._build_here(slot, record)
                    if payload is None:
                        last = None
                        continue
            add((slot, payload))
            keep(record)
            count += 1
        self.bytes -= size
        if not items:
            return None
        try:
            return _dumps(("items", items), self.limits), items
        except Exception:
            return self._frame_one_by_one(items, records)

    def _control_frame(self, control: _Control) -> bytes:
        if control.reply is not None:
            reply_id = next(self._ids)
            with self._replies_lock:
                self._replies[reply_id] = control.reply
        else:
            reply_id = 0
        return _dumps((control.op, reply_id, *control.args), self.limits)

    def _frame_one_by_one(
        self, items: list[tuple[int, Any]], records: list[Any]
    ) -> tuple[bytes, list[tuple[int, Any]]] | None:
        # Some value would not pickle: find it, build that record here instead.
        kept: list[tuple[int, Any]] = []
        for (slot, payload), record in zip(items, records, strict=True):
            try:
                _dumps(payload, self.limits)
            except Exception:
                payload = self._build_here(slot, record)
                if payload is None:
                    continue
            kept.append((slot, payload))
        if not kept:
            return None
        try:
            return _dumps(("items", kept), self.limits), kept
        except Exception as exc:
            for slot, _ in kept:
                self.channels[slot].counters.count(failed=1)
            self._limited(_log, "error", "delivery_process_pickle_failed", error=describe(exc))
            return None

    def _build_here(self, slot: int, record: Any) -> _Built | None:
        channel = self.channels[slot]
        try:
            event = record.build_event()
        except Exception as exc:
            channel.keeper.build_failed(exc)
            return None
        if event is None:  # a processor of the config dropped it: handled
            channel.counters.count(exported=1)
            return None
        return _Built(event)

    # -- the helper's life ------------------------------------------------------------

    def _spawn(self) -> bool:
        """Fork the helper; False (after falling back to thread mode) when it cannot start."""
        down_r = down_w = up_r = up_w = -1
        pid = -1
        try:
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
            _widen(down_w)
            for stream in (sys.stdout, sys.stderr):
                # What is buffered now would be written twice: by us and the helper.
                with contextlib.suppress(Exception):
                    stream.flush()
            with _fork_lock:
                # The fork handlers of thread channels and links leave the
                # helper alone: it runs only what it was forked for.
                channel_module.forking_helper = True
                try:
                    with warnings.catch_warnings():
                        # 3.12+ warns about forking a process with threads; the
                        # helper runs only obshub's own code, on fresh locks.
                        warnings.simplefilter("ignore", DeprecationWarning)
                        pid = os.fork()
                finally:
                    if pid != 0:
                        channel_module.forking_helper = False
        except Exception as exc:
            for fd in (down_r, down_w, up_r, up_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fall_back(f"cannot start the helper process ({describe(exc)})")
            return False
        if pid == 0:  # the helper
            code = 0
            try:
                os.close(down_w)
                os.close(up_r)
                code = serve(self, down_r, up_w)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        self.pid = pid
        self._down = down_w
        self._up = up_r
        self.shipped = [0] * len(self.channels)
        reader = threading.Thread(
            target=self._read_loop,
            args=(pid, up_r),
            name=f"obshub-{self.config_name}-reader",
            daemon=True,
        )
        reader.start()
        self._threads.append(reader)
        return True

    def _read_loop(self, pid: int, up: int) -> None:
        why = "exited"
        stream = _FrameStream(up)
        try:
            while True:
                try:
                    message = stream.next(SILENCE_LIMIT)
                except TimeoutError:
                    # No report for that long (it sends one every second at
                    # least): the helper is stuck. Kill it; it is restarted.
                    why = f"unresponsive for {SILENCE_LIMIT:g} s, killed"
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                    break
                except Exception:
                    message = None
                if message is None:
                    break
                self._answer(message)
        finally:
            with contextlib.suppress(OSError):
                os.close(up)
        if self._up == up:
            self._up = None
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
        if pid == self.pid and not self._stopping:
            self._helper_lost(why)
        self._exited.set()

    def _answer(self, message: tuple[Any, ...]) -> None:
        op = message[0]
        if op == "report":
            self.reports = message[1]
            for slot, received in enumerate(message[2]):
                self.shipped[slot] -= received
            return
        with self._replies_lock:
            reply = self._replies.pop(message[1], None)
        if reply is not None:
            reply.value = message[2]
            reply.done.set()

    def _helper_lost(self, why: str) -> None:
        """The helper died: count what it held, answer its waiters, restart or fall back."""
        with self._lost_lock:
            if self.pid is None:
                return
            pid, self.pid = self.pid, None
        if self._down is not None:
            with contextlib.suppress(OSError):
                os.close(self._down)
            self._down = None
        lost = 0
        for slot, channel in enumerate(self.channels):
            held = self.reports[slot][0] + max(0, self.shipped[slot])
            lost += held
            channel.helper_died(self.reports[slot][2], held)
        self.reports = [(0, False, (0,) * 7) for _ in self.channels]
        self.shipped = [0] * len(self.channels)
        with self._replies_lock:
            replies, self._replies = list(self._replies.values()), {}
        for reply in replies:
            reply.done.set()
        _log.error(
            "delivery_process_died",
            config=self.config_name,
            pid=pid,
            why=why,
            lost=lost,
            hint="counted as dropped; the helper is restarted",
        )
        now = self._monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > RESTART_WINDOW:
            self._deaths.popleft()
        if len(self._deaths) > MAX_RESTARTS:
            self._fall_back(f"the helper process died {len(self._deaths)} times in a minute")
        self.wake.set()

    def _fall_back(self, reason: str) -> None:
        if self.thread_mode:
            return
        _log.error(
            "delivery_process_unavailable",
            config=self.config_name,
            reason=reason,
            hint="delivering on threads of this process instead (delivery = 'thread')",
        )
        for channel in self.channels:
            channel.local = Channel(channel.exporter, self.config_name, tail=self.tail)
        self.thread_mode = True
        self.wake.set()

    def _drain_to_threads(self, held: list[tuple[bytes, list[tuple[int, Any]]]]) -> None:
        # Everything queued for the helper goes to the thread channels, in order.
        for _, items in held:
            for slot, record in items:
                self.channels[slot].local.put(record)  # type: ignore[union-attr]
        queue = self.queue
        while queue:
            slot, record = queue.popleft()
            if type(record) is Sized:
                record = record.item
            if type(record) is _Control:
                self._perform_here(record)
                continue
            self.channels[slot].local.put(record)
        self.bytes = 0

    def _perform_here(self, control: _Control) -> None:
        """A request queued for the helper, carried out by the thread channel instead."""
        reply = control.reply
        if control.op == "exit":
            return
        slot, *args = control.args
        local = self.channels[slot].local
        assert local is not None

        def answer(value: Any) -> None:
            if reply is not None:
                reply.value = value
                reply.done.set()

        perform(local, control.op, tuple(args), answer)

    # -- requests -----------------------------------------------------------------------

    def request(self, slot: int, op: str, *args: Any) -> _Reply:
        reply = _Reply()
        self.queue.append((slot, _Control(op, (slot, *args), reply)))
        self.urgent = True
        self.wake.set()
        return reply

    def ask(self, slot: int, op: str, *args: Any, timeout: float | None) -> Any:
        """Send a request and wait for its answer (None when none came in time)."""
        reply = self.request(slot, op, *args)
        reply.done.wait(timeout)
        return reply.value

    def channel_stopped(self, timeout: float | None) -> None:
        """Once every channel of the link stopped: let the helper exit, and reap it."""
        if not all(c.stopped for c in self.channels) or self.thread_mode:
            return
        self._stopping = True
        self.queue.append((0, _Control("exit", (), None)))
        self.wake.set()
        if self.pid is not None and not self._exited.wait(timeout):
            self._abandon()

    def _abandon(self) -> None:
        """Shutdown ran out of time with items never handed off: count them as dropped.

        The helper did not exit in time (stuck, or the pipe full): what is
        still queued here, and a frame the feeder could not finish writing,
        will not reach it. What it already received it still delivers or
        spools once the pipe closes.
        """
        self.abandoned = True
        left = [0] * len(self.channels)
        queue = self.queue
        while queue:
            slot, record = queue.popleft()
            if type(record) is not _Control:
                left[slot] += 1
        for slot, _ in self.writing:
            left[slot] += 1
        self.writing = []
        for slot, count in enumerate(left):
            if count:
                self.channels[slot].keeper.drop(count, "shutdown_timeout")

    # -- fork of the application ------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # Locks a thread of the parent may have held at the fork start fresh.
        self._lost_lock = threading.Lock()
        self._limited = RateLimitedLog()
        for fd in (self._down, self._up):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        stopped = [c.stopped for c in self.channels]
        self._reset_state()
        for channel in self.channels:
            channel.local = None
            channel.reset()
        if not all(stopped):
            # Not now: other fork handlers (e.g. concurrent.futures' lock) have
            # not run yet, and the feeder forks at once. The first item or
            # request of the child starts it.
            self.wake = _StartOnSet(self._start)


class _StartOnSet(threading.Event):
    """An event that calls ``start`` (once) the first time it is set."""

    def __init__(self, start: Callable[[], None]) -> None:
        super().__init__()
        self._starter: Callable[[], None] | None = start
        self._starter_lock = threading.Lock()

    def set(self) -> None:
        if self._starter is not None:
            with self._starter_lock:
                start, self._starter = self._starter, None
            if start is not None:
                start()
        super().set()


def _reinit_links_after_fork() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()
    if channel_module.forking_helper:
        return
    for link in list(_links):
        link._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_links_after_fork)


class ProcessChannel:
    """One exporter's channel when it delivers from the helper process.

    The same surface as `Channel` for the hub: ``put`` on the application
    thread, flushes, stats, replay, stop. What it counts itself (drops before
    the hand-off) adds to what the helper's channel counts.
    """

    def __init__(self, link: Link, slot: int, exporter: Exporter) -> None:
        self.link = link
        self.slot = slot
        self.exporter = exporter
        self.config_name = link.config_name
        self.name = f"{link.config_name}/{exporter.instance_name}"
        self.realtime = exporter.realtime
        self._maxsize = exporter.max_queue_size
        self._max_bytes = exporter.max_queue_bytes
        self._wants_scores = exporter.supports_scores()
        #: The thread channel used instead once the helper cannot run.
        self.local: Channel | None = None
        self.reset()

    def reset(self) -> None:
        self.counters = Counters()
        # What this side loses (a full queue, a record that cannot be built, a
        # helper that never took it) is counted and logged as thread mode does.
        self.keeper = Keeper(self.name, None, self.counters, self.exporter.log, self.link._limited)
        self._reported = Losses()
        self._closed = False
        self._stopped = False

    def helper_died(self, counts: tuple[int, ...], held: int) -> None:
        """Keep a dead helper's counters, and count what it held as dropped.

        Its earlier losses were reported by earlier flushes: they move into
        the base too, so only ``held`` shows in the next flush.
        """
        exported, dropped, retried, failed, spooled, replayed, rejected = counts
        self.counters.count(
            exported=exported,
            dropped=dropped + held,
            retried=retried,
            failed=failed,
            spooled=spooled,
            replayed=replayed,
            rejected=rejected,
        )
        base = self._reported
        self._reported = Losses(
            base.dropped + dropped,
            base.failed + failed,
            base.spooled + spooled,
            base.rejected + rejected,
        )

    # -- application side -----------------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue one item for the helper; drop it (counted) when the queue is full."""
        local = self.local
        if local is not None:
            local.put(item)
            return
        link = self.link
        queue = link.queue
        waiting = len(queue)
        if waiting >= self._maxsize or link.bytes >= self._max_bytes or self._closed:
            self._overflowing()
            return
        if waiting >= SIZED_FROM:
            size = size_of(item)
            link.bytes += size
            item = Sized(item, size)
        queue.append((self.slot, item))
        if waiting == 0 or waiting == FRAME_RECORDS or self.realtime:
            wake = link.wake
            if not wake.is_set():
                wake.set()

    def put_score(self, score: Score) -> None:
        if self._wants_scores:
            self.put(score)

    def _overflowing(self) -> None:
        if self._closed:
            self.keeper.drop(1, "closed")
            return
        self.keeper.drop(
            1,
            "queue_full",
            max_queue_size=self._maxsize,
            max_queue_bytes=self._max_bytes,
            hint="the helper process does not take items as fast as they are recorded",
        )

    # -- flush ---------------------------------------------------------------------------

    def request_flush(self) -> Any:
        local = self.local
        if local is not None:
            return local.request_flush()
        reply = self.link.request(self.slot, "flush")
        return ProcessFlush(self._reported, reply)

    def _losses(self, request: ProcessFlush) -> tuple[Losses, int]:
        here = self.counters.losses().since(request.base)
        if request.reply.value is None:
            return here, 0
        there, pending = request.reply.value
        return Losses(*(a + b for a, b in zip(here, there, strict=True))), pending

    def flush_result(self, request: Any) -> ExporterFlush:
        if not isinstance(request, ProcessFlush):
            assert self.local is not None
            return self.local.flush_result(request)
        if request.done.is_set():
            losses, pending = self._losses(request)
            if request.reply.value is not None:
                self._reported = self.counters.losses()
            return ExporterFlush.of(self.name, losses, pending)
        losses, _ = self._losses(request)
        return ExporterFlush.of(self.name, losses, pending=max(1, self.pending()))

    def flush(self, timeout: float | None) -> ExporterFlush:
        request = self.request_flush()
        request.done.wait(timeout)
        return self.flush_result(request)

    # -- replay -----------------------------------------------------------------------

    def replay(self, timeout: float | None = None) -> int:
        if self.local is not None:
            return self.local.replay(timeout)
        wait = None if timeout is None else timeout + 1.0
        count = self.link.ask(self.slot, "replay", timeout, timeout=wait)
        return int(count or 0)

    def feed(self, items: Sequence[SpanEvent | Score], deadline: float | None = None) -> int:
        if self.local is not None:
            return self.local.feed(items, deadline)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        wait = None if timeout is None else timeout + 1.0
        count = self.link.ask(self.slot, "feed", list(items), timeout, timeout=wait)
        return int(count or 0)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def paused(self) -> bool:
        if self.local is not None:
            return self.local.paused
        return self.link.reports[self.slot][1]

    def close(self) -> None:
        self._closed = True
        if self.local is not None:
            self.local.close()
        else:
            self.link.request(self.slot, "close")

    def stop(self, timeout: float | None) -> bool:
        if self._stopped:
            return True
        self._closed = True
        self._stopped = True
        local = self.local
        if local is not None:
            return local.stop(timeout)
        started = time.monotonic()
        wait = None if timeout is None else timeout + 0.5
        ok = bool(self.link.ask(self.slot, "stop", timeout, timeout=wait))
        remaining = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
        self.link.channel_stopped(remaining)
        return ok

    def shutdown(self, timeout: float | None) -> bool:
        """Close, flush within ``timeout``, stop; True if all was delivered."""
        return shut_down(self, timeout, time.monotonic)

    def _waiting_here(self) -> int:
        """Items still in this process: queued for the hand-off, or sent and not yet received."""
        link = self.link
        queued = sum(
            1 for slot, item in list(link.queue) if slot == self.slot and type(item) is not _Control
        )
        return queued + max(0, link.shipped[self.slot])

    def pending(self) -> int:
        if self.local is not None:
            return self.local.pending()
        return self._waiting_here() + self.link.reports[self.slot][0]

    def stats(self) -> ChannelStats:
        if self.local is not None:
            return self.local.stats()
        link = self.link
        there: ChannelStats | None = None
        if link.pid is not None and not self._stopped:
            there = link.ask(self.slot, "stats", timeout=STATS_WAIT)
        if there is None:
            queued, paused, counts = link.reports[self.slot]
            there = ChannelStats(
                config=self.config_name,
                exporter=self.exporter.instance_name,
                type=type(self.exporter).name,
                realtime=self.realtime,
                queued=queued,
                exported=counts[0],
                dropped=counts[1],
                retried=counts[2],
                failed=counts[3],
                spooled=counts[4],
                replayed=counts[5],
                rejected=counts[6],
                paused=paused,
                state="paused" if paused else "running",
            )
        here = self.counters
        return ChannelStats(
            config=there.config,
            exporter=there.exporter,
            type=there.type,
            realtime=there.realtime,
            queued=there.queued + self._waiting_here(),
            exported=there.exported + here.exported,
            dropped=there.dropped + here.dropped,
            retried=there.retried,
            failed=there.failed + here.failed,
            spooled=there.spooled,
            replayed=there.replayed,
            evicted=there.evicted,
            rejected=there.rejected,
            tail_overflow=there.tail_overflow,
            paused=there.paused,
            state=there.state,
            reason=there.reason,
        )


# -- helper side ----------------------------------------------------------------------------


def perform(
    channel: Channel, op: str, args: tuple[Any, ...], answer: Callable[[Any], None]
) -> None:
    """Carry out a request on a thread channel; ``answer`` gets its result.

    Requests that wait (flush, replay, feed, stop) run on a thread of their
    own, so the pipe keeps being read meanwhile.
    """

    def later(target: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                value = target()
            except Exception as exc:
                _log.error("delivery_process_request_failed", op=op, error=describe(exc))
                value = None
            answer(value)

        threading.Thread(target=run, name=f"obshub-helper-{op}", daemon=True).start()

    if op == "flush":
        request = channel.request_flush()

        def flushed() -> tuple[Losses, int]:
            request.done.wait()
            result = channel.flush_result(request)
            return Losses(result.dropped, result.failed, result.spooled, result.rejected), 0

        later(flushed)
    elif op == "stats":
        answer(channel.stats())
    elif op == "close":
        channel.close()
        answer(True)
    elif op == "replay":
        (timeout,) = args
        later(lambda: channel.replay(timeout))
    elif op == "feed":
        items, timeout = args
        deadline = None if timeout is None else time.monotonic() + timeout
        later(lambda: channel.feed(items, deadline))
    elif op == "stop":
        (timeout,) = args
        later(lambda: channel.stop(timeout))


class _Helper:
    """The helper process: one thread channel per exporter, fed from the pipe."""

    def __init__(self, link: Link, up: int) -> None:
        self.link = link
        self.up = up
        self.write_lock = threading.Lock()
        self.channels = [Channel(e, link.config_name, tail=link.tail) for e in link.exporters]
        self.received = [0] * len(self.channels)
        self.count_lock = threading.Lock()
        self.last_rows: list[tuple[int, bool, tuple[int, ...]]] = []
        self.done = threading.Event()

    def send(self, message: tuple[Any, ...]) -> None:
        data = _dumps(message, DEFAULT_LIMITS)
        with self.write_lock:
            _write_all(self.up, data)

    def reply(self, reply_id: int, value: Any) -> None:
        if reply_id:
            with contextlib.suppress(OSError):
                self.send(("reply", reply_id, value))

    def report_loop(self) -> None:
        parent = os.getppid()
        quiet = 0.0
        while not self.done.wait(REPORT_INTERVAL):
            if os.getppid() != parent:
                # Our parent is gone without closing the pipe (a child of it
                # holds the write end): treat it as the end of the stream.
                self.finish()
                os._exit(0)
            quiet += REPORT_INTERVAL
            if quiet >= HEARTBEAT:
                quiet = 0.0
                self.report()
            else:
                self.report(changed_only=True)

    def report(self, changed_only: bool = False) -> None:
        """Send the queued figures, counters and items received since the last report."""
        rows: list[tuple[int, bool, tuple[int, ...]]] = []
        # Under the lock that `handle` holds while it queues a frame: every
        # received item is either in this report's ``received`` and queued
        # figures or in neither.
        with self.count_lock:
            received, self.received = self.received, [0] * len(self.channels)
            for channel in self.channels:
                c = channel.counters
                counts = (
                    c.exported,
                    c.dropped,
                    c.retried,
                    c.failed,
                    c.spooled,
                    c.replayed,
                    c.rejected,
                )
                rows.append((channel.pending(), channel.paused, counts))
            if changed_only and rows == self.last_rows and not any(received):
                return
            self.last_rows = rows
        with contextlib.suppress(OSError):
            self.send(("report", rows, received))

    def handle(self, message: tuple[Any, ...]) -> bool:
        """Act on one message; False when the helper should exit."""
        op = message[0]
        if op == "items":
            channels = self.channels
            restore = self.link.restore
            traces: dict[int, Any] = {}
            last: Any = None
            record: Any = None
            failure: Exception = ValueError("unreadable record")
            with self.count_lock:
                received = self.received
                for slot, payload in message[1]:
                    received[slot] += 1
                    if payload is not last:
                        last = payload
                        try:
                            record = restore(payload, traces) if type(payload) is tuple else payload
                        except Exception as exc:  # counted as failed for each exporter
                            record, failure = None, exc
                    if record is None:
                        channels[slot].keeper.build_failed(failure)
                    else:
                        channels[slot].put(record)
            return True
        if op == "exit":
            return False
        reply_id, slot, args = message[1], message[2], message[3:]

        def answer(value: Any) -> None:
            self.report()  # first: the answer finds the counters up to date
            self.reply(reply_id, value)

        perform(self.channels[slot], op, args, answer)
        return True

    def finish(self) -> None:
        """The application is gone: deliver or spool what is held, within `EXIT_GRACE`."""
        # A hard deadline that needs no Python code to run: faulthandler's own
        # thread dumps the stacks and ends the process even if the helper is
        # wedged (a C call holding the interpreter), so it never lingers.
        with contextlib.suppress(Exception):
            faulthandler.dump_traceback_later(EXIT_GRACE + HARD_EXIT_MARGIN, exit=True)
        deadline = time.monotonic() + EXIT_GRACE
        for channel in self.channels:
            if not channel.stopped:
                channel.shutdown(max(0.0, deadline - time.monotonic()))


def serve(link: Link, down: int, up: int) -> int:
    """The helper process's main function (in the forked child); returns its exit code."""
    try:
        for other in list(_links):
            # Pipes of other configs' helpers, inherited: closing them lets
            # those helpers see the application exit.
            for fd in (other._down, other._up):
                if fd is not None and other is not link:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The application's objects, inherited, are never collected here: kept
        # out of the collector, their pages stay shared with the application
        # instead of being copied when a collection walks them.
        gc.freeze()
        link.child_init()
        helper = _Helper(link, up)
    except Exception as exc:
        with contextlib.suppress(Exception):
            _log.error("delivery_process_start_failed", error=describe(exc))
        return 70
    threading.Thread(target=helper.report_loop, name="obshub-helper-report", daemon=True).start()
    stream = _FrameStream(down, PIPE_BYTES)
    exit_asked = False
    while True:
        try:
            message = stream.next(None)
        except OSError:
            message = None
        except Exception as exc:
            # A frame that cannot be read leaves the stream unusable: deliver
            # what is held and exit; the application counts the frame's items
            # as dropped (sent, never received) and starts a new helper.
            _log.error("delivery_process_bad_frame", error=describe(exc))
            helper.finish()
            helper.done.set()
            return 70
        if message is None:
            break
        if not helper.handle(message):
            exit_asked = True
            break
    if not exit_asked:
        helper.finish()
    helper.done.set()
    helper.report()
    return 0
