"""Delivery: from a queued span to the exporter, and to disk when the backend fails.

One `Channel` per exporter instance, built from small parts, each in its own
module:

- `channel` — the bounded queue and its threads (worker, spill, replay);
- `sender` — sending one batch as the policy decides;
- `policy` — the pure decision after a failed attempt (retry, pause, isolate,
  give up);
- `keep` — what could not be delivered: the spool, the dead-letter file, or a
  counted loss;
- `spool` — the on-disk segments;
- `replay` — sending the spool again;
- `stats` — counters and what ``hub.stats()`` / ``hub.flush()`` report.
"""

from __future__ import annotations

from obshub._delivery.channel import Channel
from obshub._delivery.stats import ChannelStats, ExporterFlush, FlushResult

__all__ = ["Channel", "ChannelStats", "ExporterFlush", "FlushResult"]
