"""One exporter's trouble stays its own: a constructor that raises, one that edits events."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import obshub
from obshub import _cli as cli
from obshub._failed import FailedExporter
from obshub.spans import SpanEvent
from obshub.testing import RecordingExporter, make_registry, wait_for

WAIT = 10.0
SECRET = "tok-do-not-print-4417"


# -- an exporter whose __init__ raises (issue 9, point 10) ------------------------------------


class CrashesOnStart(obshub.Exporter):
    """A plugin whose constructor fails for its own reasons (a missing native library, a bug)."""

    name = "crashes-on-start"
    secret_keys = frozenset({"token"})

    def __init__(self, *, token: str = "", **common: Any) -> None:
        super().__init__(**common)
        self._load_native_client(token)

    def _load_native_client(self, token: str) -> None:
        raise RuntimeError(f"native client failed to load (token {token})")

    def export(self, events: Sequence[SpanEvent]) -> None:  # pragma: no cover - never built
        raise AssertionError("a disabled exporter was given events")


class RejectsItsSettings(obshub.Exporter):
    """A plugin that finds a configuration mistake in its constructor."""

    name = "rejects-settings"

    def __init__(self, *, region: str = "eu", **common: Any) -> None:
        super().__init__(**common)
        raise obshub.ConfigError("unknown region", "region")


def _document(*, second: dict[str, Any]) -> dict[str, Any]:
    return {
        "configs": {
            "prod": {
                "service_name": "isolation",
                "exporters": {
                    "native": {"type": "crashes-on-start", "token": SECRET},
                    "second": second,
                },
            }
        }
    }


def test_an_exporter_whose_init_raises_is_disabled_and_the_others_receive_spans(
    tmp_path: Path, kit: Any, figures: Any
) -> None:
    registry = make_registry(CrashesOnStart)
    out = tmp_path / "spans.jsonl"
    document = _document(
        second={"type": "jsonl", "path": str(out), "realtime": True, "events": ["ended"]}
    )
    with capture_logs() as logs:
        hub = obshub.Hub.from_config(document, registry=registry)
    try:
        for i in range(20):
            with hub.span("step", input={"i": i}):
                pass
        assert hub.flush(WAIT)
        stats = hub.stats()
    finally:
        hub.shutdown(timeout=2.0)

    lines = out.read_text().splitlines()
    assert len(lines) == 20
    native = stats["prod/native"]
    assert native.state == "disabled"
    assert (native.state, native.type) == ("disabled", "crashes-on-start")
    assert native.reason.startswith("failed to start: RuntimeError: native client failed")
    assert stats["prod/second"].exported == 20
    (failed,) = [e for e in hub.exporters() if isinstance(e, FailedExporter)]
    assert failed.failure.key == "configs.prod.exporters.native"

    (entry,) = [e for e in logs if e["event"] == "exporter_start_failed"]
    assert (entry["exporter"], entry["type"], entry["key"], entry["log_level"]) == (
        "native",
        "crashes-on-start",
        "configs.prod.exporters.native",
        "error",
    )
    logged = entry["exc_info"]
    frames = traceback.format_exception(type(logged), logged, logged.__traceback__)
    assert "_load_native_client" in "".join(frames), "the log event lost the traceback"
    shown = [json.dumps(entry, default=str), "".join(frames), native.reason, repr(failed)]
    shown.append(failed.failure.traceback)
    assert not [text for text in shown if SECRET in text]
    kit.report(
        figures,
        "exporter_init_raises",
        before="RuntimeError out of Hub.from_config, application stopped",
        after_spans_delivered_by_the_other_exporter=len(lines),
        disabled_state=native.state,
        log_events=1,
    )


def test_a_config_error_from_an_exporter_init_still_stops_start_up_with_its_key_path() -> None:
    registry = make_registry(RejectsItsSettings)
    document = {"configs": {"prod": {"exporters": {"eu": {"type": "rejects-settings"}}}}}
    with pytest.raises(obshub.ConfigError) as caught:
        obshub.Hub.from_config(document, registry=registry)
    assert caught.value.key == "configs.prod.exporters.eu.region"


def test_obshub_check_fails_naming_the_exporter_that_could_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBSHUB_CONFIG", raising=False)
    monkeypatch.setattr("obshub._plugins._registry", make_registry(CrashesOnStart))
    (tmp_path / "obshub.toml").write_text(
        '[configs.prod.exporters.native]\ntype = "crashes-on-start"\n'
        f'token = "{SECRET}"\n\n'
        '[configs.prod.exporters.second]\ntype = "jsonl"\npath = "out.jsonl"\n'
    )
    out = _StringOut()
    code = cli.main(["check"], out=out)
    text = out.getvalue()
    assert code == 1
    assert "FAIL  native (crashes-on-start): disabled, failed to start: RuntimeError" in text
    assert "configs.prod.exporters.native" in text
    assert "ok    second (jsonl" in text
    assert "1 check(s) failed" in text
    assert SECRET not in text


class _StringOut:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        return None

    def getvalue(self) -> str:
        return "".join(self.parts)


# -- an exporter that edits what it is given (issue 9, point 12) -------------------------------


def _pop_password(event: SpanEvent) -> None:
    event.span.input.pop("password")


def _edit_to_dict(event: SpanEvent) -> None:
    event.to_dict()["span"]["input"]["password"] = "[scrubbed by plugin]"


def _append_to_nested_list(event: SpanEvent) -> None:
    event.span.metadata["labels"].append("seen-by-plugin")


class Scrubber(RecordingExporter):
    """A plugin that 'redacts' for its own backend by editing the events in place."""

    name = "scrubber"

    def __init__(self, edit: Callable[[SpanEvent], None], done: threading.Event) -> None:
        super().__init__(realtime=True, event_kinds=["ended"])
        self.edit = edit
        self.done = done
        self.refused = 0

    def export(self, events: Sequence[SpanEvent]) -> None:
        try:
            for event in events:
                self.edit(event)
        except TypeError:
            self.refused += len(events)
            raise
        finally:
            self.done.set()
        super().export(events)


class AfterScrubber(obshub.JsonlExporter):
    """``jsonl`` made to write only once the scrubber has had the same events: the worst timing."""

    def __init__(self, scrubbed: threading.Event, **settings: Any) -> None:
        super().__init__(**settings)
        self.scrubbed = scrubbed

    def export(self, events: Sequence[SpanEvent]) -> None:
        assert self.scrubbed.wait(WAIT), "the scrubber never ran"
        self.scrubbed.clear()
        super().export(events)


@pytest.mark.parametrize("edit", [_pop_password, _edit_to_dict, _append_to_nested_list])
def test_an_exporter_that_edits_events_cannot_change_what_jsonl_beside_it_writes(
    tmp_path: Path, edit: Callable[[SpanEvent], None], kit: Any, figures: Any
) -> None:
    scrubbed = threading.Event()
    scrubber = Scrubber(edit, scrubbed)
    out = tmp_path / "spans.jsonl"
    jsonl = AfterScrubber(scrubbed, path=str(out), realtime=True, events=["ended"])
    hub = obshub.Hub(exporters=[scrubber, jsonl], service_name="isolation")
    spans = 5
    try:
        for i in range(spans):
            with hub.span(
                "login",
                input={"user": f"u{i}", "password": f"pw-{i}"},
                metadata={"labels": ["auth"]},
            ):
                pass
            # One event per batch, so that each jsonl write follows its own scrubber call.
            wait_for(lambda n=i: jsonl_lines(out) > n, WAIT, message="jsonl did not write")
        hub.flush(WAIT)
        stats = hub.stats()
    finally:
        hub.shutdown(timeout=2.0)

    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["span"]["input"] for r in records] == [
        {"user": f"u{i}", "password": f"pw-{i}"} for i in range(spans)
    ]
    assert [r["span"]["metadata"] for r in records] == [{"labels": ["auth"]}] * spans
    assert scrubber.refused == spans, "the edits were not refused"
    assert stats["default/scrubber"].failed == spans, "the refused batches were not counted"
    assert stats["default/jsonl"].exported == spans
    kit.report(
        figures,
        f"exporter_edits_events_{edit.__name__.lstrip('_')}",
        spans=spans,
        jsonl_records_intact=len(records),
        editing_exporter_failed=stats["default/scrubber"].failed,
    )


def jsonl_lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0
