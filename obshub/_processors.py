"""Span processors: transform or drop span snapshots before exporters see them.

Processors run on the exporter worker thread. Those of a config run once per
event (the result is shared by every exporter of the config); those of an
exporter run on that exporter's worker, on the shared result, and give that
exporter alone a new span (`attrs.evolve`): the shared values are never changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from obshub._config_errors import ConfigError
from obshub._frozen import freeze, frozen_dict, frozen_list
from obshub._pii import ACTIONS, PiiMasker
from obshub.media import MediaValue
from obshub.spans import Span

__all__ = [
    "BUILTIN_SECRET_KEYS",
    "REDACTED",
    "Redactor",
    "SpanProcessor",
    "build_processors",
    "normalize_key",
    "resolve_processors",
]

#: What replaces a redacted value.
REDACTED = "[REDACTED]"

#: Key names treated as secrets when ``redact = true`` (compared normalised:
#: lowercase, letters and digits only; a key matches when its normalised form
#: ends with one of these, so ``OPENAI_API_KEY`` and ``x-api-key`` match ``apikey``).
BUILTIN_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "secretkey",
    "clientsecret",
    "apikey",
    "accesskey",
    "privatekey",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "sessiontoken",
    "authtoken",
    "bearer",
    "authorization",
    "auth",
    "cookie",
    "setcookie",
    "credentials",
    "credential",
    "signature",
    "ssn",
    "creditcard",
    "cardnumber",
    "cvv",
)

# Values that look like credentials whatever their key: bearer tokens, OpenAI /
# Anthropic style keys, Langfuse keys, AWS access key ids, JWTs.
_SECRET_VALUE = re.compile(
    r"(?:\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|pk|rk)-(?:lf-|ant-|proj-)?[A-Za-z0-9_-]{16,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)

_NON_ALNUM = re.compile(r"[^a-z0-9]")


def normalize_key(key: str) -> str:
    """Lowercase letters and digits only: ``X-Api-Key`` → ``xapikey``."""
    return _NON_ALNUM.sub("", key.lower())


@runtime_checkable
class SpanProcessor(Protocol):
    """Transforms a snapshot; returning None drops the event."""

    def process(self, span: Span) -> Span | None: ...


@attrs.frozen
class Redactor:
    """Replaces secrets in input, output, metadata and attributes with ``[REDACTED]``.

    ``keys`` are matched on normalised key names at any depth; with
    ``builtin=True`` the `BUILTIN_SECRET_KEYS` are added; with
    ``values=True`` strings that look like credentials (bearer tokens, API keys,
    JWTs) are masked wherever they appear.
    """

    keys: tuple[str, ...] = ()
    builtin: bool = True
    values: bool = True
    _suffixes: tuple[str, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        names = {normalize_key(k) for k in self.keys}
        if self.builtin:
            names.update(BUILTIN_SECRET_KEYS)
        object.__setattr__(self, "_suffixes", tuple(sorted(n for n in names if n)))

    @classmethod
    def from_config(cls, value: bool | Iterable[str]) -> Redactor | None:
        """``true`` → the built-in list; a list → the built-in list plus those keys."""
        if value is False:
            return None
        if value is True:
            return cls()
        return cls(keys=tuple(str(k) for k in value))

    def is_secret_key(self, key: str) -> bool:
        """True when ``key`` names a secret."""
        return normalize_key(key).endswith(self._suffixes)

    def process(self, span: Span) -> Span:
        """The span with secrets replaced.

        Keys are checked in input, output, metadata, attributes (and the
        trace's, carried by every span) and parameters (frameworks pass
        ``api_key`` among model parameters); credential-looking values are also
        masked in the status message and the error.
        """
        error = span.error
        if error is not None and self.values:
            error = attrs.evolve(
                error,
                message=self._clean(error.message),
                stack=None if error.stack is None else self._clean(error.stack),
            )
        return attrs.evolve(
            span,
            input=self._clean(span.input),
            output=self._clean(span.output),
            metadata=self._clean(span.metadata),
            attributes=self._clean(span.attributes),
            trace_metadata=self._clean(span.trace_metadata),
            trace_attributes=self._clean(span.trace_attributes),
            parameters=self._clean(span.parameters),
            status_message=self._clean(span.status_message),
            error=error,
        )

    def _clean(self, value: Any) -> Any:
        # Builds read-only containers directly, as span snapshots hold them.
        if isinstance(value, Mapping):
            return frozen_dict(
                {
                    k: REDACTED if isinstance(k, str) and self.is_secret_key(k) else self._clean(v)
                    for k, v in value.items()
                }
            )
        if isinstance(value, list):
            return frozen_list([self._clean(v) for v in value])
        if isinstance(value, MediaValue):
            return value  # binary content: no text to mask (a secret key still redacts it)
        if isinstance(value, str) and self.values:
            return _SECRET_VALUE.sub(REDACTED, value)
        return freeze(value)


#: Looks up a factory registered by a plugin under a name (or None).
Lookup = Callable[[str], Callable[..., Any] | None]


def resolve_processors(value: Any, named: Lookup | None = None) -> list[SpanProcessor]:
    """The ``processors`` key: processors, names, or ``{type = "name", option = ...}`` tables.

    Names and tables are looked up in the factories plugins registered
    (``obshub_register_processors``); objects with a ``process`` method pass as they are.
    """
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
        value = [value]
    found: list[SpanProcessor] = []
    for index, item in enumerate(value):
        if isinstance(item, SpanProcessor):
            found.append(item)
            continue
        if isinstance(item, str):
            type_name, options = item, {}
        elif isinstance(item, Mapping) and isinstance(item.get("type"), str):
            options = dict(item)
            type_name = options.pop("type")
        else:
            raise ConfigError(
                "must be a processor (an object with process(span)), a name, "
                f'or a table with type = "name", got {type(item).__name__}',
                f"[{index}]",
            )
        factory = None if named is None else named(type_name)
        if factory is None:
            raise ConfigError(
                f"unknown processor {type_name!r} (no plugin registered one under that name)",
                f"[{index}]",
            )
        try:
            processor = factory(**options)
        except ConfigError as exc:
            raise exc.within(f"[{index}]") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"invalid settings for processor {type_name!r}: {exc}", f"[{index}]"
            ) from None
        if not isinstance(processor, SpanProcessor):
            raise ConfigError(f"processor {type_name!r} has no process(span) method", f"[{index}]")
        found.append(processor)
    return found


def build_processors(
    *,
    redact: Any = False,
    pii: Any = None,
    pii_action: Any = "mask",
    processors: Any = None,
    named: Lookup | None = None,
) -> tuple[SpanProcessor, ...]:
    """The processors of a config or an exporter, in the order they run.

    The `Redactor` (``redact``) first, then the `PiiMasker` (``pii`` and
    ``pii_action``), then ``processors``. Raises `ConfigError` naming the key.
    """
    chain: list[SpanProcessor] = []
    if isinstance(redact, bool) or (
        isinstance(redact, (list, tuple)) and all(isinstance(k, str) for k in redact)
    ):
        redactor = Redactor.from_config(redact if isinstance(redact, bool) else list(redact))
        if redactor is not None:
            chain.append(redactor)
    else:
        raise ConfigError("must be true, false or a list of key names", "redact")
    if pii_action not in ACTIONS:
        raise ConfigError(f"must be one of {', '.join(ACTIONS)}, got {pii_action!r}", "pii_action")
    masker = PiiMasker.from_config(pii, pii_action)
    if masker is not None:
        chain.append(masker)
    try:
        chain.extend(resolve_processors(processors, named))
    except ConfigError as exc:
        raise exc.within("processors") from None
    return tuple(chain)
