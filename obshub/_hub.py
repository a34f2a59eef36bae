"""The hub: named configurations, span recording, scores, flush and shutdown."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from obshub._config import (
    Config,
    ConfigError,
    build_configs,
    build_exporters,
    build_named_configs,
    default_service_name,
    load_source,
    shutdown_timeout_of,
)
from obshub._delivery import Channel, ChannelStats, ExporterFlush, FlushResult
from obshub._delivery.process import ProcessChannel
from obshub._delivery.spool import read_records
from obshub._exporters import Exporter
from obshub._failed import FailedExporter
from obshub._logging import RateLimitedLog, get_logger
from obshub._plugins import PluginRegistry, get_registry
from obshub._processors import SpanProcessor, build_processors
from obshub._routing import LiveConfig
from obshub._sampling import Sampler
from obshub._serialization import printable
from obshub._tenants import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONFIGS, OnDemand, OnDemandConfigs
from obshub._tracing import (
    LiveSpan,
    TraceState,
    current_span,
    observe,
    open_span,
    parse_traceparent,
    record_event,
    recording_failed,
    trace_of,
)
from obshub.spans import SpanType, new_trace_id

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "Hub", "Selector"]

#: Seconds ``shutdown()`` (and so interpreter exit) may wait for backends.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
#: Seconds ``flush()`` waits when no timeout is given.
DEFAULT_FLUSH_TIMEOUT = 30.0
#: How many recent traces are remembered to route ``hub.score(trace_id=...)``.
RECENT_TRACES = 10_000

#: ``selector(name, type, fields) -> config name | None`` picks a root span's config.
Selector = Callable[[str, SpanType, Mapping[str, Any]], "str | OnDemand | None"]

F = TypeVar("F", bound=Callable[..., Any])

_log = get_logger()
_limited = RateLimitedLog()
_time_ns = time.time_ns


class Hub:
    """Holds named configurations and records spans into them.

    Build one from a file or dict with `from_config`, or in code::

        hub = obshub.Hub(exporters=[ConsoleExporter()], service_name="support-bot")
        hub = obshub.Hub(configs={"prod": {...}, "dev": {...}}, default="dev")

    Exactly one config handles a trace: the root span's ``config=``, else
    ``selector(name, type, fields)``, else the default (the first config when
    ``default`` is not given). Children follow their root.
    """

    def __init__(
        self,
        configs: Mapping[str, Config | Mapping[str, Any]] | None = None,
        *,
        exporters: Sequence[Exporter | Mapping[str, Any]] | None = None,
        service_name: str | None = None,
        sampling: str | Mapping[str, Any] | Sampler | Callable[[str], bool] | None = None,
        redact: bool | Sequence[str] = False,
        processors: Sequence[SpanProcessor] = (),
        pii: bool | Sequence[str] | Mapping[str, Any] = False,
        pii_action: str = "mask",
        default: str | None = None,
        selector: Selector | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        registry: PluginRegistry | None = None,
        environ: Mapping[str, str] | None = None,
        on_demand_max_configs: int = DEFAULT_MAX_CONFIGS,
        on_demand_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        env = os.environ if environ is None else environ
        reg = registry
        built: dict[str, Config] = {}
        if exporters is None and (
            service_name is not None or sampling is not None or redact or processors or pii
        ):
            raise ConfigError(
                "service_name=, sampling=, redact=, processors= and pii= go with exporters=; "
                "with configs=, put them in each config"
            )
        if exporters is not None:
            if configs:
                raise ConfigError("give either configs= or exporters=, not both")
            reg = reg or get_registry()
            try:
                sampler = Sampler.from_config(sampling, reg.sampler_factory)
            except ConfigError as exc:
                raise exc.within("sampling") from None
            procs = build_processors(
                redact=redact,
                pii=pii,
                pii_action=pii_action,
                processors=processors,
                named=reg.processor_factory,
            )
            built["default"] = Config(
                name="default",
                service_name=service_name or default_service_name(env),
                sampler=sampler,
                processors=tuple(procs),
                exporters=tuple(build_exporters(list(exporters), reg, "exporters", env)),
            )
        if configs:
            built.update(build_named_configs(configs, reg or get_registry(), env))
        if default is not None and default not in built:
            raise ConfigError(f"no config named {default!r}", "default")
        _check_exporters_unique(built)
        self._live: dict[str, LiveConfig] = {
            name: LiveConfig(c.name, c.service_name, c.sampler, c.processors, c.exporters)
            for name, c in built.items()
        }
        self._configs = built
        self.default: str | None = default if default is not None else next(iter(built), None)
        self._default_live = self._live.get(self.default) if self.default else None
        self._selector = selector
        # Configs a selector builds on demand (OnDemand answers), bounded and retired when idle.
        self._on_demand = OnDemandConfigs(
            lambda: reg or get_registry(),
            env,
            max_configs=on_demand_max_configs,
            idle_timeout=on_demand_idle_timeout,
        )
        self.shutdown_timeout = shutdown_timeout
        self._recent: OrderedDict[str, TraceState] = OrderedDict()
        # Remembering traces only matters to route scores by trace id when the
        # answer is not always "the default config, recorded".
        self._track_traces = (
            selector is not None
            or len(self._live) > 1
            or any(r.sampler.strategy != "always" for r in self._live.values())
        )
        self._shutdown_lock = threading.Lock()
        self._shutdown_result: bool | None = None
        _live_hubs.add(self)

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        selector: Selector | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        registry: PluginRegistry | None = None,
        environ: Mapping[str, str] | None = None,
        on_demand_max_configs: int = DEFAULT_MAX_CONFIGS,
        on_demand_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> Hub:
        """Build a hub from a TOML file path or a dict of the same shape.

        Raises one `ConfigError` naming the full key path of every mistake
        found (its ``errors`` holds one error per mistake). An exporter whose
        constructor raises anything else is disabled, not fatal: see
        `obshub._failed`.
        """
        data = load_source(source)
        reg = registry or get_registry()
        configs, default = build_configs(data, reg, environ)
        return cls(
            configs,
            default=default,
            selector=selector,
            shutdown_timeout=shutdown_timeout_of(data, environ, shutdown_timeout),
            registry=reg,
            environ=environ,
            on_demand_max_configs=on_demand_max_configs,
            on_demand_idle_timeout=on_demand_idle_timeout,
        )

    # -- introspection ------------------------------------------------------------

    @property
    def configs(self) -> Mapping[str, Config]:
        """The named configurations, by name."""
        return dict(self._configs)

    def exporters(self, config: str | None = None) -> list[Exporter]:
        """The exporter instances of one config (default: every config), disabled ones too."""
        return [
            exporter
            for name, live in self._live.items()
            if config is None or name == config
            for exporter in live.exporters
        ]

    def __repr__(self) -> str:
        return f"<Hub configs={list(self._live)} default={self.default!r}>"

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- recording -----------------------------------------------------------------

    def span(
        self,
        name: str,
        *,
        type: SpanType | str = SpanType.GENERIC,
        config: str | None = None,
        parent: LiveSpan | str | Mapping[str, Any] | None = None,
        start_time: int | None = None,
        **fields: Any,
    ) -> LiveSpan:
        """Start a span; use it as a context manager (or call ``end()``).

        ``fields`` are any settable span fields: ``input``, ``output``,
        ``metadata``, ``attributes``, ``tags``, ``session_id``, ``user_id``,
        ``model``, ``provider``, ``parameters``, ``usage``, ``cost``,
        ``completion_start_time``, ``prompt``, ``level``, ``status_message``.
        The parent is the current span unless ``parent`` is given; a span
        without a parent starts a new trace in the config chosen by
        ``config=``, the selector or the default. ``parent`` may also be the
        incoming headers of a request (a mapping with ``traceparent``) or a
        W3C ``traceparent`` string: the span then continues the caller's trace
        (see `obshub.inject`); a missing or malformed one starts a new trace.
        """
        if parent is None or isinstance(parent, LiveSpan):
            return open_span(self._new_trace, name, type, config, parent, start_time, fields)
        remote = parse_traceparent(parent)
        if remote is None:
            return open_span(self._new_trace, name, type, config, None, start_time, fields)
        trace_id, parent_id = remote

        def continued(
            name: str, span_type: SpanType, config: str | None, fields: Mapping[str, Any]
        ) -> TraceState:
            return self._new_trace(name, span_type, config, fields, trace_id=trace_id)

        return open_span(continued, name, type, config, None, start_time, fields, parent_id)

    def event(self, name: str, **fields: Any) -> None:
        """Record a point-in-time event under the current span (or as its own trace)."""
        record_event(self._new_trace, name, fields)

    @overload
    def observe(self, fn: F) -> F: ...

    @overload
    def observe(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        type: SpanType | str = SpanType.GENERIC,
        capture_input: bool = True,
        capture_output: bool = True,
        **fields: Any,
    ) -> Callable[[F], F]: ...

    def observe(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        type: SpanType | str = SpanType.GENERIC,
        capture_input: bool = True,
        capture_output: bool = True,
        **fields: Any,
    ) -> Any:
        """Decorate a function so each call records a span.

        Works on sync and async functions, generators and async generators
        (the span lasts until the generator is exhausted; its output is the
        yielded items, joined when they are strings). The span is named after
        the function unless ``name`` is given; arguments become ``input`` and
        the return value ``output`` unless ``capture_input`` /
        ``capture_output`` are false; ``fields`` are set on every span.
        """
        return _make_observer(lambda: self, fn, name, type, capture_input, capture_output, fields)

    def score(
        self,
        *,
        name: str,
        value: float | int | bool | str,
        trace_id: str | None = None,
        span_id: str | None = None,
        session_id: str | None = None,
        config: str | None = None,
        **fields: Any,
    ) -> None:
        """Score a trace, a span or a session.

        Other fields: ``comment``, ``metadata``, ``data_type`` (NUMERIC,
        BOOLEAN, CATEGORICAL inferred from the value; TEXT, CORRECTION when
        asked for), ``id`` and ``backend_fields`` (what only some backend
        understands, keyed by exporter type; see `obshub.Score`).

        Without ids it scores the current trace. A score without a trace or
        session is allowed only when ``backend_fields`` names its target (e.g.
        a Langfuse dataset run). The score goes to the exporters of the
        trace's config that take scores (the default config for a trace this
        hub no longer remembers).
        """
        try:
            live = (self._live.get(config) or self._on_demand.find(config)) if config else None
            current = current_span()
            if trace_id is None and session_id is None and current is not None:
                trace_id = current.trace_id
            if live is None and trace_id is not None:
                trace = self._recent.get(trace_id)
                if trace is None and current is not None and current.trace_id == trace_id:
                    trace = trace_of(current)
                if trace is not None:
                    if not trace.sampled:
                        return
                    live = trace.config
            if live is None:
                live = self._default_live
            if live is None:
                return
            if trace_id is None and session_id is None and not fields.get("backend_fields"):
                raise ValueError(
                    "score() needs trace_id, session_id, a current span or a target "
                    "in backend_fields"
                )
            live.score(
                name=name,
                value=value,
                trace_id=trace_id,
                span_id=span_id,
                session_id=session_id,
                timestamp=_time_ns(),
                **fields,
            )
        except Exception as exc:
            recording_failed("score", exc)

    def _new_trace(
        self,
        name: str,
        span_type: SpanType,
        config: str | None,
        fields: Mapping[str, Any],
        trace_id: str | None = None,
    ) -> TraceState:
        """The state of a new trace (``trace_id``: one started elsewhere, else a new id)."""
        chosen: str | OnDemand | None = config
        if chosen is None and self._selector is not None:
            try:
                chosen = self._selector(name, span_type, fields)
            except Exception as exc:
                _limited(_log, "warning", "selector_failed", span=name, error=printable(exc, repr))
        live = self._default_live
        if isinstance(chosen, OnDemand):
            built = self._live.get(chosen.name) or self._on_demand.get(chosen)
            if built is not None:
                live = built
        elif chosen is not None:
            found = self._live.get(chosen)
            if found is None:
                # Each distinct unknown name is reported (limit_key), with where the trace went.
                _limited(
                    _log,
                    "warning",
                    "unknown_config",
                    limit_key=str(chosen)[:200],
                    config=chosen,
                    span=name,
                    fallback=(
                        f"traced with the default config {live.name!r}"
                        if live is not None
                        else "not traced: there is no default config"
                    ),
                )
            else:
                live = found
        if trace_id is None:
            trace_id = new_trace_id()
        sampled = live is not None and live.sampler.should_sample(trace_id)
        trace = TraceState(trace_id, name, live, sampled)
        if self._track_traces:
            recent = self._recent
            recent[trace_id] = trace
            if len(recent) > RECENT_TRACES:
                with contextlib.suppress(KeyError):
                    recent.popitem(last=False)
        return trace

    # -- delivery --------------------------------------------------------------------

    def _channels(self) -> list[Channel | ProcessChannel]:
        static = [c for live in self._live.values() for c in live.channels]
        return static + self._on_demand.channels()

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> FlushResult:
        """Hand everything recorded so far to the backends; wait at most ``timeout`` s.

        The result is truthy only when everything recorded before the call
        reached its backend: nothing dropped, failed, spooled or rejected since
        the previous flush, and nothing left when the wait ended. Otherwise it
        says what happened, per exporter (see `FlushResult`). Never raises,
        never waits longer than ``timeout``.
        """
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            self._on_demand.sweep()
            channels = self._channels()
            requests = [c.request_flush() for c in channels]
            for request in requests:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                request.done.wait(remaining)
            return FlushResult(
                {c.name: c.flush_result(r) for c, r in zip(channels, requests, strict=True)}
            )
        except Exception as exc:
            recording_failed("flush", exc)
            return FlushResult({"hub": ExporterFlush("hub", failed=1)})

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop every exporter within ``timeout`` s (default ``shutdown_timeout``).

        Idempotent; also run at interpreter exit. A hung backend cannot make
        it wait longer than the timeout, and a paused one (401/403) is not
        waited for; what could not be delivered is spooled (with a
        ``spool_dir``) or counted as dropped. Returns True when everything was
        delivered.
        """
        with self._shutdown_lock:
            if self._shutdown_result is not None:
                return self._shutdown_result
            timeout = self.shutdown_timeout if timeout is None else timeout
            try:
                deadline = time.monotonic() + timeout
                self._on_demand.close()
                channels = self._channels()
                for channel in channels:
                    channel.close()
                # A paused channel (backend refusing the keys) will not send before
                # its pause ends: waiting for it would only stretch the exit.
                requests = [c.request_flush() for c in channels if not c.paused]
                ok = len(requests) == len(channels)
                for request in requests:
                    remaining = max(0.0, deadline - time.monotonic())
                    ok = request.done.wait(remaining) and request.ok and ok
                for channel in channels:
                    ok = channel.stop(max(0.0, deadline - time.monotonic())) and ok
            except Exception as exc:
                recording_failed("shutdown", exc)
                ok = False
            self._shutdown_result = ok
            _live_hubs.discard(self)
            return ok

    def stats(self) -> dict[str, ChannelStats]:
        """Counters per exporter instance, keyed ``"<config>/<exporter>"``.

        An exporter that failed to start has an entry too: a
        `ChannelStats` with zero counters, ``state="disabled"`` and a ``reason``.
        """
        stats = {f"{c.config_name}/{c.exporter.instance_name}": c.stats() for c in self._channels()}
        # -- exporters disabled because their constructor raised (obshub._failed) --
        for name, live in self._live.items():
            for exporter in live.exporters:
                if isinstance(exporter, FailedExporter):
                    stats[f"{name}/{exporter.instance_name}"] = exporter.stats(name)
        return stats

    def _matching(self, exporter: str | None) -> list[Channel | ProcessChannel]:
        channels = [
            c
            for c in self._channels()
            if exporter is None
            or exporter in (c.exporter.instance_name, f"{c.config_name}/{c.exporter.instance_name}")
        ]
        if exporter is not None and not channels:
            known = ", ".join(self.stats()) or "none"
            raise ValueError(f"no exporter named {exporter!r} (exporters: {known})")
        return channels

    def replay(self, exporter: str | None = None, timeout: float | None = None) -> dict[str, int]:
        """Re-send what the exporters' disk spools hold, now; returns counts per exporter.

        ``exporter`` is an instance name (or ``"<config>/<exporter>"``); by
        default every exporter with a ``spool_dir``. Returns within ``timeout``
        seconds for all of them together (None: until done), leaving what was
        not queued on disk. A hub re-sends its spools in the background anyway;
        this is for ``obshub replay`` and scripts.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        counts: dict[str, int] = {}
        for channel in self._matching(exporter):
            if channel.exporter.spool_dir is None:
                continue
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            counts[channel.name] = channel.replay(remaining)
        return counts

    def replay_file(
        self,
        path: str | os.PathLike[str],
        exporter: str | None = None,
        timeout: float | None = DEFAULT_FLUSH_TIMEOUT,
    ) -> tuple[dict[str, int], int]:
        """Send the events and scores of a JSONL file (or spool segment) to exporters.

        Each exporter gets the event kinds it asks for. Returns the count
        queued per exporter and the number of unreadable lines skipped.
        Raises `ValueError` (before reading) when a chosen exporter writes to
        ``path`` itself: it would append to the file being read. Raises
        `OSError` when the file cannot be read.
        """
        channels = self._matching(exporter)
        for channel in channels:
            target = getattr(channel.exporter, "path", None)
            if isinstance(target, (str, os.PathLike)) and _same_file(target, path):
                raise ValueError(
                    f"refusing to replay {os.fspath(path)} into exporter "
                    f"{channel.config_name}/{channel.exporter.instance_name}, which writes to "
                    "that same file; choose other exporters (--exporter NAME) or another config"
                )
        items, bad = read_records(path)
        deadline = None if timeout is None else time.monotonic() + timeout
        fed = {
            f"{c.config_name}/{c.exporter.instance_name}": c.feed(items, deadline) for c in channels
        }
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.flush(remaining)
        return fed, bad


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _check_exporters_unique(configs: Mapping[str, Config]) -> None:
    owner: dict[int, str] = {}
    for name, config in configs.items():
        for exporter in config.exporters:
            key = id(exporter)
            if key in owner:
                raise ConfigError(
                    f"exporter instance {exporter.instance_name!r} is also used by config "
                    f"{owner[key]!r}; create one instance per config",
                    f"configs.{name}.exporters",
                )
            owner[key] = name


def _make_observer(
    get_hub: Callable[[], Any],
    fn: Callable[..., Any] | None,
    name: str | None,
    span_type: SpanType | str,
    capture_input: bool,
    capture_output: bool,
    fields: dict[str, Any],
) -> Any:
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        return observe(
            get_hub,
            func,
            name=name,
            span_type=span_type,
            capture_input=capture_input,
            capture_output=capture_output,
            fields=fields,
        )

    return decorate(fn) if fn is not None else decorate


# -- process-wide state -------------------------------------------------------------

_live_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


def _shutdown_all_at_exit() -> None:
    for hub in list(_live_hubs):
        hub.shutdown()


atexit.register(_shutdown_all_at_exit)

_global_hub: Hub | None = None
_global_lock = threading.Lock()
_NOOP_HUB: Hub | None = None


def set_global_hub(hub: Hub | None) -> Hub | None:
    """Make ``hub`` the process default; returns the previous one."""
    global _global_hub
    with _global_lock:
        previous, _global_hub = _global_hub, hub
    return previous


def get_global_hub() -> Hub:
    """The process default hub, or a hub that records nothing if none was configured."""
    global _NOOP_HUB
    hub = _global_hub
    if hub is not None:
        return hub
    with _global_lock:
        if _NOOP_HUB is None:
            _NOOP_HUB = Hub({})
        return _NOOP_HUB


def make_global_observer(fn: Any, **options: Any) -> Any:
    """``obshub.observe``: like `Hub.observe`, resolving the hub at call time."""
    return _make_observer(
        get_global_hub,
        fn,
        options.pop("name", None),
        options.pop("type", SpanType.GENERIC),
        options.pop("capture_input", True),
        options.pop("capture_output", True),
        options,
    )
