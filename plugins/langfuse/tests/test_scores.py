"""Scores: POST /api/public/scores with stable ids."""

from __future__ import annotations

import json
from collections.abc import Callable

from obshub_langfuse.testing import Fault, LangfuseStandIn

import obshub

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
    assert scores["helpfulness"].metadata == {"by": "judge"}
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
