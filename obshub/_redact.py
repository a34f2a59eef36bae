"""The one place that keeps credentials out of messages, log lines, reprs and CLI output.

- `safe_url` masks the secrets of a URL: the password of its user info (a
  user name alone, which may be a token, is masked whole) and the values of
  query and fragment parameters whose names look secret (``api_key``,
  ``token``, ``sig``, ``password``, ...); the rest stays readable.
- `header_secrets` lists the strings that would give a header value away
  (the value, its token after ``Bearer``/``Basic``, a Basic token decoded
  and its password part).
- `Scrubber` holds the secrets of one exporter or request and removes them
  from any text, on top of what `scrub` does to every text: mask the secrets
  of each URL in it, the values of ``Authorization``-like headers written as
  ``name: value`` or ``name=value``, and ``Bearer`` tokens.

Plugin authors reach `Scrubber` and `safe_url` through `obshub.plugin` (`obshub.http`
re-exports them too).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "Scrubber",
    "header_secrets",
    "is_secret_name",
    "safe_url",
    "scrub",
    "scrub_value",
    "url_secrets",
]

#: What a secret is replaced with.
MASK = "***"
#: Headers whose values are secrets wherever they appear.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "x-auth-token",
    }
)
#: A parameter whose normalised name contains one of these holds a secret.
_SECRET_WORDS = (
    "key",
    "token",
    "secret",
    "sig",
    "pass",
    "pwd",
    "auth",
    "credential",
    "session",
)
#: Known secrets shorter than this are not replaced in free text: a secret of
#: "1" would garble every message holding a digit. URLs and headers are masked
#: by position whatever their length.
MIN_SECRET_LENGTH = 4

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
# A value ends before trailing punctuation: "?token=abc: HTTP 503" keeps its colon.
_PARAM = re.compile(
    r"(?P<lead>[?&;#])(?P<name>[^=&;#\s'\"]+)="
    r"(?P<value>(?:[^&;#\s'\"]*[^&;#\s'\".,:!?)\]}>])?)"
)
_HEADER = re.compile(
    r"(?i)\b(?P<name>" + "|".join(re.escape(h) for h in sorted(SECRET_HEADERS)) + r")\b"
    r"(?P<sep>['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(?P<scheme>basic|bearer|token|digest|negotiate)\s+)?"
    r"(?P<value>[^\s,;'\"}\]]+)"
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer)\s+(?P<value>[A-Za-z0-9._~+/=\-]{8,})")


def is_secret_name(name: str) -> bool:
    """True when a parameter or setting called ``name`` probably holds a secret."""
    normalised = unquote(name).lower().replace("-", "").replace("_", "")
    return any(word in normalised for word in _SECRET_WORDS)


def _mask_params(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if not match["value"] or not is_secret_name(match["name"]):
            return match[0]
        return f"{match['lead']}{match['name']}={MASK}"

    return _PARAM.sub(replace, text)


def _mask_userinfo(netloc: str) -> str:
    if "@" not in netloc:
        return netloc
    userinfo, host = netloc.rsplit("@", 1)
    user, sep, _password = userinfo.partition(":")
    # A user name alone is often the token itself (https://<token>@host).
    masked = f"{user}:{MASK}" if sep and user else MASK
    return f"{masked}@{host}"


def safe_url(url: str) -> str:
    """``url`` fit for messages: its password and secret-looking parameters masked.

    ``https://admin:pw@host/p?api_key=k&region=eu`` →
    ``https://admin:***@host/p?api_key=***&region=eu``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if "@" not in parts.netloc and not parts.query and not parts.fragment:
        return url
    query = _mask_params(f"?{parts.query}")[1:] if parts.query else ""
    fragment = _mask_params(f"#{parts.fragment}")[1:] if parts.fragment else ""
    return urlunsplit((parts.scheme, _mask_userinfo(parts.netloc), parts.path, query, fragment))


def url_secrets(url: str) -> list[str]:
    """The secret strings of ``url``: user info, and secret-looking parameter values.

    Each is given as written and percent-decoded, so a message that quotes
    either form can be scrubbed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, sep, password = userinfo.partition(":")
        found.extend([password, unquote(password)] if sep else [user, unquote(user)])
    for text in (parts.query, parts.fragment):
        for match in _PARAM.finditer(f"?{text}"):
            if match["value"] and is_secret_name(match["name"]):
                found.extend([match["value"], unquote(match["value"])])
    return [s for s in found if s]


def header_secrets(
    headers: Mapping[str, str],
    secret_headers: Iterable[str] = (),
    *,
    all_headers: bool = False,
) -> list[str]:
    """The strings that would give away the values of ``headers`` that are secret.

    Secret are the headers of `SECRET_HEADERS` and those named in
    ``secret_headers`` (any case), or all of them with ``all_headers``. For
    each: the value, the token after its scheme (``Bearer x`` → ``x``), and
    for Basic auth the decoded ``user:password`` and the password.
    """
    names = SECRET_HEADERS | {n.lower() for n in secret_headers}
    found: list[str] = []
    for name, value in headers.items():
        value = value.strip()
        if not value or not (all_headers or name.lower() in names):
            continue
        found.append(value)
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if not token:
            continue
        found.append(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
            found.append(decoded)
            found.append(decoded.partition(":")[2])
    return [s for s in found if s]


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with ``secrets`` replaced by ``***``, and URL and header secrets masked.

    Every URL in ``text`` goes through `safe_url`; the values of
    ``Authorization``-like headers (``authorization: Basic ...``,
    ``x-api-key=...``) and ``Bearer`` tokens are masked. Known ``secrets``
    shorter than four characters are left to those rules.
    """
    ordered = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    # Longest first, so a secret inside a longer one is not half-replaced.
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _URL.sub(_safe_url_in_text, text)
    if "=" in text:
        # A path and query quoted without its scheme and host (``url: /p?token=x``).
        text = _mask_params(text)
    text = _HEADER.sub(_masked_header, text)
    return _BEARER.sub(lambda m: f"{m['scheme']} {MASK}", text)


def _safe_url_in_text(match: re.Match[str]) -> str:
    url = match[0]
    # Punctuation after a URL in a sentence ("...: HTTP 503", "(see URL).") is no part of it.
    stripped = url.rstrip(".,;:!?)]}>")
    return safe_url(stripped) + url[len(stripped) :]


def _masked_header(match: re.Match[str]) -> str:
    scheme = f"{match['scheme']} " if match["scheme"] else ""
    return f"{match['name']}{match['sep']}{scheme}{MASK}"


class Scrubber:
    """The secrets of one exporter (or request), and a call that removes them from text.

    ``Scrubber(urls=[base_url], headers=headers, values=[api_key])`` gathers
    the secrets of the URLs (`url_secrets`), of the secret headers
    (`header_secrets`: `SECRET_HEADERS` plus ``secret_headers``;
    ``all_headers=True`` treats every header as secret)
    and the given ``values``; ``scrubber(text)`` is `scrub` with them.
    """

    __slots__ = ("_secrets",)

    def __init__(
        self,
        *,
        urls: Iterable[str | None] = (),
        headers: Mapping[str, str] | None = None,
        secret_headers: Iterable[str] = (),
        all_headers: bool = False,
        values: Iterable[str | None] = (),
    ) -> None:
        found: set[str] = {v for v in values if v}
        for url in urls:
            if url:
                found.update(url_secrets(url))
        if headers:
            found.update(header_secrets(headers, secret_headers, all_headers=all_headers))
        self._secrets = tuple(sorted(found, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """``text`` without any of the secrets (see `scrub`)."""
        return scrub(text, self._secrets)

    def __repr__(self) -> str:
        return f"<Scrubber {len(self._secrets)} secrets>"


def scrub_value(value: object, scrubber: Scrubber | None = None) -> object:
    """``value`` with every string in it scrubbed (dicts, lists and tuples walked)."""
    clean = scrubber if scrubber is not None else scrub
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, Mapping):
        return {k: scrub_value(v, scrubber) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(scrub_value(v, scrubber) for v in value)
    if isinstance(value, list):
        return [scrub_value(v, scrubber) for v in value]
    return value
