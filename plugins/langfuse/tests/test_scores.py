"""Scores: POST /api/public/scores with stable ids."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from obshub_langfuse import score_fields
from obshub_langfuse.testing import Fault, IncomingRequest, LangfuseStandIn
from structlog.testing import capture_logs

import obshub
from obshub import http

MakeHub = Callable[..., obshub.Hub]
Stats = Callable[[obshub.Hub], obshub.ChannelStats]


def test_numeric_boolean_and_categorical_scores_arrive_as_langfuse_expects(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with (
        hub.span("agent", type="agent_run") as agent,
        hub.span("answer", type="model_generation") as answer,
    ):
        answer.score("grounded", True, comment="cites the docs")
    hub.score(trace_id=agent.trace_id, name="helpfulness", value=0.9, metadata={"by": "judge"})
    hub.score(trace_id=agent.trace_id, name="resolved", value=False)
    hub.score(trace_id=agent.trace_id, name="tone", value="friendly")
    assert hub.flush(5)
    scores = {s.name: s for s in server.scores()}
    assert set(scores) == {"grounded", "helpfulness", "resolved", "tone"}
    assert (scores["helpfulness"].value, scores["helpfulness"].data_type) == (0.9, "NUMERIC")
    assert scores["helpfulness"].metadata is not None
    assert scores["helpfulness"].metadata["by"] == "judge"
    assert (scores["resolved"].value, scores["resolved"].data_type) == (0.0, "BOOLEAN")
    assert (scores["grounded"].value, scores["grounded"].data_type) == (1.0, "BOOLEAN")
    assert scores["grounded"].observation_id == answer.span_id
    assert scores["grounded"].comment == "cites the docs"
    assert (scores["tone"].value, scores["tone"].data_type) == ("friendly", "CATEGORICAL")
    for score in scores.values():
        assert score.trace_id == agent.trace_id
        assert score.environment == "staging"


def test_a_session_score_needs_no_trace(make_hub: MakeHub, server: LangfuseStandIn) -> None:
    hub = make_hub()
    hub.score(session_id="s-42", name="csat", value=4)
    assert hub.flush(5)
    (score,) = server.scores()
    assert (score.session_id, score.trace_id, score.value) == ("s-42", None, 4.0)


def test_a_resent_score_keeps_its_id(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("scores", Fault.error(503))
    hub = make_hub()
    hub.score(trace_id="ab" * 16, name="quality", value=0.5, id="score-1")
    assert hub.flush(5)
    first, second = server.requests("scores")
    assert (first.status, second.status) == (503, 200)
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"] == "score-1"
    (score,) = server.scores()
    assert score.id == "score-1"
    assert stats(hub).retried == 1


def test_a_rejected_score_does_not_hold_back_the_others(
    make_hub: MakeHub, server: LangfuseStandIn, stats: Stats
) -> None:
    server.inject("scores", Fault.error(400))
    hub = make_hub()
    hub.score(trace_id="ab" * 16, name="first", value=1.0)
    hub.score(trace_id="ab" * 16, name="second", value=2.0)
    assert not hub.flush(5)
    assert [s.name for s in server.scores()] == ["second"]
    assert [r.status for r in server.requests("scores")] == [400, 200]
    counters = stats(hub)
    assert (counters.retried, counters.rejected, counters.exported) == (0, 1, 1)


# -- the whole CreateScoreRequest ---------------------------------------------------------


def body_of(server: LangfuseStandIn, score_id: str) -> dict[str, Any]:
    for request in server.requests("scores"):
        body = json.loads(request.body)
        if body.get("id") == score_id:
            return body  # type: ignore[no-any-return]
    raise KeyError(score_id)


def test_text_and_correction_scores_carry_their_text(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    with hub.span("answer", type="model_generation") as answer:
        answer.score("review", "Cites the wrong policy.", data_type="text")
        answer.score("output", "The refund window is 30 days.", data_type="correction")
    assert hub.flush(5)
    scores = {s.name: s for s in server.scores()}
    assert (scores["review"].data_type, scores["review"].value) == (
        "TEXT",
        "Cites the wrong policy.",
    )
    assert (scores["output"].data_type, scores["output"].value) == (
        "CORRECTION",
        "The refund window is 30 days.",
    )
    assert scores["output"].observation_id == answer.span_id


def test_langfuse_fields_config_queue_source_and_the_recording_time_arrive(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    before = datetime.now(timezone.utc)
    with hub.span("agent", type="agent_run") as agent:
        hub.score(
            name="correctness",
            value=1,
            id="s-annotated",
            comment="prefilled by the judge",
            metadata={"judge": "gpt-4o"},
            backend_fields=score_fields(config_id="cfg-1", queue_id="q-9", source="annotation"),
        )
    after = datetime.now(timezone.utc)
    assert hub.flush(5)
    (score,) = server.scores()
    assert (score.config_id, score.queue_id, score.source) == ("cfg-1", "q-9", "ANNOTATION")
    assert (score.trace_id, score.comment) == (agent.trace_id, "prefilled by the judge")
    assert score.metadata is not None
    assert score.metadata["judge"] == "gpt-4o"
    recorded = datetime.fromisoformat(score.metadata["recorded_at"].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= recorded <= after
    body = body_of(server, "s-annotated")
    assert set(body) == {
        "id",
        "name",
        "value",
        "dataType",
        "traceId",
        "comment",
        "metadata",
        "environment",
        "configId",
        "queueId",
        "source",
    }


def test_a_dataset_run_score_targets_the_run_alone(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    hub.score(name="accuracy", value=0.93, backend_fields=score_fields(dataset_run_id="run-1"))
    with hub.span("experiment", type="workflow_run"):  # a current span does not steal it
        hub.score(
            name="latency-ok", value=True, backend_fields=score_fields(dataset_run_id="run-1")
        )
    assert hub.flush(5)
    for score in server.scores():
        assert score.dataset_run_id == "run-1"
        assert (score.trace_id, score.observation_id, score.session_id) == (None, None, None)


def test_exactly_one_target_is_sent(make_hub: MakeHub, server: LangfuseStandIn) -> None:
    hub = make_hub()
    with hub.span("agent", type="agent_run") as agent, hub.span("tool", type="tool_call") as tool:
        tool.score("tool-ok", True)  # observation target
    hub.score(name="both", value=1, trace_id=agent.trace_id, session_id="s-1")  # trace wins
    hub.score(name="session", value=1, session_id="s-1")
    assert hub.flush(5)
    scores = {s.name: s for s in server.scores()}
    assert (scores["tool-ok"].trace_id, scores["tool-ok"].observation_id) == (
        agent.trace_id,
        tool.span_id,
    )
    assert (scores["both"].trace_id, scores["both"].session_id) == (agent.trace_id, None)
    assert (scores["session"].trace_id, scores["session"].session_id) == (None, "s-1")


def test_a_text_score_over_500_characters_is_cut_and_says_so(
    make_hub: MakeHub, server: LangfuseStandIn
) -> None:
    hub = make_hub()
    hub.score(trace_id="ab" * 16, name="essay", value="x" * 800, data_type="text")
    assert hub.flush(5)
    (score,) = server.scores()
    assert isinstance(score.value, str)
    assert len(score.value) == 500
    assert score.value.endswith("…")
    assert score.metadata is not None
    assert score.metadata["obshub_truncated"] == "value: 800 chars, cut to 500"


def test_scores_langfuse_would_refuse_are_reported_and_do_not_hold_back_the_rest(
    make_exporter: Callable[..., Any], server: LangfuseStandIn
) -> None:
    exporter = make_exporter()
    trace = "ab" * 16
    bad_annotation = obshub.Score(
        name="a", value=1, trace_id=trace, backend_fields=score_fields(source="ANNOTATION")
    )
    bad_correction = obshub.Score(
        name="output",
        value="fixed",
        trace_id=trace,
        data_type="correction",
        backend_fields=score_fields(config_id="cfg-1"),
    )
    empty_text = obshub.Score(name="t", value=" ", trace_id=trace, data_type="text")
    good = obshub.Score(name="good", value=0.5, trace_id=trace)
    with pytest.raises(obshub.ExportError, match="3 of 4 scores rejected") as caught:
        exporter.export_scores([bad_annotation, bad_correction, empty_text, good])
    assert not caught.value.retryable
    assert "needs a config_id" in str(caught.value)
    assert [s.name for s in server.scores()] == ["good"]


def test_unknown_langfuse_score_keys_are_left_out_with_a_warning(
    make_exporter: Callable[..., Any], server: LangfuseStandIn
) -> None:
    exporter = make_exporter()
    score = obshub.Score(
        name="q", value=1.0, trace_id="ab" * 16, backend_fields={"langfuse": {"configID": "x"}}
    )
    with capture_logs() as logs:
        exporter.export_scores([score])
    (warning,) = [r for r in logs if r["event"] == "score_fields_ignored"]
    assert warning["ignored"] == ["configID"]
    (stored,) = server.scores()
    assert stored.config_id is None


def test_score_fields_checks_its_arguments() -> None:
    assert score_fields(source="api", queue_id=" q ") == {
        "langfuse": {"source": "API", "queue_id": "q"}
    }
    with pytest.raises(ValueError, match="source must be one of API, ANNOTATION"):
        score_fields(source="EVAL")
    with pytest.raises(ValueError, match="config_id must be a non-empty string"):
        score_fields(config_id="")


def test_the_stand_in_refuses_what_langfuse_refuses(server: LangfuseStandIn) -> None:
    auth = "Basic " + base64.b64encode(f"{server.public_key}:{server.secret_key}".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    trace = {"traceId": "ab" * 16}
    bad = [
        {"name": "n", "value": "x", "dataType": "NUMERIC", **trace},
        {"name": "n", "value": 2, "dataType": "BOOLEAN", **trace},
        {"name": "n", "value": 1, "dataType": "CATEGORICAL", **trace},
        {"name": "n", "value": "", "dataType": "TEXT", **trace},
        {"name": "n", "value": "x" * 501, "dataType": "TEXT", **trace},
        {"name": "n", "value": "x", "dataType": "CORRECTION", "configId": "c", **trace},
        {"name": "n", "value": 1, "dataType": "SCORE", **trace},
        {"name": "n", "value": 1, "source": "EVAL", **trace},
        {"name": "n", "value": 1, "source": "ANNOTATION", **trace},
        {"name": "n", "value": 1, "traceId": "t", "sessionId": "s"},
        {"name": "n", "value": 1, "sessionId": "s", "observationId": "o"},
        {"name": "n", "value": 1},
        {"name": "n", "value": 1, "timestamp": "2026-01-01T00:00:00Z", **trace},
        {"name": "n", "value": 1, "metadata": [1], **trace},
        {"name": "n", "value": 1, "environment": "langfuse-x", **trace},
    ]
    for body in bad:
        response = http.post(
            f"{server.url}/api/public/scores",
            json.dumps(body).encode(),
            headers,
            raise_for_status=False,
        )
        assert response.status == 400, body
    assert server.scores() == []


def test_a_batch_of_scores_goes_four_requests_at_a_time(
    make_exporter: Callable[..., Any], server: LangfuseStandIn
) -> None:
    # Eight scores after the probe: they can only pass a four-party barrier if
    # four requests really are in flight together, twice.
    barrier = threading.Barrier(4)
    broken: list[str] = []
    seen: list[str] = []
    lock = threading.Lock()

    def together(incoming: IncomingRequest) -> Fault | None:
        with lock:
            seen.append(incoming.path)
            first = len(seen) == 1
        if not first:
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                broken.append("barrier")
        return None

    server.fault_function = together
    exporter = make_exporter()
    scores = [obshub.Score(name=f"s{i}", value=i, trace_id="ab" * 16) for i in range(9)]
    exporter.export_scores(scores)
    assert broken == []
    assert len(server.scores()) == 9


def test_a_probe_that_fails_for_all_sends_nothing_else(
    make_exporter: Callable[..., Any], server: LangfuseStandIn
) -> None:
    exporter = make_exporter()
    scores = [obshub.Score(name=f"s{i}", value=i, trace_id="ab" * 16) for i in range(5)]
    server.inject("scores", Fault.error(503))
    with pytest.raises(obshub.ExportError) as retry:
        exporter.export_scores(scores)
    assert retry.value.retryable
    exporter = make_exporter(secret_key="sk-wrong")
    with pytest.raises(obshub.ExportError) as refused:
        exporter.export_scores(scores)
    assert refused.value.status == 401
    assert refused.value.pause == 30.0  # one refusal, one pause: not doubled per request
    assert len(server.requests("scores")) == 2
