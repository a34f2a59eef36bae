"""``console``: a readable tree per finished trace."""

from __future__ import annotations

from typing import Any

import pytest

import obshub
from obshub import EventKind, Level, SpanError, SpanEvent, SpanType
from obshub.builtin.console import ConsoleExporter

WAIT = 5.0
TRACE = "0af7651916cd43dd8448eb211c80319c"
MS = 1_000_000
T0 = 1_767_323_045_000_000_000


def span(name: str, span_id: str, parent: str | None = None, **fields: Any) -> obshub.Span:
    fields.setdefault("start_time", T0)
    fields.setdefault("end_time", fields["start_time"] + 5 * MS)
    return obshub.Span(trace_id=TRACE, span_id=span_id, parent_span_id=parent, name=name, **fields)


def ended(*spans: obshub.Span) -> list[SpanEvent]:
    return [SpanEvent(EventKind.ENDED, s, "default", "svc") for s in spans]


def test_a_finished_trace_prints_as_a_tree_with_names_types_and_durations(
    hub_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = hub_factory(exporters=[ConsoleExporter(realtime=True, color="never")])
    with hub.span("support-agent", type="agent_run", session_id="s-42", user_id="u-7"):
        with hub.span("search", type="tool_call"):
            pass
        with hub.span("answer", type="model_generation"):
            pass
    assert hub.flush(WAIT)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("trace ")
    assert "support-agent" in lines[0]
    assert "session s-42" in lines[0]
    assert "user u-7" in lines[0]
    assert lines[1].startswith("└─ support-agent [agent_run] ")
    assert lines[1].endswith(" ms")
    tree = [line for line in lines if "[" in line]
    assert tree[1].startswith("   ├─ search [tool_call] ")
    assert tree[2].startswith("   └─ answer [model_generation] ")
    assert "\x1b[" not in out


def test_nothing_is_printed_until_the_root_span_ends(capsys: pytest.CaptureFixture[str]) -> None:
    console = ConsoleExporter(color="never")
    root = span("agent", "1" * 16)
    child = span("tool", "2" * 16, parent=root.span_id)
    console.export(ended(child))
    assert capsys.readouterr().out == ""
    console.export(ended(root))
    out = capsys.readouterr().out
    assert "agent" in out
    assert "tool" in out


def test_model_tokens_cost_and_durations_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    console = ConsoleExporter(color="never")
    root = span("agent", "1" * 16, end_time=T0 + 2_500 * MS)
    gen = span(
        "gpt-4o",
        "2" * 16,
        parent=root.span_id,
        type=SpanType.MODEL_GENERATION,
        model="gpt-4o",
        usage=obshub.Usage(input=812, output=95, cached_input=512),
        cost=obshub.Cost(total=0.0123),
        end_time=T0 + 12 * MS + 300_000,
    )
    console.export(ended(gen, root))
    out = capsys.readouterr().out
    assert "agent [generic] 2.50 s" in out
    assert "gpt-4o [model_generation] 12.3 ms" in out
    assert "812→95 tokens (512 cached)" in out
    assert "$0.0123" in out


def test_errors_and_warnings_are_flagged_with_type_and_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = ConsoleExporter(color="never")
    root = span("agent", "1" * 16)
    failed = span(
        "tool",
        "2" * 16,
        parent=root.span_id,
        level=Level.ERROR,
        status_message="connection refused",
        error=SpanError(message="connection refused", type="ConnectionError"),
    )
    slow = span("slow", "3" * 16, parent=root.span_id, level=Level.WARNING, status_message="slow")
    console.export(ended(failed, slow, root))
    out = capsys.readouterr().out
    assert "✗ ConnectionError: connection refused" in out
    assert "! slow" in out


def test_an_exception_recorded_through_the_hub_shows_in_the_tree(
    hub_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = hub_factory(exporters=[ConsoleExporter(realtime=True, color="never")])
    with pytest.raises(ValueError, match="bad input"), hub.span("agent"):
        raise ValueError("bad input")
    assert hub.flush(WAIT)
    assert "✗ ValueError: bad input" in capsys.readouterr().out


def test_events_inputs_and_outputs_are_shown_and_io_can_be_hidden(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = span("agent", "1" * 16, input={"question": "why?"}, output="because " * 20)
    note = span("cache-hit", "2" * 16, parent=root.span_id, is_event=True, end_time=T0)
    ConsoleExporter(color="never").export(ended(note, root))
    out = capsys.readouterr().out
    assert "cache-hit [event]" in out
    assert 'in:  {"question": "why?"}' in out
    assert "out: because because" in out
    assert "…" in out  # long previews are shortened
    ConsoleExporter(color="never", show_io=False).export(ended(note, root))
    hidden = capsys.readouterr().out
    assert "in: " not in hidden
    assert "out: " not in hidden


def test_trace_tags_are_shown_in_the_header(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleExporter(color="never").export(ended(span("agent", "1" * 16, tags=("beta", "eu"))))
    assert "tags beta,eu" in capsys.readouterr().out


def test_color_always_paints_and_stderr_is_honoured(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleExporter(color="always", stream="stderr").export(ended(span("agent", "1" * 16)))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "\x1b[" in captured.err
    assert "agent" in captured.err


def test_color_auto_does_not_paint_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleExporter().export(ended(span("agent", "1" * 16)))
    assert "\x1b[" not in capsys.readouterr().out


def test_unfinished_traces_are_printed_at_shutdown_marked_incomplete(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = ConsoleExporter(color="never")
    console.export(ended(span("orphan", "2" * 16, parent="9" * 16)))
    assert capsys.readouterr().out == ""
    console.shutdown()
    out = capsys.readouterr().out
    assert "orphan" in out
    assert "incomplete: root not ended" in out


def test_the_oldest_unfinished_trace_is_printed_when_too_many_wait(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = ConsoleExporter(color="never", max_pending_traces=1)
    first = obshub.Span(trace_id="a" * 32, span_id="1" * 16, parent_span_id="9" * 16, name="a")
    second = obshub.Span(trace_id="b" * 32, span_id="2" * 16, parent_span_id="9" * 16, name="b")
    console.export(ended(first))
    assert capsys.readouterr().out == ""
    console.export(ended(second))
    out = capsys.readouterr().out
    assert "a [generic]" in out
    assert "b [generic]" not in out


def test_scores_are_printed_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleExporter(color="never").export_scores(
        [obshub.Score(name="helpfulness", value=0.9, trace_id=TRACE, comment="good")]
    )
    assert capsys.readouterr().out == f"score helpfulness = 0.9 on {TRACE[:12]} (good)\n"


def test_the_connectivity_check_always_passes_and_names_the_stream() -> None:
    result = ConsoleExporter(stream="stderr").check()
    assert result.ok
    assert "stderr" in result.message
