"""obshub: record what an AI application does, once; send it to every backend.

Quick start::

    import obshub

    hub = obshub.configure()          # ./obshub.toml, $OBSHUB_CONFIG or the built-in default
    with hub.span("support-agent", type="agent_run", input=question) as agent:
        with hub.span("gpt-4o", type="model_generation", model="gpt-4o") as gen:
            gen.update(output=answer, usage={"input": 812, "output": 95})
        agent.update(output=answer)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from obshub._builtin import ConsoleExporter, JsonlExporter, MemoryExporter
from obshub._config import Config, discover_config
from obshub._config_errors import ConfigError
from obshub._delivery import ChannelStats, ExporterFlush, FlushResult
from obshub._exporters import Batch, CheckResult, Exporter, ExportError
from obshub._hookspecs import hookimpl
from obshub._hub import Hub, get_global_hub, make_global_observer, set_global_hub
from obshub._processors import Redactor, SpanProcessor
from obshub._retry import Retry
from obshub._sampling import Sampler
from obshub._tenants import OnDemand
from obshub._threads import bind_threads
from obshub._tracing import LiveSpan, bind_context, current_span, inject
from obshub.media import Media
from obshub.spans import (
    Cost,
    EventKind,
    Level,
    Prompt,
    Score,
    ScoreDataType,
    Span,
    SpanError,
    SpanEvent,
    SpanType,
    Usage,
)

try:
    __version__ = metadata.version("obshub")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Batch",
    "ChannelStats",
    "CheckResult",
    "Config",
    "ConfigError",
    "ConsoleExporter",
    "Cost",
    "EventKind",
    "ExportError",
    "Exporter",
    "ExporterFlush",
    "FlushResult",
    "Hub",
    "JsonlExporter",
    "Level",
    "LiveSpan",
    "Media",
    "MemoryExporter",
    "OnDemand",
    "Prompt",
    "Redactor",
    "Retry",
    "Sampler",
    "Score",
    "ScoreDataType",
    "Span",
    "SpanError",
    "SpanEvent",
    "SpanProcessor",
    "SpanType",
    "Usage",
    "__version__",
    "bind_context",
    "bind_threads",
    "configure",
    "current_span",
    "event",
    "flush",
    "get_hub",
    "hookimpl",
    "inject",
    "observe",
    "score",
    "shutdown",
    "span",
]


def configure(
    source: str | os.PathLike[str] | Mapping[str, Any] | Hub | None = None, **hub_kwargs: Any
) -> Hub:
    """Build the process default hub and return it.

    ``source`` is a TOML path, a dict, or a ready `Hub`; with neither
    ``source`` nor keyword arguments the config is discovered like the CLI
    does (``$OBSHUB_CONFIG``, ``./obshub.toml``, else the built-in default).
    Keyword arguments build ``Hub(**hub_kwargs)`` (e.g. ``exporters=[...]``).
    A previous default hub is shut down.
    """
    if isinstance(source, Hub):
        hub = source
    elif source is not None:
        hub = Hub.from_config(source, **hub_kwargs)
    elif hub_kwargs:
        hub = Hub(**hub_kwargs)
    else:
        hub = Hub.from_config(discover_config()[0])
    previous = set_global_hub(hub)
    if previous is not None and previous is not hub:
        previous.shutdown()
    return hub


def get_hub() -> Hub:
    """The hub set by `configure`, or one that records nothing."""
    return get_global_hub()


def span(name: str, **kwargs: Any) -> LiveSpan:
    """``get_hub().span(...)``."""
    return get_global_hub().span(name, **kwargs)


def event(name: str, **fields: Any) -> None:
    """``get_hub().event(...)``."""
    get_global_hub().event(name, **fields)


def score(**kwargs: Any) -> None:
    """``get_hub().score(...)``."""
    get_global_hub().score(**kwargs)


def flush(timeout: float | None = 30.0) -> FlushResult:
    """``get_hub().flush(...)``."""
    return get_global_hub().flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """``get_hub().shutdown(...)``."""
    return get_global_hub().shutdown(timeout)


def observe(fn: Any = None, **options: Any) -> Any:
    """Like `Hub.observe`, on whichever hub is the default when the function runs."""
    return make_global_observer(fn, **options)
