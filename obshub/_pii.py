"""PII masking: personal data found in free text, masked, hashed or dropped on the worker.

`PiiMasker` is a span processor. It looks at every string at any depth of a
span's input, output, metadata, attributes (the trace's too), parameters,
status message and error, and finds:

- ``email``: e-mail addresses;
- ``phone``: phone numbers (9 to 15 digits, international ``+`` form or
  groups of digits separated by spaces, dots, dashes or parentheses);
- ``card``: payment card numbers (13 to 19 digits, Luhn-checked);
- ``iban``: IBANs (checked with their mod-97 check digits);
- ``ip``: IPv4 and IPv6 addresses;
- ``secret``: API keys and tokens (bearer tokens, ``sk-``/``pk-`` keys, AWS
  access key ids, JWTs, GitHub, Slack, Google and Stripe keys).

Each detector has an action: ``mask`` (``[EMAIL]``), ``hash`` (``[EMAIL:…]``,
a keyed hash of the normalised value with a salt, so the same address gives
the same token in every span and process that share the salt, and can be
joined on without being readable) or ``drop`` (the whole string holding it is
replaced with ``[DROPPED]``). What it writes holds nothing a detector finds,
so masking twice changes nothing (idempotent).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from obshub._config_errors import ConfigError
from obshub._frozen import freeze, frozen_dict, frozen_list
from obshub.media import MediaValue
from obshub.spans import Span

__all__ = ["ACTIONS", "DETECTORS", "DROPPED", "PII_SALT_ENV_VAR", "PiiMasker"]

#: The detectors, in the order their passes run.
DETECTORS = ("secret", "email", "iban", "card", "ip", "phone")
#: What a detector may do with what it found.
ACTIONS = ("mask", "hash", "drop")
#: What replaces a string holding PII under the ``drop`` action.
DROPPED = "[DROPPED]"
#: The environment variable a hashing masker takes its salt from when none is given.
PII_SALT_ENV_VAR = "OBSHUB_PII_SALT"

#: API keys and tokens: bearer tokens, OpenAI / Anthropic / Langfuse style keys,
#: Stripe keys, AWS access key ids, GitHub and Slack tokens, Google API keys, JWTs.
_SECRET = re.compile(
    r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:sk|pk|rk)-(?:lf-|ant-|proj-)?[A-Za-z0-9_-]{16,}"
    r"|\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{30,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
# An e-mail address is looked for around each "@" (a pattern that starts with
# a character class would be tried at every position of the text).
_EMAIL_LOCAL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+\Z")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# A run of digits and the separators phone and card numbers and IPv4 addresses
# are written with; what it is, if anything, is decided in Python.
_NUMBER = re.compile(r"[+(\d][\d ().-]{5,40}\d")
_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
_IPV4_IN = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_CARD = re.compile(r"\d(?:[ -]?\d){12,18}")
_PHONE = re.compile(
    r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,5}\Z|\+\d{9,15}\Z"
)
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{2,44}")


class _State:
    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped = False


# Text shorter than this cannot hold anything a detector finds (``a@b.io``, 1.1.1.1).
_MIN_LENGTH = 6
_HASH_LETTERS = "abcdefghijklmnop"


_SECRET_PREFIXES = (
    "Bearer",
    "sk-",
    "pk-",
    "rk-",
    "sk_",
    "pk_",
    "rk_",
    "AKIA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "AIza",
    "eyJ",
)


def _has_digit(text: str) -> bool:
    return any(d in text for d in "0123456789")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _phone_ok(text: str) -> bool:
    return 9 <= len(_digits(text)) <= 15


def _normalised(kind: str, text: str) -> str:
    """The form a value is hashed in: the same value written differently hashes the same."""
    if kind in ("card", "phone"):
        return (
            _digits(text)
            if kind == "card"
            else ("+" if text.startswith("+") else "") + _digits(text)
        )
    if kind == "iban":
        return text.replace(" ", "").upper()
    if kind == "email":
        return text.lower()
    if kind == "ip":
        return str(ipaddress.ip_address(text))
    return text


def _parse_actions(
    detectors: bool | Iterable[str] | Mapping[str, str], action: str
) -> dict[str, str]:
    if action not in ACTIONS:
        raise ConfigError(f"must be one of {', '.join(ACTIONS)}, got {action!r}", "pii_action")
    if detectors is True:
        return dict.fromkeys(DETECTORS, action)
    if detectors is False:
        return {}
    if isinstance(detectors, Mapping):
        chosen: dict[str, str] = {}
        for name, value in detectors.items():
            if name not in DETECTORS:
                raise ConfigError(
                    f"unknown detector (expected one of: {', '.join(DETECTORS)})", name
                )
            if value is True:
                value = action
            if value not in ACTIONS:
                raise ConfigError(
                    f"must be true or one of {', '.join(ACTIONS)}, got {value!r}", name
                )
            chosen[name] = value
        return chosen
    if isinstance(detectors, str):
        detectors = [detectors]
    chosen = {}
    for name in detectors:
        if not isinstance(name, str) or name not in DETECTORS:
            raise ConfigError(
                f"unknown detector {name!r} (expected one of: {', '.join(DETECTORS)})"
            )
        chosen[name] = action
    return chosen


@attrs.frozen
class PiiMasker:
    """Masks, hashes or drops personal data in a span's free text (a span processor).

    ``detectors`` is ``True`` (all of `DETECTORS`), a list of detector names,
    or a mapping of detector name to action (``{"email": "hash", "card":
    "mask"}``); ``action`` applies to the detectors given without one.
    ``salt`` keys the ``hash`` action; without one, ``$OBSHUB_PII_SALT`` is
    read, and a hashing masker without either is a `ConfigError` (an unsalted
    hash of a phone number is easy to reverse).
    """

    detectors: Any = attrs.field(default=True, eq=False)
    action: str = attrs.field(default="mask", eq=False)
    salt: str | None = attrs.field(default=None, repr=False)
    actions: Mapping[str, str] = attrs.field(init=False)
    _key: bytes = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        actions = _parse_actions(self.detectors, self.action)
        salt = self.salt if self.salt is not None else os.environ.get(PII_SALT_ENV_VAR)
        if "hash" in actions.values() and not salt:
            raise ConfigError(
                f"the hash action needs a salt (pii salt, or ${PII_SALT_ENV_VAR})", "pii_action"
            )
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "_key", (salt or "").encode("utf-8"))

    @classmethod
    def from_config(cls, pii: Any, action: Any = "mask") -> PiiMasker | None:
        """From the ``pii`` and ``pii_action`` keys; None when ``pii`` is false or absent.

        ``pii`` is ``true``, a list of detector names, or a table of detector
        name to action, which may also hold ``salt``.
        """
        if pii is None or pii is False:
            return None
        if not isinstance(action, str):
            raise ConfigError(f"must be a string, got {type(action).__name__}", "pii_action")
        salt: str | None = None
        if isinstance(pii, Mapping):
            pii = dict(pii)
            raw_salt = pii.pop("salt", None)
            if raw_salt is not None and not isinstance(raw_salt, str):
                raise ConfigError("must be a string", "pii.salt")
            salt = raw_salt
        elif not (pii is True or (isinstance(pii, (list, tuple)))):
            raise ConfigError(
                "must be true, a list of detectors or a table of detector = action", "pii"
            )
        try:
            return cls(detectors=pii, action=action, salt=salt)
        except ConfigError as exc:
            if exc.key in (None, "pii_action"):
                raise
            raise exc.within("pii") from None

    # -- processing (worker thread) ------------------------------------------------

    def process(self, span: Span) -> Span:
        """The span with the personal data of its free text masked (a new span)."""
        if not self.actions:
            return span
        clean = self._clean
        error = span.error
        if error is not None:
            error = attrs.evolve(
                error,
                message=self.text(error.message),
                stack=None if error.stack is None else self.text(error.stack),
            )
        return attrs.evolve(
            span,
            input=clean(span.input),
            output=clean(span.output),
            metadata=clean(span.metadata),
            attributes=clean(span.attributes),
            trace_metadata=clean(span.trace_metadata),
            trace_attributes=clean(span.trace_attributes),
            parameters=clean(span.parameters),
            status_message=None if span.status_message is None else self.text(span.status_message),
            error=error,
        )

    def text(self, value: str) -> str:
        """``value`` with what the detectors find masked, hashed, or dropped whole."""
        actions = self.actions
        if not actions or len(value) < _MIN_LENGTH:
            return value
        state = _State()
        # One pass per family of detectors, each only when the text holds its
        # telltale characters (prose without digits, "@" or a key prefix is not
        # scanned at all). What a pass writes holds nothing a later one finds.
        if "secret" in actions and any(p in value for p in _SECRET_PREFIXES):
            value = _SECRET.sub(lambda m: self._replace("secret", m[0], state), value)
        if "email" in actions and "@" in value:
            value = self._emails(value, state)
        if "iban" in actions and _has_digit(value):
            value = _IBAN.sub(lambda m: self._iban(m[0], state), value)
        if "ip" in actions and value.count(":") >= 2:
            value = _IPV6.sub(lambda m: self._ipv6(m, state), value)
        if _has_digit(value) and ("card" in actions or "phone" in actions or "ip" in actions):
            value = _NUMBER.sub(lambda m: self._number(m, state), value)
        return DROPPED if state.dropped else value

    def _replace(self, kind: str, found: str, state: _State) -> str:
        action = self.actions[kind]
        if action == "drop":
            state.dropped = True
            return found
        if action == "hash":
            return f"[{kind.upper()}:{self._hash(kind, found)}]"
        return f"[{kind.upper()}]"

    def _emails(self, value: str, state: _State) -> str:
        parts: list[str] = []
        done = 0
        at = value.find("@")
        while at != -1:
            local = _EMAIL_LOCAL.search(value, max(done, at - 64), at)
            domain = _EMAIL_DOMAIN.match(value, at + 1)
            if local is not None and domain is not None:
                start, end = local.start(), domain.end()
                parts.append(value[done:start])
                parts.append(self._replace("email", value[start:end], state))
                done = end
            at = value.find("@", max(at + 1, done))
        parts.append(value[done:])
        return "".join(parts)

    def _iban(self, found: str, state: _State) -> str:
        return self._replace("iban", found, state) if _iban_ok(found) else found

    def _number(self, match: re.Match[str], state: _State) -> str:
        found = match[0]
        text = match.string
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if before.isalnum() or before in "_+." or after.isalnum() or after in "_:":
            return found
        actions = self.actions
        if "ip" in actions and _IPV4.fullmatch(found) and _ip_ok(found):
            return self._replace("ip", found, state)
        if "card" in actions and _CARD.fullmatch(found) and _luhn(_digits(found)):
            return self._replace("card", found, state)
        if "phone" in actions and _PHONE.match(found) and _phone_ok(found):
            return self._replace("phone", found, state)
        if "ip" in actions and "." in found:
            # An address run together with other numbers ("10.0.0.1 2024").
            return _IPV4_IN.sub(lambda m: self._ipv4(m[0], state), found)
        return found

    def _ipv4(self, found: str, state: _State) -> str:
        return self._replace("ip", found, state) if _ip_ok(found) else found

    def _ipv6(self, match: re.Match[str], state: _State) -> str:
        found = match[0]
        text = match.string
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end()] if match.end() < len(text) else " "
        if before.isalnum() or before in "_:" or after.isalnum() or after in "_:":
            return found
        address = found.rstrip(".")  # the end of a sentence
        if address.count(":") < 2 or not _ip_ok(address):
            return found
        return self._replace("ip", address, state) + found[len(address) :]

    def _hash(self, kind: str, found: str) -> str:
        digest = hmac.new(self._key, _normalised(kind, found).encode("utf-8"), hashlib.sha256)
        # Letters only: a hash token holds nothing a detector would find again.
        return "".join(_HASH_LETTERS[b >> 4] + _HASH_LETTERS[b & 15] for b in digest.digest()[:6])

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return frozen_dict({k: self._clean(v) for k, v in value.items()})
        if isinstance(value, list):
            return frozen_list([self._clean(v) for v in value])
        if isinstance(value, MediaValue):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
            text = str(value)
            masked = self.text(text)
            return value if masked == text else masked
        return freeze(value)
