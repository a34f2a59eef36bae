"""Contract checks on how an exporter is built and configured, and on its secrets."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pytest
from structlog.testing import capture_logs

from obshub._config import exporter_parameters
from obshub._config_errors import ConfigError
from obshub._exporters import CheckResult, Exporter
from obshub._hub import Hub
from obshub._plugins import PluginRegistry
from obshub.spans import (
    EventKind,
)
from obshub.testing._contract_base import (
    _INSTANCE,
    _KEY_PREFIX,
    _ContractBase,
)
from obshub.testing._factories import (
    make_trace,
    record_trace,
)
from obshub.testing._hubs import HubFactory

__all__ = ["ConfigChecks"]

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


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
    pytest.param("delivery", "fork", "delivery", id="delivery-unknown"),
    pytest.param("delivery", True, "delivery", id="delivery-bool"),
    pytest.param(
        "sampling",
        {"strategy": "ratio", "probability": 2},
        "sampling.probability",
        id="sampling.probability-too-big",
    ),
    pytest.param("redact", 3, "redact", id="redact-number"),
    pytest.param("processors", ["no-such-processor"], "processors[0]", id="processors-unknown"),
    pytest.param("pii", "everything", "pii", id="pii-string"),
    pytest.param("pii_action", "erase", "pii_action", id="pii_action-unknown"),
]


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


class ConfigChecks(_ContractBase):
    """Construction from keywords and config tables, validation, registration, secrets."""

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
