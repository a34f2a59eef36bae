"""``console``: a readable tree per finished trace, for development."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, TextIO

from obshub._config_errors import ConfigError
from obshub._exporters import CheckResult, Exporter
from obshub.spans import Level, Score, Span, SpanEvent

__all__ = ["ConsoleExporter", "render_trace"]

_STREAMS = ("stdout", "stderr")


class ConsoleExporter(Exporter):
    """Prints each trace as a tree once its root span ends.

    Each line shows the span's name, type, duration, model and tokens, cost,
    and errors. Settings: ``stream`` (``stdout`` or ``stderr``), ``color``
    (``auto``, ``always``, ``never``), ``show_io`` (a short preview of input
    and output), ``max_pending_traces`` (unfinished traces kept; the oldest is
    printed as it is when the limit is passed, and all are at shutdown).
    """

    name: ClassVar[str] = "console"

    def __init__(
        self,
        *,
        stream: str = "stdout",
        color: str = "auto",
        show_io: bool = True,
        max_pending_traces: int = 1000,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if stream not in _STREAMS:
            raise ConfigError("must be stdout or stderr", "stream")
        if color not in ("auto", "always", "never"):
            raise ConfigError("must be auto, always or never", "color")
        if max_pending_traces < 1:
            raise ConfigError(f"must be >= 1, got {max_pending_traces}", "max_pending_traces")
        self.stream = stream
        self.color = color
        self.show_io = show_io
        self.max_pending_traces = max_pending_traces
        self._pending: OrderedDict[str, list[Span]] = OrderedDict()
        self._lock = threading.Lock()

    def _out(self) -> TextIO:
        return sys.stdout if self.stream == "stdout" else sys.stderr

    def _use_color(self, out: TextIO) -> bool:
        if self.color != "auto":
            return self.color == "always"
        if os.environ.get("NO_COLOR"):
            return False
        return bool(getattr(out, "isatty", lambda: False)())

    def export(self, events: Sequence[SpanEvent]) -> None:
        finished: list[list[Span]] = []
        with self._lock:
            for event in events:
                span = event.span
                spans = self._pending.setdefault(span.trace_id, [])
                spans.append(span)
                if span.is_root:
                    finished.append(self._pending.pop(span.trace_id))
            while len(self._pending) > self.max_pending_traces:
                finished.append(self._pending.popitem(last=False)[1])
        self._print(finished)

    def export_scores(self, scores: Sequence[Score]) -> None:
        out = self._out()
        color = self._use_color(out)
        for score in scores:
            target = score.trace_id or score.session_id or "?"
            line = f"score {score.name} = {score.value!r} on {target[:12]}"
            if score.comment:
                line += f" ({score.comment})"
            _write(out, _paint(line, "35", color) + "\n")
        out.flush()

    def shutdown(self) -> None:
        with self._lock:
            leftover = list(self._pending.values())
            self._pending.clear()
        self._print(leftover)

    def _print(self, traces: list[list[Span]]) -> None:
        if not traces:
            return
        out = self._out()
        color = self._use_color(out)
        text = "".join(render_trace(t, color=color, show_io=self.show_io) for t in traces)
        _write(out, text)
        out.flush()

    def check(self) -> CheckResult:
        return CheckResult(ok=True, message=f"prints to {self.stream}")


def _write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
    except UnicodeEncodeError:
        # The stream's encoding cannot show some character (a lone surrogate,
        # or anything outside ASCII on a C-locale terminal): escape it.
        encoding = getattr(out, "encoding", None) or "utf-8"
        out.write(text.encode(encoding, "backslashreplace").decode(encoding))


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _duration(span: Span) -> str:
    ms = span.duration_ms
    if ms is None:
        return "running"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms"


def _preview(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _details(span: Span) -> list[str]:
    parts: list[str] = []
    if span.model:
        parts.append(span.model)
    usage = span.usage
    if usage is not None:
        tokens = f"{usage.input or 0}→{usage.output or 0} tokens"
        if usage.cached_input:
            tokens += f" ({usage.cached_input} cached)"
        parts.append(tokens)
    if span.cost is not None and span.cost.total is not None:
        total = span.cost.total
        parts.append(f"${total:.4f}" if total >= 0.01 else f"${total:.6f}")
    return parts


def render_trace(spans: Sequence[Span], *, color: bool = False, show_io: bool = True) -> str:
    """The tree of one trace as text (children sorted by start time)."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in by_id else None
        children.setdefault(parent, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_time)
    roots = children.get(None, [])
    first = roots[0] if roots else spans[0]
    header = f"trace {first.trace_id[:12]}  {first.trace_name or first.name}"
    extras = []
    if first.session_id:
        extras.append(f"session {first.session_id}")
    if first.user_id:
        extras.append(f"user {first.user_id}")
    if first.tags:
        extras.append("tags " + ",".join(first.tags))
    if not any(s.is_root for s in spans):
        extras.append("incomplete: root not ended")
    if extras:
        header += "  (" + ", ".join(extras) + ")"
    lines = [_paint(header, "1", color)]

    def walk(span: Span, prefix: str, last: bool) -> None:
        branch = "└─ " if last else "├─ "
        kind = "event" if span.is_event else span.type.value
        label = f"{span.name} [{kind}]"
        if not span.is_event:
            label += f" {_duration(span)}"
        details = _details(span)
        if details:
            label += "  " + " · ".join(details)
        if span.level is Level.ERROR or span.error is not None:
            message = span.status_message or (span.error.message if span.error else "error")
            err_type = span.error.type if span.error else "error"
            label += "  " + _paint(f"✗ {err_type}: {_preview(message)}", "31", color)
        elif span.level is Level.WARNING:
            label += "  " + _paint(f"! {_preview(span.status_message or 'warning')}", "33", color)
        lines.append(prefix + branch + label)
        inner = prefix + ("   " if last else "│  ")
        if show_io:
            if span.input is not None:
                lines.append(inner + _paint("in:  " + _preview(span.input), "2", color))
            if span.output is not None:
                lines.append(inner + _paint("out: " + _preview(span.output), "2", color))
        kids = children.get(span.span_id, [])
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1)

    for i, root in enumerate(roots):
        walk(root, "", i == len(roots) - 1)
    return "\n".join(lines) + "\n\n"
