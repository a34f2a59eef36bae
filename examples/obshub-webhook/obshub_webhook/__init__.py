"""obshub-webhook: POST each batch of finished spans as JSON to a URL.

Installing the distribution is enough: obshub finds this module through the
``obshub`` entry-point group, and a config names the exporter with
``type = "webhook"``. In code::

    from obshub_webhook import WebhookExporter

    hub = obshub.Hub(exporters=[WebhookExporter(url="https://example.com/hook")])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import obshub
from obshub import http
from obshub.plugin import (
    Scrubber,
    distribution_version,
    positive_seconds,
    safe_url,
    scrubbed_error,
)

__all__ = ["WebhookExporter", "__version__", "obshub_register_exporters"]

__version__ = distribution_version("obshub-webhook")


class WebhookExporter(obshub.Exporter):
    """POSTs each batch of finished spans, and each batch of scores, as JSON to ``url``.

    Settings: ``url`` (required), ``headers`` (sent with every request, e.g.
    ``Authorization``; secret: never logged), ``timeout`` (a deadline per
    request, in seconds, default 5) and ``proxy`` (default: ``HTTPS_PROXY`` /
    ``HTTP_PROXY`` / ``NO_PROXY`` from the environment; ``""``: none).
    """

    name: ClassVar[str] = "webhook"
    secret_keys: ClassVar[frozenset[str]] = frozenset({"headers"})

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        proxy: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise obshub.ConfigError("must be an http:// or https:// URL", "url")
        self.timeout = positive_seconds(timeout, "timeout")
        headers = dict(headers or {})
        for header, value in headers.items():
            if not isinstance(value, str):
                # The value is not echoed: it may be a secret.
                raise obshub.ConfigError("must be a string", f"headers.{header}")
        self.url = url
        self.proxy = http.proxy_setting(proxy)
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": http.user_agent(f"obshub-webhook/{__version__}"),
            **headers,
        }
        # Any header may carry a token, and so may the URL and the proxy's URL.
        self._scrub = Scrubber(urls=[url, self.proxy], headers=headers, all_headers=True)

    def __repr__(self) -> str:
        mode = "realtime" if self.realtime else "batch"
        return f"<WebhookExporter {self.instance_name!r} {mode} url={safe_url(self.url)!r}>"

    def export(self, events: Sequence[obshub.SpanEvent]) -> None:
        """POST ``{"events": [...]}``: one JSON record per finished span."""
        if events:
            self._post({"events": [event.to_dict() for event in events]})

    def export_scores(self, scores: Sequence[obshub.Score]) -> None:
        """POST ``{"scores": [...]}``."""
        if scores:
            self._post({"scores": [score.to_dict() for score in scores]})

    def _post(self, payload: Mapping[str, Any]) -> http.Response:
        # ASCII JSON: text that has no UTF-8 form (a lone surrogate) travels escaped.
        body = json.dumps(payload, separators=(",", ":")).encode("ascii")
        try:
            return http.post(self.url, body, self._headers, timeout=self.timeout, proxy=self.proxy)
        except obshub.ExportError as exc:
            # Keeps ``retryable`` and ``retry_after``: the hub retries 429, 5xx and timeouts.
            raise scrubbed_error(exc, self._scrub) from None

    def check(self) -> obshub.CheckResult:
        """POST an empty batch: is the URL reachable, and are the headers accepted?"""
        try:
            response = self._post({"events": []})
        except obshub.ExportError as exc:
            return obshub.CheckResult(ok=False, message=str(exc))
        return obshub.CheckResult(
            ok=True,
            message=f"{safe_url(self.url)} answered HTTP {response.status}",
            latency_ms=round(response.elapsed * 1000, 1),
        )


@obshub.hookimpl
def obshub_register_exporters(register: Callable[[type[obshub.Exporter]], None]) -> None:
    """Register the ``webhook`` exporter type."""
    register(WebhookExporter)
