"""Configs built on demand: the selector's answer for one tenant, kept in a bounded cache.

A selector may return `OnDemand(name, build)` instead of a config name: the
first trace that asks for ``name`` builds the config (``build()`` returns a
config table, as in a file, or an `obshub.Config`), later traces reuse it. At
most ``max_configs`` are kept; the least recently used one beyond that, and
any unused for ``idle_timeout`` seconds, is retired: its exporters are
flushed and closed on a background thread, never on the application thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from obshub._config import Config, build_config
from obshub._delivery import Channel
from obshub._delivery.process import ProcessChannel
from obshub._logging import RateLimitedLog, get_logger
from obshub._plugins import PluginRegistry
from obshub._routing import LiveConfig
from obshub._serialization import describe

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_CONFIGS", "OnDemand", "OnDemandConfigs"]

_log = get_logger()
_limited = RateLimitedLog()

#: Configs built on demand kept at most, by default.
DEFAULT_MAX_CONFIGS = 64
#: Seconds an on-demand config may go unused before it is flushed and closed.
DEFAULT_IDLE_TIMEOUT = 600.0
#: Seconds a retired config's exporters get to deliver what they hold.
RETIRE_TIMEOUT = 30.0


@attrs.frozen
class OnDemand:
    """A selector's answer naming a config to build on first use.

    ``name`` identifies the config (e.g. ``f"tenant-{tenant_id}"``); ``build``
    is called once per name while it is cached, on the application thread of
    the first trace that needs it, and returns a config table (the shape of
    ``[configs.<name>]``: ``exporters``, ``sampling``, ``pii``, ...) or an
    `obshub.Config`. A name that is also a config of the hub means that config.
    """

    name: str
    build: Callable[[], Mapping[str, Any] | Config] = attrs.field(eq=False, repr=False)


class OnDemandConfigs:
    """The bounded cache of configs built on demand (thread-safe)."""

    def __init__(
        self,
        registry: Callable[[], PluginRegistry],
        environ: Mapping[str, str],
        *,
        max_configs: int = DEFAULT_MAX_CONFIGS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_configs, bool) or not isinstance(max_configs, int) or max_configs < 1:
            raise ValueError(f"on_demand_max_configs must be an integer >= 1, got {max_configs!r}")
        if not idle_timeout > 0:
            raise ValueError(f"on_demand_idle_timeout must be > 0, got {idle_timeout!r}")
        self._registry = registry
        self._environ = environ
        self.max_configs = max_configs
        self.idle_timeout = idle_timeout
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[LiveConfig, float]] = OrderedDict()
        self._retiring: set[LiveConfig] = set()
        self._closed = False
        #: Configs retired so far (evicted for room or idle).
        self.retired = 0

    def get(self, request: OnDemand) -> LiveConfig | None:
        """The live config for ``request``, built on first use; None when it cannot be built."""
        now = self._monotonic()
        retire: list[LiveConfig] = []
        with self._lock:
            if self._closed:
                return None
            hit = self._cache.get(request.name)
            if hit is not None:
                self._cache[request.name] = (hit[0], now)
                self._cache.move_to_end(request.name)
                live: LiveConfig | None = hit[0]
            else:
                live = self._build(request)
                if live is not None:
                    self._cache[request.name] = (live, now)
            retire.extend(self._expired(now))
        self._retire(retire)
        return live

    def find(self, name: str) -> LiveConfig | None:
        """The cached config called ``name``, if any."""
        with self._lock:
            hit = self._cache.get(name)
        return None if hit is None else hit[0]

    def sweep(self) -> None:
        """Retire the configs idle for longer than ``idle_timeout``."""
        with self._lock:
            retire = self._expired(self._monotonic())
        self._retire(retire)

    def live_configs(self) -> list[LiveConfig]:
        """Cached and retiring configs (the hub flushes, counts and stops them too)."""
        with self._lock:
            return [live for live, _ in self._cache.values()] + list(self._retiring)

    def channels(self) -> list[Channel | ProcessChannel]:
        return [c for live in self.live_configs() for c in live.channels]

    def close(self) -> None:
        """Build nothing more (the hub shuts the cached configs down itself)."""
        with self._lock:
            self._closed = True

    def _build(self, request: OnDemand) -> LiveConfig | None:
        try:
            built = request.build()
            if isinstance(built, Config):
                config = attrs.evolve(built, name=request.name)
            elif isinstance(built, Mapping):
                config = build_config(
                    request.name,
                    built,
                    self._registry(),
                    self._environ,
                    f"configs.{request.name}",
                )
            else:
                raise TypeError(
                    f"build() must return a config table or an obshub.Config, "
                    f"not {type(built).__name__}"
                )
            return LiveConfig(
                config.name,
                config.service_name,
                config.sampler,
                config.processors,
                config.exporters,
            )
        except Exception as exc:
            _limited(
                _log,
                "error",
                "on_demand_config_failed",
                limit_key=request.name,
                config=request.name,
                error=describe(exc),
            )
            return None

    def _expired(self, now: float) -> list[LiveConfig]:
        """Take out of the cache what is past the bounds (under the lock)."""
        out: list[LiveConfig] = []
        cache = self._cache
        while cache:
            name, (live, used) = next(iter(cache.items()))
            if len(cache) <= self.max_configs and now - used < self.idle_timeout:
                break
            del cache[name]
            out.append(live)
        self._retiring.update(out)
        self.retired += len(out)
        return out

    def _retire(self, lives: list[LiveConfig]) -> None:
        if not lives:
            return
        thread = threading.Thread(
            target=self._shut, args=(lives,), name="obshub-on-demand-retire", daemon=True
        )
        thread.start()

    def _shut(self, lives: list[LiveConfig]) -> None:
        for live in lives:
            for channel in live.channels:
                try:
                    channel.shutdown(RETIRE_TIMEOUT)
                except Exception as exc:
                    _limited(_log, "error", "on_demand_close_failed", error=describe(exc))
            with self._lock:
                self._retiring.discard(live)
