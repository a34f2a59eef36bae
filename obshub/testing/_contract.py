"""`ExporterContract`: the test battery every exporter class must pass."""

from __future__ import annotations

import inspect
import json
import re
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from importlib import metadata
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

from obshub.config import exporter_parameters
from obshub.config_errors import ConfigError
from obshub.exporters import CheckResult, Exporter, ExportError
from obshub.hub import Hub
from obshub.plugins import PluginRegistry
from obshub.spans import (
    EventKind,
    Score,
    SpanEvent,
    SpanType,
    item_record,
    new_span_id,
    new_trace_id,
)
from obshub.testing._factories import (
    TRACE_SPANS,
    make_event,
    make_score,
    make_span,
    make_trace,
    record_trace,
)
from obshub.testing._hubs import HubFactory, make_registry

__all__ = ["ExporterContract"]

_CONFIG_NAME = "contract"
_INSTANCE = "under_test"
_KEY_PREFIX = f"configs.{_CONFIG_NAME}.exporters.{_INSTANCE}"
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_MIN_SECRET = 6

#: A bad value for every common key: (setting, value, key path under the exporter's table).
_BAD_COMMON_SETTINGS = [
    pytest.param("realtime", "yes", "realtime", id="realtime-string"),
    pytest.param("enabled", "maybe", "enabled", id="enabled-word"),
    pytest.param("log_level", 10, "log_level", id="log_level-number"),
    pytest.param("log_level", "loud", "log_level", id="log_level-unknown"),
    pytest.param("batch", "big", "batch", id="batch-string"),
    pytest.param("batch", {"max_size": 0}, "batch.max_size", id="batch.max_size-zero"),
    pytest.param("batch", {"interval": "soon"}, "batch.interval", id="batch.interval-string"),
    pytest.param("batch", {"size": 10}, "batch.size", id="batch-unknown-key"),
    pytest.param("max_queue_size", "many", "max_queue_size", id="max_queue_size-string"),
    pytest.param("max_queue_size", 0, "max_queue_size", id="max_queue_size-zero"),
    pytest.param("max_queue_bytes", "1 GB", "max_queue_bytes", id="max_queue_bytes-string"),
    pytest.param("max_queue_bytes", 1024, "max_queue_bytes", id="max_queue_bytes-too-small"),
    pytest.param("retry", 3, "retry", id="retry-number"),
    pytest.param("retry", {"max_attempts": 0}, "retry.max_attempts", id="retry.max_attempts-zero"),
    pytest.param("retry", {"attempts": 3}, "retry.attempts", id="retry-unknown-key"),
    pytest.param("spool_dir", 5, "spool_dir", id="spool_dir-number"),
    pytest.param("spool_max_bytes", "1 MB", "spool_max_bytes", id="spool_max_bytes-string"),
    pytest.param("spool_max_bytes", 100, "spool_max_bytes", id="spool_max_bytes-too-small"),
]
#: Seconds a test lets a hub try an exporter that pauses (it would wait out the pause).
_PAUSED_WAIT = 0.2


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in _strings(v)]
    return []


def _texts_of(call: Callable[[], Any]) -> list[str]:
    """What a call shows: its result's message and details, or the exception it raised.

    Other tests report a call that raises; the secrets test only looks at the text.
    """
    try:
        result = call()
    except Exception as exc:
        return [str(exc), repr(exc)]
    if isinstance(result, CheckResult):
        return [result.message, repr(result.details)]
    return []


def _check_well_formed(result: Any) -> CheckResult:
    assert isinstance(result, CheckResult), (
        f"check() returned {type(result).__name__}, not obshub.CheckResult"
    )
    assert isinstance(result.ok, bool), f"CheckResult.ok is {type(result.ok).__name__}, not bool"
    assert isinstance(result.message, str), "CheckResult.message is not a str"
    assert result.message.strip(), "CheckResult.message is empty: say what was checked"
    assert result.latency_ms is None or (
        isinstance(result.latency_ms, (int, float)) and result.latency_ms >= 0
    ), f"CheckResult.latency_ms is {result.latency_ms!r}"
    assert isinstance(result.details, Mapping), "CheckResult.details is not a mapping"
    return result


def _given(items: Sequence[SpanEvent | Score]) -> list[str]:
    """A deep snapshot of what an exporter is handed: each item's JSON record."""
    return [json.dumps(item_record(item), sort_keys=True, default=repr) for item in items]


def _call_without_changes(
    call: Callable[[Sequence[Any]], None], items: Sequence[SpanEvent | Score], what: str
) -> None:
    before = _given(items)
    try:
        call(list(items))
    except TypeError as exc:
        if "read-only" not in str(exc):
            raise
        pytest.fail(
            f"{what} tried to change what it was given ({exc}); every exporter of a config "
            "receives the same items: copy what you need to change (obshub.spans.thaw(value))"
        )
    after = _given(items)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert not changed, (
        f"{what} changed an item it was given (every exporter of a config receives the same "
        f"items): before {changed[0][0][:300]}, after {changed[0][1][:300]}"
    )


class _Spy:
    """Wraps one exporter instance's methods to see what the hub hands it."""

    def __init__(self, exporter: Exporter) -> None:
        self.events: list[SpanEvent] = []
        self.scores: list[Score] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        export, export_scores = exporter.export, exporter.export_scores

        def spy_export(events: Sequence[SpanEvent]) -> None:
            with self._lock:
                self.events.extend(events)
                self.threads.add(threading.get_ident())
            export(events)

        def spy_scores(scores: Sequence[Score]) -> None:
            with self._lock:
                self.scores.extend(scores)
            export_scores(scores)

        # The channel looks the methods up on each call, so instance attributes win.
        setattr(exporter, "export", spy_export)  # noqa: B010 - mypy forbids assigning a method
        if exporter.supports_scores():
            setattr(exporter, "export_scores", spy_scores)  # noqa: B010 - as above


class ExporterContract:
    """The standard test battery for an exporter class. Subclass it as ``Test...``.

    Set these class attributes:

    - ``exporter_class``: the `Exporter` subclass under test.
    - ``config``: valid settings of its own (keyword arguments, as a config
      table would give them); values must be what a TOML file can hold.
    - ``secret_settings``: names of settings whose values must never appear
      in ``repr``/``str``, error messages, ``check()`` results or log lines
      (default: the class's ``secret_keys``). Use distinctive values.
    - ``expect_retryable``: ``retryable`` of the `ExportError`
      raised under `failing_config` (``None``: either is fine);
      ``expect_pause``: whether it asks for a pause (``ExportError.pause``;
      ``None``, the default: either is fine).
    - ``installed``: True when an installed plugin (or the core) registers
      the class, so ``PluginRegistry()`` must find it.
    - ``timeout``: seconds a flush may take.

    And override, as needed:

    - the ``backend`` fixture: start what the exporter talks to (a local
      server, a temporary directory) and return it;
    - `backend_settings`: settings that point the exporter at that
      backend (default: the backend itself when it is a mapping, else none);
    - `failing_config`: settings under which ``export()`` must raise
      `ExportError` (e.g. ``{"url": unreachable_url()}``);
    - `received`: how many distinct spans the backend holds, so the
      battery can check that a trace recorded through a hub arrived.

    Tests that need an override that was not given are skipped, with the
    reason saying which one.
    """

    exporter_class: ClassVar[type[Exporter]]
    config: ClassVar[Mapping[str, Any]] = {}
    secret_settings: ClassVar[Collection[str] | None] = None
    expect_retryable: ClassVar[bool | None] = True
    expect_pause: ClassVar[bool | None] = None
    installed: ClassVar[bool] = False
    timeout: ClassVar[float] = 10.0

    # -- what an author overrides ----------------------------------------------------------

    @pytest.fixture
    def backend(self) -> Any:
        """What the exporter talks to; the default is nothing."""
        return None

    def backend_settings(self, backend: Any) -> Mapping[str, Any]:
        """Settings pointing the exporter at ``backend``, merged over ``config``."""
        return backend if isinstance(backend, Mapping) else {}

    def failing_config(self, backend: Any) -> Mapping[str, Any] | None:
        """Settings (merged over the valid ones) under which ``export()`` must fail."""
        return None

    def received(self, backend: Any, exporter: Exporter) -> int | None:
        """How many distinct spans ``backend`` holds (None: cannot tell).

        Called before recording and after ``hub.flush()`` returned; wait
        inside if the backend stores what it is sent asynchronously.
        """
        return None

    # -- plumbing ----------------------------------------------------------------------------

    @pytest.fixture
    def contract_settings(self, backend: Any) -> dict[str, Any]:
        """The valid settings: ``config`` with `backend_settings` over it."""
        if getattr(self, "exporter_class", None) is None:
            pytest.fail(f"{type(self).__name__} must set exporter_class")
        return {**self.config, **self.backend_settings(backend)}

    @pytest.fixture
    def contract_exporter(
        self, contract_settings: dict[str, Any]
    ) -> Iterator[Callable[..., Exporter]]:
        """``make(**overrides)`` builds the exporter from the valid settings."""
        made: list[Exporter] = []

        def make(**overrides: Any) -> Exporter:
            exporter = self.exporter_class(**{**contract_settings, **overrides})
            made.append(exporter)
            return exporter

        yield make
        for exporter in made:
            try:
                exporter.shutdown()
            except Exception:  # test_flush_and_shutdown_are_idempotent reports it
                continue

    @pytest.fixture
    def contract_hubs(self, backend: Any) -> Iterator[HubFactory]:
        """Hubs shut down after the test, before the backend is torn down."""
        factory = HubFactory(shutdown_timeout=self.timeout)
        yield factory
        factory.shutdown()

    @pytest.fixture
    def contract_registry(self) -> PluginRegistry:
        """The installed registry if it provides the class, else one that registers it."""
        cls = self.exporter_class
        installed = PluginRegistry()
        if installed.exporter_class(cls.name) is cls:
            return installed
        return make_registry(cls)

    def _document(self, table: Mapping[str, Any]) -> dict[str, Any]:
        exporter_table = {"type": self.exporter_class.name, **table}
        return {
            "configs": {
                _CONFIG_NAME: {
                    "service_name": "contract-test",
                    "exporters": {_INSTANCE: exporter_table},
                }
            }
        }

    def _secrets(self, settings: Mapping[str, Any]) -> list[str]:
        names = self.secret_settings
        if names is None:
            names = self.exporter_class.secret_keys
        if not names:
            pytest.skip("no secret settings: set secret_settings or the class's secret_keys")
        secrets: list[str] = []
        for name in names:
            values = _strings(settings.get(name))
            assert values, f"secret setting {name!r} has no value in config: give it one"
            for value in values:
                assert len(value) >= _MIN_SECRET, (
                    f"the value of secret setting {name!r} is too short to look for: use a "
                    f"distinctive one of at least {_MIN_SECRET} characters"
                )
            secrets.extend(values)
        return secrets

    def _failing(self, backend: Any) -> Mapping[str, Any]:
        failing = self.failing_config(backend)
        if failing is None:
            pytest.skip("override failing_config(backend) to test failures")
        return failing

    def _fail_through_hub(
        self,
        make: Callable[..., Exporter],
        hubs: HubFactory,
        failing: Mapping[str, Any],
        **overrides: Any,
    ) -> tuple[Hub, bool]:
        """Record a trace into a hub whose exporter fails; returns the hub and flush()'s result.

        One attempt only, so a retryable failure is given up at once; an
        exporter that asks for a pause (``ExportError.pause``) is given a
        short while, then the hub is shut down.
        """
        probe = make(**failing)
        try:
            probe.export(make_trace(kinds=probe.event_kinds))
            pauses = False
        except ExportError as exc:
            pauses = exc.pause is not None
        except Exception:  # test_raises_export_error_when_the_backend_fails reports it
            pauses = False
        wait = _PAUSED_WAIT if pauses else self.timeout
        exporter = make(**{**failing, "retry": {"max_attempts": 1}, **overrides})
        hub = hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub, score=False)
        flushed = bool(hub.flush(wait))
        hub.shutdown(wait)
        return hub, flushed

    # -- construction ------------------------------------------------------------------------

    def test_has_a_type_name_and_wanted_event_kinds(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``name`` is what users write as ``type``; ``event_kinds`` is a set of EventKind."""
        name = self.exporter_class.name
        assert isinstance(name, str), f"{self.exporter_class.__name__}.name must be a str"
        assert _TYPE_NAME.match(name), (
            f"{self.exporter_class.__name__}.name = {name!r}: use lowercase letters, digits, "
            "'-' and '_', starting with a letter"
        )
        kinds = contract_exporter().event_kinds
        assert isinstance(kinds, (frozenset, set)), "event_kinds must be a frozenset"
        assert kinds, "event_kinds is empty: the exporter would receive nothing"
        assert all(isinstance(k, EventKind) for k in kinds), (
            f"event_kinds must hold obshub.EventKind members, got {sorted(map(repr, kinds))}"
        )

    def test_builds_from_keyword_arguments(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """The settings work as keywords, and the common keys reach the base class."""
        plain = contract_exporter()
        assert isinstance(plain, Exporter)
        assert plain.instance_name == self.exporter_class.name
        named = contract_exporter(
            instance_name="custom",
            realtime=True,
            log_level="debug",
            batch={"max_size": 7, "interval": 0.5},
            max_queue_size=99,
            retry={"max_attempts": 2},
            enabled=True,
        )
        assert named.instance_name == "custom"
        assert named.realtime is True, "realtime= did not reach Exporter.__init__"
        assert named.log_level == "debug", "log_level= did not reach Exporter.__init__"
        assert (named.batch.max_size, named.batch.interval) == (7, 0.5), (
            "batch= did not reach Exporter.__init__"
        )
        assert named.max_queue_size == 99, "max_queue_size= did not reach Exporter.__init__"
        assert named.retry.max_attempts == 2, "retry= did not reach Exporter.__init__"

    def test_builds_from_a_config_table_by_its_type_name(
        self,
        contract_settings: dict[str, Any],
        contract_hubs: HubFactory,
        contract_registry: PluginRegistry,
    ) -> None:
        """``type = "<name>"`` plus the settings in a config table builds the exporter."""
        table = {
            **contract_settings,
            "realtime": True,
            "log_level": "warning",
            "batch": {"max_size": 5},
        }
        hub = contract_hubs.from_config(self._document(table), registry=contract_registry)
        (exporter,) = hub.exporters()
        assert type(exporter) is self.exporter_class
        assert exporter.instance_name == _INSTANCE
        assert (exporter.realtime, exporter.log_level, exporter.batch.max_size) == (
            True,
            "warning",
            5,
        )

    def test_rejects_an_unknown_key_with_its_full_path(
        self, contract_settings: dict[str, Any], contract_registry: PluginRegistry
    ) -> None:
        """A misspelt setting is a ConfigError naming ``configs.<c>.exporters.<i>.<key>``."""
        table = {**contract_settings, "no_such_setting": True}
        with pytest.raises(ConfigError) as caught:
            Hub.from_config(self._document(table), registry=contract_registry)
        assert caught.value.key == f"{_KEY_PREFIX}.no_such_setting", str(caught.value)
        with pytest.raises((TypeError, ConfigError)):
            self.exporter_class(**table)

    @pytest.mark.parametrize(("setting", "value", "path"), _BAD_COMMON_SETTINGS)
    def test_rejects_a_bad_common_setting_with_its_full_path(
        self,
        contract_settings: dict[str, Any],
        contract_registry: PluginRegistry,
        setting: str,
        value: Any,
        path: str,
    ) -> None:
        """Every common key is validated, and the error names its full key path."""
        table = {**contract_settings, setting: value}
        with pytest.raises(ConfigError) as caught:
            Hub.from_config(self._document(table), registry=contract_registry)
        assert caught.value.key == f"{_KEY_PREFIX}.{path}", str(caught.value)

    def test_reports_a_missing_required_setting_with_its_full_path(
        self, contract_settings: dict[str, Any], contract_registry: PluginRegistry
    ) -> None:
        """Leaving out a required keyword is a ConfigError naming that key."""
        required = [
            name
            for name, param in exporter_parameters(self.exporter_class).items()
            if param.default is inspect.Parameter.empty and param.kind is param.KEYWORD_ONLY
        ]
        if not required:
            pytest.skip("the exporter has no required settings")
        for name in required:
            table = {k: v for k, v in contract_settings.items() if k != name}
            with pytest.raises(ConfigError) as caught:
                Hub.from_config(self._document(table), registry=contract_registry)
            assert caught.value.key == f"{_KEY_PREFIX}.{name}", str(caught.value)

    def test_is_registered_by_its_installed_plugin(self) -> None:
        """``PluginRegistry()`` finds the class under its name; a plugin carries its keyword."""
        if not self.installed:
            pytest.skip("set installed = True once a plugin registers the class")
        cls = self.exporter_class
        registry = PluginRegistry()
        assert not registry.errors, f"plugins failed to load: {registry.errors}"
        found = registry.exporter_types().get(cls.name)
        assert found is not None, f"no installed plugin registers type {cls.name!r}"
        assert found.cls is cls, f"type {cls.name!r} is registered by {found.plugin!r}"
        if found.distribution != "obshub":
            keywords = metadata.metadata(found.distribution)["Keywords"] or ""
            assert "obshub-plugin" in re.split(r"[,\s]+", keywords), (
                f"{found.distribution} lacks the keyword 'obshub-plugin' in its metadata"
            )

    # -- secrets -------------------------------------------------------------------------------

    def test_keeps_secrets_out_of_repr_errors_checks_and_logs(
        self,
        backend: Any,
        contract_settings: dict[str, Any],
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
        contract_registry: PluginRegistry,
    ) -> None:
        """Secret values never show in repr/str, errors, check() results or log lines."""
        failing = self.failing_config(backend)
        secrets = self._secrets(contract_settings)
        if failing is not None:
            secrets += self._secrets({**contract_settings, **failing})
        seen: list[str] = []
        with capture_logs() as logs:
            exporter = contract_exporter(log_level="debug")
            seen += [repr(exporter), str(exporter), *_texts_of(exporter.check)]
            seen += _texts_of(lambda: exporter.export(make_trace(kinds=exporter.event_kinds)))
            seen += _texts_of(exporter.flush)
            table = {**contract_settings, "log_level": "debug", "realtime": True}
            hub = contract_hubs.from_config(self._document(table), registry=contract_registry)
            seen += [repr(e) for e in hub.exporters()]
            record_trace(hub)
            hub.flush(self.timeout)
            hub.shutdown(self.timeout)
            if failing is not None:
                broken = contract_exporter(**{**failing, "log_level": "debug"})
                seen += [repr(broken), *_texts_of(broken.check)]
                seen += _texts_of(lambda: broken.export(make_trace(kinds=broken.event_kinds)))
                self._fail_through_hub(contract_exporter, contract_hubs, failing, log_level="debug")
        seen += [repr(entry) for entry in logs]
        for secret in secrets:
            leaks = [text for text in seen if secret in text]
            assert not leaks, f"a secret value appears in: {leaks[0][:300]}"

    # -- exporting -----------------------------------------------------------------------------

    def test_exports_each_event_kind_directly(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``export()`` takes a started, an updated and an ended event without raising."""
        exporter = contract_exporter()
        for kind in EventKind:
            exporter.export([make_event(kind, name=f"{kind.value}-span", type="agent_run")])
        exporter.export(make_trace(kinds=EventKind))

    def test_exports_an_empty_batch(self, contract_exporter: Callable[..., Exporter]) -> None:
        """``export([])`` is a no-op, not an error."""
        contract_exporter().export([])

    def test_exports_errors_events_and_unusual_values(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Every valid span is exportable: each type, errors, events, unicode, big inputs."""
        trace_id, root_id = new_trace_id(), new_span_id()
        root = make_span(trace_id=trace_id, span_id=root_id, name="root", type="agent_run")
        spans = [root]
        spans += [
            make_span(trace_id=trace_id, parent_span_id=root_id, name=t.value, type=t)
            for t in SpanType
        ]
        spans += [
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="failed tool",
                type="tool_call",
                level="error",
                status_message="order service timed out",
                error={"message": "timed out", "type": "TimeoutError", "stack": "Traceback ..."},
            ),
            make_span(trace_id=trace_id, parent_span_id=root_id, name="slow", level="warning"),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="cache-hit",
                is_event=True,
                end_time=root.start_time,
                start_time=root.start_time,
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="ünïcödé ✓ 日本語 🚀",
                input={"text": "naïve café ☕", "nested": {"list": [1, 2.5, None, True]}},
                output="",
                metadata={"empty": {}, "zero": 0},
                tags=("ä", "b c"),
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="large",
                input="x" * 100_000,
                output=["y" * 1000] * 20,
            ),
            make_span(
                trace_id=trace_id,
                parent_span_id=root_id,
                name="bare generation",
                type="model_generation",
                model=None,
                usage={"input": 0},
                cost={"total": 0.0},
            ),
        ]
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        exporter.export([make_event(kind, span=span) for span in spans])

    def test_exports_text_with_lone_surrogates(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Text that is not valid UTF-8 (lone surrogates, as a hub passes them on) is exportable."""
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        broken = "half a pair \ud83d here"
        event = make_event(
            kind,
            name=broken,
            type="model_generation",
            input={"text": broken, broken: "key"},
            output=[broken],
            metadata={"note": broken},
            model=broken,
            session_id=broken,
            tags=(broken,),
        )
        exporter.export([event])

    def test_gets_only_the_event_kinds_it_asks_for_through_a_hub(
        self, contract_exporter: Callable[..., Exporter], contract_hubs: HubFactory
    ) -> None:
        """A hub hands the exporter exactly the kinds in ``event_kinds``, from one worker."""
        exporter = contract_exporter(realtime=True)
        spy = _Spy(exporter)
        hub = contract_hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub)
        assert hub.flush(self.timeout), f"flush failed: {hub.stats()}"
        kinds = {event.kind for event in spy.events}
        assert kinds == set(exporter.event_kinds)
        if EventKind.ENDED in exporter.event_kinds:
            ended = {e.span.span_id for e in spy.events if e.kind is EventKind.ENDED}
            assert len(ended) == TRACE_SPANS
        if exporter.supports_scores():
            assert [s.name for s in spy.scores] == ["helpfulness"]
        assert len(spy.threads) == 1

    def test_delivers_a_realistic_trace_to_its_backend(
        self,
        backend: Any,
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
    ) -> None:
        """A trace recorded through a real hub arrives whole at the backend."""
        exporter = contract_exporter()
        before = self.received(backend, exporter)
        if before is None:
            pytest.skip("override received(backend, exporter) to count what the backend got")
        hub = contract_hubs(exporters=[exporter], service_name="contract-test")
        record_trace(hub)
        assert hub.flush(self.timeout), f"flush failed: {hub.stats()}"
        expected = TRACE_SPANS if EventKind.ENDED in exporter.event_kinds else TRACE_SPANS - 1
        after = self.received(backend, exporter)
        assert after is not None
        assert after - before == expected, f"the backend got {after - before} spans"
        (stats,) = hub.stats().values()
        assert (stats.failed, stats.dropped) == (0, 0), stats

    def test_accepts_a_score_batch_when_it_takes_scores(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """An exporter that overrides ``export_scores`` takes each kind of score, and none."""
        if not self.exporter_class.supports_scores():
            pytest.skip("the exporter does not take scores")
        exporter = contract_exporter()
        exporter.export_scores(
            [
                make_score(),
                make_score(name="resolved", value=True, comment=None),
                make_score(name="tone", value="friendly", span_id=new_span_id()),
                make_score(name="csat", value=4, trace_id=None, session_id="s-42"),
            ]
        )
        exporter.export_scores([])

    def test_leaves_what_it_is_given_unchanged(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``export()`` and ``export_scores()`` change nothing they are given.

        Every exporter of a config receives the very same events and scores, so
        a change made by one would reach the others. Span values are read-only
        (a change raises ``TypeError``); a change made around that
        (``dict.__setitem__``, ``object.__setattr__``) is found by comparing
        what was given before and after the call. Copy what you need to change:
        ``obshub.spans.thaw(value)`` is a mutable deep copy.
        """
        exporter = contract_exporter()
        kinds = exporter.event_kinds
        kind = EventKind.ENDED if EventKind.ENDED in kinds else next(iter(kinds))
        events = [e for e in make_trace(kinds=EventKind) if e.kind in kinds]
        events.append(
            make_event(
                kind,
                name="login",
                type="tool_call",
                input={"user": "u-7", "password": "pw-7f3a", "history": [{"role": "user"}]},
                output=[{"ok": True, "token": "t-9b1c"}],
                metadata={"labels": ["auth"], "client": {"ip": "10.0.0.7"}},
                attributes={"http.headers": {"authorization": "Bearer abc"}},
                parameters={"stop": ["\n"]},
                usage={"input": 3, "output": 1, "details": {"audio": 1}},
            )
        )
        _call_without_changes(exporter.export, events, "export()")
        if exporter.supports_scores():
            scores = [make_score(metadata={"rubric": {"steps": ["a", "b"]}}), make_score()]
            _call_without_changes(exporter.export_scores, scores, "export_scores()")

    # -- failures ------------------------------------------------------------------------------

    def test_raises_export_error_when_the_backend_fails(
        self, backend: Any, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Under ``failing_config`` export() raises ExportError, retryable as expected."""
        exporter = contract_exporter(**self._failing(backend))
        try:
            exporter.export(make_trace(kinds=exporter.event_kinds))
        except ExportError as exc:
            error = exc
        except Exception as exc:
            pytest.fail(
                f"export() raised {type(exc).__name__}: {exc}; failures must raise "
                "obshub.ExportError"
            )
        else:
            pytest.fail("export() returned under failing_config(); it must raise ExportError")
        assert str(error).strip(), "the ExportError has no message"
        if self.expect_retryable is not None:
            assert error.retryable is self.expect_retryable, repr(error)
        if self.expect_pause is not None:
            assert (error.pause is not None) is self.expect_pause, repr(error)
        assert error.retry_after is None or error.retry_after >= 0
        assert error.status is None or isinstance(error.status, int)

    def test_contains_a_failing_backend_inside_the_hub(
        self,
        backend: Any,
        contract_exporter: Callable[..., Exporter],
        contract_hubs: HubFactory,
    ) -> None:
        """Recording never raises; flush() says it failed; the hub counts what was lost."""
        hub, flushed = self._fail_through_hub(
            contract_exporter, contract_hubs, self._failing(backend)
        )
        assert not flushed, "flush() was truthy although every export failed"
        (stats,) = hub.stats().values()
        assert stats.exported == 0, stats
        assert stats.failed + stats.dropped + stats.spooled + stats.rejected >= 1, stats

    def test_check_returns_a_well_formed_result(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """``check()`` returns a CheckResult (bool ok, str message); ok on a working backend."""
        exporter = contract_exporter()
        try:
            result = exporter.check()
        except Exception as exc:
            pytest.fail(f"check() raised {type(exc).__name__}: {exc}; it must return a result")
        assert _check_well_formed(result).ok, result.message

    def test_check_reports_a_failing_backend_without_raising(
        self, backend: Any, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """Under ``failing_config``, an exporter with its own check() reports not ok."""
        exporter = contract_exporter(**self._failing(backend))
        try:
            result = exporter.check()
        except Exception as exc:
            pytest.fail(f"check() raised {type(exc).__name__}: {exc}; it must return a result")
        _check_well_formed(result)
        if type(exporter).check is not Exporter.check:
            assert result.ok is False, result.message

    # -- lifecycle -------------------------------------------------------------------------------

    def test_flush_and_shutdown_are_idempotent(
        self, contract_exporter: Callable[..., Exporter]
    ) -> None:
        """flush() and shutdown() may be called twice, before or after exporting."""
        fresh = contract_exporter()
        fresh.flush()
        fresh.flush()
        fresh.shutdown()
        fresh.shutdown()
        used = contract_exporter()
        used.export(make_trace(kinds=used.event_kinds))
        used.flush()
        used.flush()
        used.shutdown()
        used.shutdown()

    def test_survives_an_export_after_shutdown(
        self, contract_exporter: Callable[..., Exporter], contract_hubs: HubFactory
    ) -> None:
        """After shutdown, export() returns or raises ExportError; the hub drops quietly."""
        exporter = contract_exporter()
        exporter.shutdown()
        calls: list[Callable[[], None]] = [
            lambda: exporter.export(make_trace(kinds=exporter.event_kinds))
        ]
        if exporter.supports_scores():
            calls.append(lambda: exporter.export_scores([make_score()]))
        for call in calls:
            try:
                call()
            except ExportError:
                continue
            except Exception as exc:
                pytest.fail(f"an export after shutdown raised {type(exc).__name__}: {exc}")
        hub = contract_hubs(exporters=[contract_exporter()], service_name="contract-test")
        hub.shutdown(self.timeout)
        hub.shutdown(self.timeout)
        record_trace(hub)
        flushed = hub.flush(self.timeout)
        assert flushed.dropped >= 1, f"flush() after shutdown hid the drops: {flushed!r}"
        assert not flushed.timed_out, f"flush() after shutdown waited: {flushed!r}"
