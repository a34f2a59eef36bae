"""A test kit for applications that record with obshub and for plugin authors.

Everything below is imported from ``obshub.testing``; each job lives in its
own module of this package:

- `RecordingExporter`: keeps every event, score and call it receives,
  and can be told to fail; `HubFactory` and `MemoryHub` build
  hubs around it that are always shut down; `reset_rate_limits` makes
  obshub log each recurring warning again.
- Factories for the values exporters receive: `make_span`,
  `make_event`, `make_trace` (a realistic agent trace as a list of
  `SpanEvent`), `make_score`; and `record_trace`,
  which records the same agent trace through a real `Hub`.
- Waiting without sleeps: `wait_for`, `wait_for_events` and
  `wait_for_count`. Every wait raises `TimeoutError` saying what arrived;
  the receivers' ``wait_for_<things>(count, ..., timeout=...)`` methods
  return everything received so far, so ``(request,) = receiver.wait_for_requests(1)``.
- `HttpReceiver`: a local HTTP server on ``127.0.0.1`` that records
  requests and answers as told, for exporters that talk HTTP;
  `unreachable_url` for one that refuses connections.
- `ExporterContract`: the test battery every exporter class must pass.
  Subclass it in a test module::

      from obshub.testing import ExporterContract, unreachable_url
      from obshub_webhook import WebhookExporter

      class TestWebhookContract(ExporterContract):
          exporter_class = WebhookExporter
          config = {"url": "http://127.0.0.1:9/", "headers": {"X-Token": "s3cr3t-token"}}

          def failing_config(self, backend):
              return {"url": unreachable_url()}

  ``docs/plugins.md`` walks through a complete example.

Three modules are for building test peers of your own, imported by name:
`obshub.testing.server` (`LocalServer`, the base of every stand-in, with
fault injection), `obshub.testing.otlp` (decoding what an OTLP receiver got)
and `obshub.testing.net` (a loopback proxy and servers that misbehave).

The pytest fixtures ``obshub_memory``, ``obshub_hub_factory`` and
``obshub_capture_logs`` (module `obshub.pytest_plugin`) are available in
every test once obshub is installed. This package needs pytest.
"""

from __future__ import annotations

from obshub.testing._contract import ExporterContract
from obshub.testing._factories import (
    TRACE_SPANS,
    make_event,
    make_score,
    make_span,
    make_trace,
    record_trace,
)
from obshub.testing._hubs import HubFactory, MemoryHub, make_registry, plugin_for, reset_rate_limits
from obshub.testing._receiver import HttpReceiver, ReceivedRequest, unreachable_url
from obshub.testing._recording import RecordingExporter
from obshub.testing._waiting import DEFAULT_TIMEOUT, wait_for, wait_for_count, wait_for_events

__all__ = [
    "DEFAULT_TIMEOUT",
    "TRACE_SPANS",
    "ExporterContract",
    "HttpReceiver",
    "HubFactory",
    "MemoryHub",
    "ReceivedRequest",
    "RecordingExporter",
    "make_event",
    "make_registry",
    "make_score",
    "make_span",
    "make_trace",
    "plugin_for",
    "record_trace",
    "reset_rate_limits",
    "unreachable_url",
    "wait_for",
    "wait_for_count",
    "wait_for_events",
]
