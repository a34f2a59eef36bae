"""obshub scores as Langfuse's ``CreateScoreRequest`` (``POST /api/public/scores``).

Every field of the request is reachable. The backend-neutral ones come from
`obshub.Score` (name, value, data type, trace/span/session, comment,
metadata, id); the Langfuse-only ones from the score's
``backend_fields["langfuse"]``, best built with `score_fields`::

    from obshub_langfuse import score_fields

    hub.score(name="correctness", value=1, backend_fields=score_fields(config_id="cfg-1"))
    hub.score(name="run-accuracy", value=0.93,
              backend_fields=score_fields(dataset_run_id=run_id))

The request has no time field: the moment the score was recorded goes into
its metadata as ``recorded_at`` (ISO 8601, UTC), unless the metadata already
has that key.

Langfuse takes exactly one target: a trace (optionally one observation), a
session, or a dataset run. ``dataset_run_id`` wins over the others (a score
recorded inside a span still scores the run), and a trace over a session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from obshub.spans import Score, ScoreDataType, ns_to_iso

__all__ = [
    "LANGFUSE_FIELDS",
    "MAX_TEXT_LENGTH",
    "SCORE_SOURCES",
    "InvalidScore",
    "score_body",
    "score_fields",
]

#: The keys `score_fields` puts under ``backend_fields["langfuse"]``, and the
#: ``CreateScoreRequest`` field each becomes.
LANGFUSE_FIELDS: Mapping[str, str] = {
    "config_id": "configId",
    "queue_id": "queueId",
    "dataset_run_id": "datasetRunId",
    "source": "source",
}
#: ``source`` values the create endpoint accepts (EVAL is Langfuse's own).
SCORE_SOURCES = ("API", "ANNOTATION")
#: Langfuse keeps TEXT scores of 1 to 500 characters.
MAX_TEXT_LENGTH = 500
#: The metadata key that holds when the score was recorded.
RECORDED_AT = "recorded_at"


class InvalidScore(ValueError):
    """A score Langfuse would refuse; the message says why."""


def score_fields(
    *,
    config_id: str | None = None,
    queue_id: str | None = None,
    dataset_run_id: str | None = None,
    source: str | None = None,
) -> dict[str, dict[str, str]]:
    """``backend_fields`` for `obshub.Hub.score` with Langfuse's own score fields.

    - ``config_id``: the score config the score follows (Langfuse then checks
      the value against it);
    - ``queue_id``: the annotation queue the score belongs to;
    - ``dataset_run_id``: score a dataset run (experiment) instead of a trace;
    - ``source``: ``"API"`` (Langfuse's default) or ``"ANNOTATION"`` (a
      prefilled score for a reviewer; needs ``config_id`` unless the data type
      is CORRECTION).

    Raises ValueError for a value that is no non-empty string or an unknown source.
    """
    given = {
        "config_id": config_id,
        "queue_id": queue_id,
        "dataset_run_id": dataset_run_id,
        "source": source,
    }
    fields: dict[str, str] = {}
    for key, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key} must be a non-empty string")
        fields[key] = value.strip()
    if "source" in fields:
        fields["source"] = fields["source"].upper()
        if fields["source"] not in SCORE_SOURCES:
            raise ValueError(f"source must be one of {', '.join(SCORE_SOURCES)}")
    return {"langfuse": fields}


def _value(score: Score) -> tuple[float | str, str | None]:
    """The value as Langfuse takes it, and a truncation note (if it was cut)."""
    value = score.value
    kind = score.data_type
    if kind is ScoreDataType.CATEGORICAL or kind is ScoreDataType.CORRECTION:
        return str(value), None
    if kind is ScoreDataType.TEXT:
        text = str(value)
        if not text.strip():
            raise InvalidScore(f"TEXT score {score.name!r} is empty (Langfuse needs 1-500 chars)")
        if len(text) > MAX_TEXT_LENGTH:
            note = f"value: {len(text)} chars, cut to {MAX_TEXT_LENGTH}"
            return text[: MAX_TEXT_LENGTH - 1] + "…", note
        return text, None
    if kind is ScoreDataType.BOOLEAN:
        if isinstance(value, str):
            return (1 if value.strip().lower() in ("1", "true", "yes") else 0), None
        return (1 if value else 0), None
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, str):
        try:
            return float(value), None
        except ValueError:
            raise InvalidScore(
                f"score {score.name!r} is NUMERIC but its value is not a number"
            ) from None
    return float(value), None


def score_body(score: Score, *, environment: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The JSON body of ``POST /api/public/scores`` for ``score``, and ignored keys.

    The second item names keys of ``backend_fields["langfuse"]`` that are not
    Langfuse score fields (left out of the body). Raises `InvalidScore` for a
    score Langfuse would refuse whatever is retried.
    """
    value, note = _value(score)
    entry = score.backend_fields.get("langfuse") or {}
    ignored = sorted(str(k) for k in entry if k not in LANGFUSE_FIELDS)
    extra = {k: v for k, v in entry.items() if k in LANGFUSE_FIELDS and v is not None}
    body: dict[str, Any] = {
        "id": score.id,
        "name": score.name,
        "value": value,
        "dataType": score.data_type.value,
    }
    run = extra.get("dataset_run_id")
    if run is not None:
        body["datasetRunId"] = str(run)
    elif score.trace_id is not None:
        body["traceId"] = score.trace_id
        if score.span_id is not None:
            body["observationId"] = score.span_id
    elif score.session_id is not None:
        body["sessionId"] = score.session_id
    else:
        raise InvalidScore(
            f"score {score.name!r} has no target: Langfuse needs a trace, a session "
            "or a dataset_run_id"
        )
    source = extra.get("source")
    config_id = extra.get("config_id")
    if score.data_type is ScoreDataType.CORRECTION and config_id is not None:
        raise InvalidScore(f"CORRECTION score {score.name!r} cannot reference a score config")
    if (
        source is not None
        and str(source).upper() == "ANNOTATION"
        and config_id is None
        and score.data_type is not ScoreDataType.CORRECTION
    ):
        raise InvalidScore(
            f"ANNOTATION score {score.name!r} needs a config_id (unless it is a CORRECTION)"
        )
    metadata = dict(score.metadata)
    if score.timestamp is not None:
        metadata.setdefault(RECORDED_AT, ns_to_iso(score.timestamp))
    if note is not None:
        metadata.setdefault("obshub_truncated", note)
    optional = {
        "comment": score.comment,
        "metadata": metadata or None,
        "environment": environment,
        "configId": None if config_id is None else str(config_id),
        "queueId": None if extra.get("queue_id") is None else str(extra["queue_id"]),
        "source": None if source is None else str(source).upper(),
    }
    body.update({key: item for key, item in optional.items() if item is not None})
    return body, ignored
