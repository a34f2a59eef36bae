"""The exporter contract: what a backend plugin implements.

An exporter turns batches of `SpanEvent` into calls to its
backend. It never sees the hub's queues or threads: the hub gives each exporter
instance its own delivery channel (a bounded queue and a worker thread) and
calls `Exporter.export` from that worker only, one batch at a time.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from obshub._config_errors import ConfigError, type_name
from obshub._logging import exporter_logger, parse_level
from obshub._processors import SpanProcessor, build_processors
from obshub._retry import PolicyError, Retry, parse_retry_after
from obshub._sampling import Sampler
from obshub.spans import EventKind, Score, SpanEvent

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_MAX_QUEUE_SIZE",
    "Batch",
    "CheckResult",
    "ExportError",
    "Exporter",
]


class ExportError(Exception):
    """An export failed. Raise it from `Exporter.export`.

    ``retryable`` says whether the same batch may succeed later (timeouts, 5xx,
    429); ``retry_after`` is the server's wish in seconds, if it said one;
    ``status`` is the backend's status code, if any. ``pause`` (seconds) says
    the backend refuses this client for now (401/403, a suspended quota): the
    channel holds the batch (or spools it), sends nothing for that long, then
    probes with the held batch and resumes by itself once a send succeeds.

    ``rejected`` says the backend refused the *content* of the batch (by
    default: a 400 or 422 answer). The channel then isolates what it refuses by
    sending halves of the batch, delivers the rest, and keeps the refused
    items — with this error's message as the reason — in a dead-letter file
    under ``spool_dir`` (counted as ``rejected`` either way). An exporter
    that sends item by item and knows which ones were refused passes them as
    ``items`` (the rest of the batch counts as delivered, nothing is re-sent).
    The message must not contain secrets: it is logged.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        pause: float | None = None,
        rejected: bool | None = None,
        items: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.pause = _seconds(pause) or None
        self.retryable = retryable
        self.retry_after = _seconds(retry_after)
        self.status = status
        if rejected is None:
            rejected = not retryable and self.pause is None and status in REJECTED_STATUSES
        self.rejected = rejected
        self.items = None if items is None else list(items)

    def __repr__(self) -> str:
        return (
            f"ExportError({str(self)!r}, retryable={self.retryable}, "
            f"retry_after={self.retry_after}, status={self.status}, pause={self.pause}, "
            f"rejected={self.rejected})"
        )


#: Statuses that mean "the server refuses what is in this request" (not who sent it).
REJECTED_STATUSES = frozenset({400, 422})


def _seconds(value: Any) -> float | None:
    """``retry_after`` as seconds: a number, or a raw ``Retry-After`` header value."""
    if isinstance(value, str):
        return parse_retry_after(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value - value == 0:
        return max(0.0, float(value))
    return None


@attrs.frozen
class CheckResult:
    """What `Exporter.check` found (shown by ``obshub check``)."""

    ok: bool
    message: str
    latency_ms: float | None = None
    details: Mapping[str, Any] = attrs.field(factory=dict)


def _positive_int(_inst: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"must be an integer, got {type_name(value)}", key=attribute.name)
    if value < 1:
        raise ConfigError(f"must be >= 1, got {value}", key=attribute.name)


def _positive_number(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"must be a number, got {type_name(value)}", key=attribute.name)
    if not value > 0:
        raise ConfigError(f"must be > 0, got {value}", key=attribute.name)


@attrs.frozen
class Batch:
    """Batch policy: send when ``max_size`` events wait or ``interval`` seconds passed."""

    max_size: int = attrs.field(default=512, validator=_positive_int)
    interval: float = attrs.field(default=2.0, validator=_positive_number)


DEFAULT_BATCH = Batch()
#: Items (span events and scores) one exporter's queue holds at most.
DEFAULT_MAX_QUEUE_SIZE = 100_000
#: Estimated bytes one exporter's queue holds at most (128 MiB): with the count
#: bound, it keeps a burst in memory without letting large payloads grow it
#: without limit. See ``docs/exporters.md`` for how the estimate is made.
DEFAULT_MAX_QUEUE_BYTES = 128 * 1024 * 1024
#: Default bound of one exporter's spool directory (256 MiB).
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024

#: The settings every exporter takes, handled by the base class.
COMMON_KEYS = (
    "realtime",
    "log_level",
    "batch",
    "max_queue_size",
    "max_queue_bytes",
    "retry",
    "spool_dir",
    "spool_max_bytes",
    "enabled",
    "sampling",
    "redact",
    "processors",
    "pii",
    "pii_action",
    "delivery",
)
#: Where an exporter's worker runs: threads of the application's process, or a
#: helper process (``obshub._delivery.process``).
DELIVERY_MODES = ("thread", "process")


def check_common_keywords(cls: type[Exporter]) -> None:
    """Raise a `TypeError` saying how to fix an ``__init__`` that drops ``**common``.

    Without it the common keys (``realtime``, ``batch``, ``retry``, ...) and
    ``instance_name`` cannot reach `Exporter.__init__`: every config table would
    fail with an unknown key, and the hub could not name the instance.
    """
    for klass in cls.__mro__:
        if klass is Exporter:
            return
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            raise TypeError(
                f"{klass.__qualname__}.__init__ must accept **common and pass it on: "
                "def __init__(self, *, <your settings>, **common: Any) -> None: "
                "super().__init__(**common)  (the common keys realtime, batch, retry, "
                "log_level, ... and instance_name go through it)"
            )
        return


def check_initialised(exporter: Exporter) -> None:
    """Raise a `TypeError` when an exporter's ``__init__`` did not call ``super().__init__``."""
    if "instance_name" not in vars(exporter) or "log" not in vars(exporter):
        raise TypeError(
            f"{type(exporter).__qualname__}.__init__ did not call super().__init__(**common): "
            "the common settings (instance_name, realtime, batch, retry, log) are missing"
        )


class Exporter:
    """Base class of every exporter.

    Subclasses set ``name`` (the ``type`` users write in a config), take their
    own settings as keyword-only arguments and pass the rest up::

        class WebhookExporter(obshub.Exporter):
            name = "webhook"

            def __init__(self, *, url: str, timeout: float = 5.0, **common: Any) -> None:
                super().__init__(**common)
                self.url = url
                self.timeout = timeout

            def export(self, events: Sequence[obshub.SpanEvent]) -> None:
                ...  # raise obshub.ExportError(..., retryable=True) on a 503

    The same keywords work in code and in a config table, where the hub builds
    the exporter as ``WebhookExporter(**table)``. The common keys, handled
    here, are ``realtime``, ``log_level``, ``batch``, ``max_queue_size``,
    ``max_queue_bytes``, ``retry``, ``spool_dir``, ``spool_max_bytes``,
    ``enabled``, and the controls of what this sink alone receives:
    ``sampling``, ``redact``, ``processors``, ``pii`` and ``pii_action`` (run
    on this exporter's worker, after the config's own), and ``delivery``
    (``"thread"``, or ``"process"`` for a helper process); ``instance_name``
    names the instance (the config table's key; defaults to ``name``).

    ``event_kinds`` says which span events the exporter wants; the default is
    ended spans only. ``self.log`` is a structlog logger bound with
    ``exporter=<instance name>`` and filtered at ``log_level``.
    """

    #: The type users write in a config (``type = "langfuse"``).
    name: ClassVar[str] = ""
    #: Which span events reach `export`.
    event_kinds: ClassVar[frozenset[EventKind]] = frozenset({EventKind.ENDED})
    #: Keys of this exporter's own settings that hold secrets: never echoed.
    secret_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        *,
        instance_name: str | None = None,
        realtime: bool = False,
        log_level: str = "info",
        batch: Batch | Mapping[str, Any] | None = None,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        retry: Retry | Mapping[str, Any] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        enabled: bool = True,
        sampling: Any = None,
        redact: bool | Sequence[str] = False,
        processors: Sequence[Any] = (),
        pii: bool | Sequence[str] | Mapping[str, Any] = False,
        pii_action: str = "mask",
        delivery: str = "thread",
    ) -> None:
        if not isinstance(realtime, bool):
            raise ConfigError(f"must be true or false, got {type_name(realtime)}", "realtime")
        if not isinstance(enabled, bool):
            raise ConfigError(f"must be true or false, got {type_name(enabled)}", "enabled")
        try:
            level = parse_level(log_level)
        except ValueError as exc:
            raise ConfigError(str(exc), "log_level") from None
        if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int):
            raise ConfigError(
                f"must be an integer, got {type_name(max_queue_size)}", "max_queue_size"
            )
        if max_queue_size < 1:
            raise ConfigError(f"must be >= 1, got {max_queue_size}", "max_queue_size")
        if isinstance(max_queue_bytes, bool) or not isinstance(max_queue_bytes, int):
            raise ConfigError(
                f"must be an integer, got {type_name(max_queue_bytes)}", "max_queue_bytes"
            )
        if max_queue_bytes < 65536:
            raise ConfigError(f"must be >= 65536, got {max_queue_bytes}", "max_queue_bytes")
        if delivery not in DELIVERY_MODES:
            raise ConfigError(
                f'must be "thread" or "process", got {delivery!r}'
                if isinstance(delivery, str)
                else f'must be "thread" or "process", got {type_name(delivery)}',
                "delivery",
            )
        #: "thread" (default) or "process": see docs/exporters.md#delivery.
        self.delivery: str = delivery
        self.instance_name: str = instance_name or type(self).name or type(self).__name__.lower()
        self.realtime = realtime
        self.log_level: str = log_level.lower()
        self.batch = _coerce_batch(batch)
        self.max_queue_size = max_queue_size
        self.max_queue_bytes = max_queue_bytes
        self.retry = _coerce_retry(retry)
        if spool_dir is not None and not isinstance(spool_dir, (str, os.PathLike)):
            raise ConfigError(f"must be a path, got {type_name(spool_dir)}", "spool_dir")
        if isinstance(spool_max_bytes, bool) or not isinstance(spool_max_bytes, int):
            raise ConfigError(
                f"must be an integer, got {type_name(spool_max_bytes)}", "spool_max_bytes"
            )
        if spool_max_bytes < 4096:
            raise ConfigError(f"must be >= 4096, got {spool_max_bytes}", "spool_max_bytes")
        self.spool_dir = None if spool_dir is None else os.fspath(spool_dir)
        self.spool_max_bytes = spool_max_bytes
        self.enabled = enabled
        try:
            sampler = Sampler.from_config(sampling)
        except ConfigError as exc:
            raise exc.within("sampling") from None
        #: This exporter's own sampler (None: it takes every trace its config kept).
        self.sampler: Sampler | None = None if sampler.keeps_all else sampler
        #: This exporter's own processors (redact, pii, then ``processors``), run
        #: on its worker on what the config built; names in a config table are
        #: resolved before the exporter is built.
        self.processors: tuple[SpanProcessor, ...] = build_processors(
            redact=redact, pii=pii, pii_action=pii_action, processors=processors
        )
        self.log: Any = exporter_logger(self.instance_name, level)

    # -- the contract ---------------------------------------------------------

    def export(self, events: Sequence[SpanEvent]) -> None:
        """Deliver a batch of span events (possibly empty).

        Raise `ExportError` on failure; ``retryable=True`` asks the
        channel to try the same batch again after a backoff.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement export()")

    def export_scores(self, scores: Sequence[Score]) -> None:
        """Deliver scores. Exporters that do not override this receive none."""
        raise NotImplementedError(f"{type(self).__name__} does not export scores")

    def flush(self) -> None:
        """Push out anything the exporter buffers itself (called by ``hub.flush()``)."""

    def shutdown(self) -> None:
        """Release resources; called once, from the exporter's worker, at hub shutdown."""

    def check(self) -> CheckResult:
        """Test connectivity and credentials, for ``obshub check``.

        Must not raise and must not put secrets in the message.
        """
        return CheckResult(ok=True, message="no connectivity check for this exporter")

    # -- helpers --------------------------------------------------------------

    @classmethod
    def supports_scores(cls) -> bool:
        """True when the class overrides `export_scores`."""
        return cls.export_scores is not Exporter.export_scores

    def __repr__(self) -> str:
        mode = "realtime" if self.realtime else "batch"
        return f"<{type(self).__name__} {self.instance_name!r} {mode}>"


def _coerce_batch(value: Batch | Mapping[str, Any] | None) -> Batch:
    if value is None:
        return DEFAULT_BATCH
    if isinstance(value, Batch):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table, got {type_name(value)}", "batch")
    unknown = sorted(set(value) - {"max_size", "interval"})
    if unknown:
        raise ConfigError("unknown key (expected max_size, interval)", f"batch.{unknown[0]}")
    try:
        return Batch(**value)
    except ConfigError as exc:
        raise exc.within("batch") from None


def _coerce_retry(value: Retry | Mapping[str, Any] | None) -> Retry:
    if value is None:
        return Retry()
    if isinstance(value, Retry):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table, got {type_name(value)}", "retry")
    try:
        return Retry.from_config(value)
    except KeyError as exc:
        raise ConfigError(
            "unknown key (expected max_attempts, initial_backoff, max_backoff, "
            "max_elapsed, jitter, max_retry_after)",
            f"retry.{exc.args[0]}",
        ) from None
    except PolicyError as exc:
        raise ConfigError(exc.problem, f"retry.{exc.key}") from None
