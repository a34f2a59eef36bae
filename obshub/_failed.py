"""Exporters whose constructor raised: disabled and reported, while the rest of the hub runs.

A configuration mistake (`ConfigError`, and the ``TypeError`` /
``ValueError`` an exporter raises for settings it cannot take) still stops
``Hub.from_config`` with the full key path: it is the user's to fix, and
finding it at start-up is the point of validating up front. Anything else an
exporter's ``__init__`` raises is the plugin's problem, not the application's:
the hub puts a `FailedExporter` in its place. It has no channel (nothing is
queued for it), ``obshub check`` reports it as failed with the reason,
``hub.stats()`` shows it as a `ChannelStats` entry with ``state="disabled"``, and one
``exporter_start_failed`` log event carries the traceback. Secret settings of
the exporter never appear in the reason, the log event or the traceback text.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from obshub._delivery import ChannelStats
from obshub._exporters import CheckResult, Exporter, ExportError
from obshub._logging import get_logger
from obshub._redact import is_secret_name, scrub, url_secrets
from obshub._serialization import describe
from obshub.spans import SpanEvent

__all__ = ["ExporterStartError", "FailedExporter", "StartFailure"]

_log = get_logger()


@attrs.frozen
class StartFailure:
    """Why an exporter is disabled: its constructor raised.

    ``key`` is the config key path of its table (``configs.prod.exporters.lf``),
    ``type`` the exporter type, ``error`` the exception's type and message,
    ``traceback`` the formatted traceback (both with secret settings masked).
    """

    key: str
    type: str
    error: str
    traceback: str


class ExporterStartError(Exception):
    """Stands in, in the log event, for an exception whose text held a secret setting."""


class FailedExporter(Exporter):
    """Takes the place of an exporter whose ``__init__`` raised; always disabled.

    ``failure`` says what happened (`StartFailure`). The hub gives it no
    channel; ``check()`` reports the failure; ``export()`` refuses.
    """

    #: Not a type users can write: failed exporters are made by the hub only.
    name: ClassVar[str] = ""

    def __init__(self, *, instance_name: str, failure: StartFailure) -> None:
        super().__init__(instance_name=instance_name, enabled=False)
        self.failure = failure

    @property
    def type_name(self) -> str:
        """The type of the exporter that failed to start."""
        return self.failure.type

    @property
    def reason(self) -> str:
        """``failed to start: <error>``."""
        return f"failed to start: {self.failure.error}"

    def export(self, events: Sequence[SpanEvent]) -> None:
        raise ExportError(f"exporter {self.instance_name!r} is disabled: {self.reason}")

    def check(self) -> CheckResult:
        return CheckResult(
            ok=False,
            message=f"disabled, {self.reason} (at {self.failure.key}; the log event "
            "exporter_start_failed has the traceback)",
            details={"state": "disabled", "key": self.failure.key, "type": self.failure.type},
        )

    def stats(self, config_name: str) -> ChannelStats:
        """Its entry in ``hub.stats()``: zero counters, state ``disabled`` and the reason."""
        return ChannelStats(
            config=config_name,
            exporter=self.instance_name,
            type=self.failure.type,
            realtime=self.realtime,
            queued=0,
            exported=0,
            dropped=0,
            retried=0,
            failed=0,
            state="disabled",
            reason=self.reason,
        )

    def __repr__(self) -> str:
        return (
            f"<FailedExporter {self.instance_name!r} type={self.failure.type!r} "
            f"disabled: {self.failure.error.split(':', 1)[0]}>"
        )


def exporter_failed(
    instance_name: str,
    type_name: str,
    key: str,
    exc: BaseException,
    settings: Mapping[str, Any],
    secret_keys: Collection[str] = (),
) -> FailedExporter:
    """Log ``exc`` once (``exporter_start_failed``) and return the exporter's stand-in.

    ``settings`` are the exporter's config table: the string values of its
    secret settings (``secret_keys``, and keys named like secrets) and the
    passwords of URLs in it are masked in everything reported.
    """
    secrets = set(_secret_values(settings, secret_keys))

    def mask(text: str) -> str:
        return scrub(text, secrets)

    raw_error = describe(exc)
    raw_traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    error, formatted = mask(raw_error), mask(raw_traceback)
    logged: BaseException = exc
    if formatted != raw_traceback:
        # The exception's text (or one it was chained to) held a secret: log a
        # stand-in with the masked text and the same frames instead.
        logged = ExporterStartError(error).with_traceback(exc.__traceback__)
    failure = StartFailure(key=key, type=type_name, error=error, traceback=formatted)
    with contextlib.suppress(Exception):  # a broken log pipeline must not stop the hub either
        _log.error(
            "exporter_start_failed",
            exporter=instance_name,
            type=type_name,
            key=key,
            error=error,
            state="disabled",
            exc_info=logged,
        )
    return FailedExporter(instance_name=instance_name, failure=failure)


def _secret_values(value: Any, secret_keys: Collection[str], secret: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        if secret:
            yield value
        if "://" in value:
            yield from url_secrets(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            named = isinstance(key, str) and (key in secret_keys or is_secret_name(key))
            yield from _secret_values(item, secret_keys, secret or named)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secret_values(item, secret_keys, secret)
