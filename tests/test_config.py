"""Config files and dicts: validation up front, full key paths, env interpolation, no secrets."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

import obshub
from obshub import ConfigError
from obshub._config import DEFAULT_CONFIG, default_config, discover_config, interpolate
from obshub._plugins import PluginRegistry

SECRET = "sk-lf-1234567890abcdef-very-secret"

FULL_TOML = """
default = "prod"

[configs.prod]
service_name = "support-bot"
sampling = { strategy = "ratio", probability = 0.25 }
redact = ["password", "api_key"]

[configs.prod.exporters.archive]
type = "jsonl"
realtime = false
log_level = "warn"
path = "${TRACE_DIR}/traces.jsonl"
batch = { max_size = 50, interval = 0.5 }
max_queue_size = 1000
retry = { max_attempts = 3, initial_backoff = 0.1 }

[configs.prod.exporters.memory]
realtime = true
log_level = "debug"

[configs.dev]
service_name = "${SERVICE:-support-bot-dev}"

[configs.dev.exporters.console]
stream = "stderr"
color = "never"
"""


def build(data: dict[str, Any], **kwargs: Any) -> obshub.Hub:
    """Build (and immediately shut down) a hub from ``data``; raises ConfigError."""
    hub = obshub.Hub.from_config(data, **kwargs)
    hub.shutdown(timeout=5)
    return hub


def one_exporter(table: dict[str, Any], name: str = "local") -> dict[str, Any]:
    return {"configs": {"prod": {"exporters": {name: table}}}}


def error_of(data: dict[str, Any], **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        build(data, **kwargs)
    return raised.value


# -- loading -----------------------------------------------------------------------------


def test_a_toml_file_builds_every_config_and_exporter_with_its_settings(
    hub_factory: Any, tmp_path: Path
) -> None:
    path = tmp_path / "obshub.toml"
    path.write_text(FULL_TOML)
    hub = hub_factory.from_config(path, environ={"TRACE_DIR": str(tmp_path)})
    assert hub.default == "prod"
    prod, dev = hub.configs["prod"], hub.configs["dev"]
    assert prod.service_name == "support-bot"
    assert (prod.sampler.strategy, prod.sampler.probability) == ("ratio", 0.25)
    redactor = prod.processors[0]
    assert isinstance(redactor, obshub.Redactor)
    assert redactor.is_secret_key("API-Key")
    archive, memory = prod.exporters
    assert isinstance(archive, obshub.JsonlExporter)
    assert archive.instance_name == "archive"
    assert archive.path == tmp_path / "traces.jsonl"
    assert (archive.realtime, archive.log_level) == (False, "warn")
    assert (archive.batch.max_size, archive.batch.interval) == (50, 0.5)
    assert archive.max_queue_size == 1000
    assert (archive.retry.max_attempts, archive.retry.initial_backoff) == (3, 0.1)
    assert isinstance(memory, obshub.MemoryExporter)  # type defaults to the instance name
    assert (memory.realtime, memory.log_level) == (True, "debug")
    assert dev.service_name == "support-bot-dev"
    (console,) = dev.exporters
    assert isinstance(console, obshub.ConsoleExporter)
    assert (console.stream, console.color) == ("stderr", "never")


def test_a_dict_of_the_same_shape_builds_the_same_hub(hub_factory: Any) -> None:
    hub = hub_factory.from_config(
        {
            "configs": {
                "prod": {
                    "service_name": "svc",
                    "sampling": "never",
                    "exporters": {"mem": {"type": "memory", "batch": {"max_size": 2}}},
                }
            }
        }
    )
    (exporter,) = hub.exporters()
    assert exporter.instance_name == "mem"
    assert exporter.batch.max_size == 2
    assert hub.configs["prod"].sampler.strategy == "never"


def test_exporters_may_be_a_list_of_tables_named_by_name_or_type(hub_factory: Any) -> None:
    hub = hub_factory.from_config(
        {
            "configs": {
                "prod": {
                    "exporters": [
                        {"type": "memory", "name": "first"},
                        {"type": "memory", "name": "second", "realtime": False},
                        {"type": "console"},
                    ]
                }
            }
        }
    )
    assert [e.instance_name for e in hub.exporters()] == ["first", "second", "console"]
    assert hub.exporters()[1].realtime is False


def test_disabled_configs_and_exporters_are_skipped(hub_factory: Any) -> None:
    hub = hub_factory.from_config(
        {
            "configs": {
                "off": {"enabled": False, "exporters": {"memory": {}}},
                "on": {
                    "exporters": {
                        "memory": {"enabled": False},
                        "console": {"enabled": True},
                    }
                },
            }
        }
    )
    assert list(hub.configs) == ["on"]
    assert [e.instance_name for e in hub.exporters()] == ["console"]


def test_a_default_naming_a_disabled_config_is_an_error() -> None:
    error = error_of({"default": "off", "configs": {"off": {"enabled": False}, "on": {}}})
    assert error.key == "default"
    assert "no config named 'off'" in str(error)


def test_a_missing_file_and_invalid_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        obshub.Hub.from_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[configs.prod\nservice_name = 1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        obshub.Hub.from_config(bad)


def test_the_built_in_default_config_has_a_console_and_a_jsonl_exporter(
    hub_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    hub = hub_factory.from_config(DEFAULT_CONFIG)
    assert sorted(type(e).name for e in hub.exporters()) == ["console", "jsonl"]


def test_config_discovery_prefers_the_flag_then_the_env_var_then_the_local_file(
    tmp_path: Path,
) -> None:
    local = tmp_path / "obshub.toml"
    env = {"OBSHUB_CONFIG": "/etc/obshub.toml"}
    assert discover_config("given.toml", env, tmp_path)[0] == "given.toml"
    assert discover_config(None, env, tmp_path)[0] == "/etc/obshub.toml"
    assert discover_config(None, {}, tmp_path)[0] == default_config()
    local.write_text("")
    assert discover_config(None, {}, tmp_path)[0] == str(local)


# -- interpolation -------------------------------------------------------------------------


def test_env_vars_are_interpolated_with_defaults_and_double_dollar_is_literal() -> None:
    env = {"HOST": "example.com", "EMPTY": ""}
    assert interpolate("https://${HOST}/x", env) == "https://example.com/x"
    assert interpolate("${MISSING:-fallback}", env) == "fallback"
    assert interpolate("${EMPTY:-fallback}", env) == "fallback"
    assert interpolate("${MISSING:-}", env) == ""
    assert interpolate("cost: $$5", env) == "cost: $5"
    assert interpolate({"a": ["${HOST}"], "n": 3}, env) == {"a": ["example.com"], "n": 3}


def test_an_env_var_value_is_not_interpolated_again() -> None:
    assert interpolate("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_a_missing_env_var_is_an_error_naming_the_variable_and_the_key_path() -> None:
    data = one_exporter({"type": "jsonl", "path": "${TRACE_DIR}/t.jsonl"})
    error = error_of(data, environ={})
    assert error.key == "configs.prod.exporters.local.path"
    assert "TRACE_DIR" in str(error)
    assert str(error).startswith("configs.prod.exporters.local.path: ")


def test_interpolation_uses_the_process_environment_by_default(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSHUB_TEST_SERVICE", "from-env")
    hub = hub_factory.from_config({"configs": {"p": {"service_name": "${OBSHUB_TEST_SERVICE}"}}})
    assert hub.configs["p"].service_name == "from-env"


# -- unknown keys, at every level ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"configs": {}, "defaults": "x"}, "defaults"),
        ({"configs": {"prod": {"service": "x"}}}, "configs.prod.service"),
        (one_exporter({"type": "memory", "colour": "x"}), "configs.prod.exporters.local.colour"),
        (
            one_exporter({"type": "memory", "batch": {"max_size": 1, "size": 2}}),
            "configs.prod.exporters.local.batch.size",
        ),
        (
            one_exporter({"type": "memory", "retry": {"attempts": 2}}),
            "configs.prod.exporters.local.retry.attempts",
        ),
        (
            {"configs": {"prod": {"sampling": {"strategy": "ratio", "prob": 0.1}}}},
            "configs.prod.sampling.prob",
        ),
        (
            one_exporter({"type": "memory", "instance_name": "x"}),
            "configs.prod.exporters.local",
        ),
    ],
    ids=["top", "config", "exporter", "batch", "retry", "sampling", "instance_name"],
)
def test_unknown_keys_are_rejected_with_their_full_key_path(data: dict[str, Any], key: str) -> None:
    error = error_of(data)
    assert error.key == key
    assert str(error).startswith(f"{key}: ")


def test_an_unknown_exporter_key_error_lists_the_keys_the_type_accepts() -> None:
    error = error_of(one_exporter({"type": "jsonl", "file": "x.jsonl"}))
    assert "unknown key for exporter type 'jsonl'" in str(error)
    assert "path" in str(error)
    assert "realtime" in str(error)


# -- values --------------------------------------------------------------------------------


def test_a_bad_batch_size_names_the_full_path_and_the_rule() -> None:
    error = error_of(one_exporter({"type": "jsonl", "batch": {"max_size": 0}}))
    assert str(error) == "configs.prod.exporters.local.batch.max_size: must be >= 1, got 0"


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"realtime": "yes"}, "realtime", "true or false"),
        ({"log_level": "loud"}, "log_level", "debug"),
        ({"max_queue_size": 0}, "max_queue_size", ">= 1"),
        ({"max_queue_size": 1.5}, "max_queue_size", "integer"),
        ({"batch": {"interval": 0}}, "batch.interval", "> 0"),
        ({"batch": {"max_size": "10"}}, "batch.max_size", "integer"),
        ({"batch": 5}, "batch", "table"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts", ">= 1"),
        ({"retry": {"jitter": 2}}, "retry.jitter", "between 0 and 1"),
        ({"retry": "often"}, "retry", "table"),
        ({"enabled": "maybe"}, "enabled", "true or false"),
        ({"type": ""}, "type", "non-empty"),
    ],
)
def test_wrong_values_of_common_exporter_keys_name_the_key_path(
    table: dict[str, Any], key: str, problem: str
) -> None:
    error = error_of(one_exporter({"type": "memory", **table}))
    assert error.key == f"configs.prod.exporters.local.{key}"
    assert problem in str(error)


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"type": "jsonl", "path": 5}, "path", "must be a string, got an integer"),
        ({"type": "jsonl", "fsync": "yes"}, "fsync", "true or false"),
        ({"type": "jsonl", "events": ["ended", "finished"]}, "events[1]", "started"),
        ({"type": "console", "stream": "stdlog"}, "stream", "stdout or stderr"),
        ({"type": "console", "max_pending_traces": 0}, "max_pending_traces", ">= 1"),
    ],
)
def test_wrong_values_of_an_exporters_own_keys_name_the_key_path(
    table: dict[str, Any], key: str, problem: str
) -> None:
    error = error_of(one_exporter(table))
    assert error.key == f"configs.prod.exporters.local.{key}"
    assert problem in str(error)


@pytest.mark.parametrize(
    ("config", "key", "problem"),
    [
        ({"service_name": 5}, "configs.prod.service_name", "non-empty string"),
        ({"service_name": ""}, "configs.prod.service_name", "non-empty string"),
        ({"sampling": "sometimes"}, "configs.prod.sampling.strategy", "always, never, ratio"),
        (
            {"sampling": {"strategy": "ratio", "probability": 2}},
            "configs.prod.sampling.probability",
            "between 0 and 1",
        ),
        ({"sampling": {"strategy": "ratio"}}, "configs.prod.sampling.probability", "required"),
        (
            {"sampling": {"strategy": "always", "probability": 0.5}},
            "configs.prod.sampling.probability",
            "only allowed",
        ),
        ({"sampling": 0.5}, "configs.prod.sampling", "string or a table"),
        ({"redact": "password"}, "configs.prod.redact", "true, false or a list"),
        ({"exporters": 5}, "configs.prod.exporters", "table or a list"),
        ({"enabled": "sometimes"}, "configs.prod.enabled", "true or false"),
    ],
)
def test_wrong_values_at_config_level_name_the_key_path(
    config: dict[str, Any], key: str, problem: str
) -> None:
    error = error_of({"configs": {"prod": config}})
    assert error.key == key
    assert problem in str(error)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "configs"),
        ({"configs": []}, "configs"),
        ({"configs": {"prod": 5}}, "configs.prod"),
        ({"configs": {"prod": {}}, "default": 5}, "default"),
    ],
)
def test_a_document_of_the_wrong_shape_names_the_key(data: dict[str, Any], key: str) -> None:
    assert error_of(data).key == key


def core_only_registry() -> PluginRegistry:
    """Only the built-in exporter types: no first-party plugin installed."""
    return PluginRegistry(entry_points=[], environ={})


def test_a_misspelt_installed_type_suggests_the_closest_and_no_unknown_package() -> None:
    error = error_of(one_exporter({"type": "langfuze"}, name="traces"))
    assert error.key == "configs.prod.exporters.traces.type"
    assert "did you mean 'langfuse'?" in str(error)
    assert "memory" in str(error)  # the installed types are listed
    assert "pip install" not in str(error)  # obshub-langfuze does not exist


def test_a_first_party_type_that_is_not_installed_names_its_extra() -> None:
    error = error_of(one_exporter({"type": "langfuse"}), registry=core_only_registry())
    assert "is not installed; install it with: pip install 'obshub[langfuse]'" in str(error)


def test_a_misspelt_first_party_type_that_is_not_installed_suggests_it_and_its_extra() -> None:
    error = error_of(one_exporter({"type": "otpl"}), registry=core_only_registry())
    assert "did you mean 'otlp'?" in str(error)
    assert "pip install 'obshub[otlp]'" in str(error)


def test_an_exporter_instance_named_after_an_unknown_type_recommends_no_package() -> None:
    error = error_of({"configs": {"prod": {"exporters": {"carrier-pigeon": {}}}}})
    assert "unknown exporter type 'carrier-pigeon'" in str(error)
    assert "obshub-carrier-pigeon" not in str(error)
    assert "obshub plugins" in str(error)


def test_every_mistake_of_a_document_is_reported_at_once(
    webhook_registry: PluginRegistry,
) -> None:
    data = {
        "colour": "blue",
        "configs": {
            "prod": {
                "exporters": {
                    "hook": {"type": "webhook"},  # url missing
                    "hook2": {"type": "webhook", "timeout": "5", "retries": 3},
                },
            },
            "dev": {"service_name": "", "exporters": {"x": {"type": "jsonl", "realtime": 1}}},
        },
    }
    error = error_of(data, registry=webhook_registry)
    keys = [e.key for e in error.errors]
    assert keys == [
        "colour",
        "configs.prod.exporters.hook.url",
        "configs.prod.exporters.hook2.retries",
        "configs.prod.exporters.hook2.timeout",
        "configs.prod.exporters.hook2.url",
        "configs.dev.service_name",
        "configs.dev.exporters.x.realtime",
    ]
    text = str(error)
    assert text.startswith("7 config errors:\n")
    assert all(f"  - {e}" in text for e in error.errors)


def test_two_missing_keys_of_one_exporter_are_both_named() -> None:
    class TwoKeys(obshub.Exporter):
        name = "twokeys"

        def __init__(self, *, host: str, port: int, **common: Any) -> None:
            super().__init__(**common)

        def export(self, events: Any) -> None:
            pass

    plugin = types.ModuleType("twokeys_plugin")

    @obshub.hookimpl
    def obshub_register_exporters(register: Any) -> None:
        register(TwoKeys)

    plugin.obshub_register_exporters = obshub_register_exporters  # type: ignore[attr-defined]
    registry = PluginRegistry(entry_points=[], environ={}, extra_plugins=[plugin])
    error = error_of(one_exporter({"type": "twokeys"}), registry=registry)
    assert [e.key for e in error.errors] == [
        "configs.prod.exporters.local.host",
        "configs.prod.exporters.local.port",
    ]


def test_type_mistakes_use_one_wording() -> None:
    assert "must be a table, got a list" in str(error_of({"configs": []}))
    assert "must be a string, got an integer" in str(error_of({"configs": {}, "default": 5}))
    assert "must be a table, got an integer" in str(error_of({"configs": {"prod": 5}}))


def test_a_duplicate_exporter_name_in_code_points_at_instance_name() -> None:
    from obshub._builtin.memory import MemoryExporter

    data = {"configs": {"prod": {"exporters": [MemoryExporter(), MemoryExporter()]}}}
    error = error_of(data)
    assert "duplicate exporter name 'memory'" in str(error)
    assert "`instance_name=`" in str(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("off", False), ("YES", True), ("0", False)],
)
def test_an_interpolated_boolean_key_takes_true_and_false_words(
    monkeypatch: pytest.MonkeyPatch, hub_factory: Any, text: str, expected: bool
) -> None:
    monkeypatch.setenv("REALTIME", text)
    hub = hub_factory.from_config(one_exporter({"type": "memory", "realtime": "${REALTIME}"}))
    (exporter,) = hub.exporters()
    assert exporter.realtime is expected


def test_an_interpolated_default_gives_numbers_and_booleans(hub_factory: Any) -> None:
    table = {
        "type": "memory",
        "realtime": "${OBSHUB_TEST_UNSET_RT:-true}",
        "max_queue_size": "${OBSHUB_TEST_UNSET_Q:-1234}",
    }
    hub = hub_factory.from_config(one_exporter(table), environ={})
    (exporter,) = hub.exporters()
    assert exporter.realtime is True
    assert exporter.max_queue_size == 1234


def test_an_interpolated_value_that_does_not_parse_is_still_a_type_error() -> None:
    error = error_of(one_exporter({"type": "memory", "realtime": "${RT:-maybe}"}), environ={})
    assert str(error) == (
        "configs.prod.exporters.local.realtime: must be true or false, got a string"
    )


def test_a_literal_string_is_not_converted() -> None:
    error = error_of(one_exporter({"type": "memory", "realtime": "true"}))
    assert "must be true or false, got a string" in str(error)


class WebhookExporter(obshub.Exporter):
    name = "webhook"
    secret_keys = frozenset({"token"})

    def __init__(self, *, url: str, token: str = "", timeout: float = 5.0, **common: Any) -> None:
        super().__init__(**common)
        if not url.startswith("https://"):
            raise ValueError("url must use https")
        self.url = url
        self.token = token
        self.timeout = timeout

    def export(self, events: Any) -> None:
        pass


@pytest.fixture
def webhook_registry() -> PluginRegistry:
    plugin = types.ModuleType("webhook_plugin")

    @obshub.hookimpl
    def obshub_register_exporters(register: Any) -> None:
        register(WebhookExporter)

    plugin.obshub_register_exporters = obshub_register_exporters  # type: ignore[attr-defined]
    return PluginRegistry(entry_points=[], environ={}, extra_plugins=[plugin])


def test_a_required_exporter_setting_that_is_missing_is_named(
    webhook_registry: PluginRegistry,
) -> None:
    error = error_of(one_exporter({"type": "webhook"}), registry=webhook_registry)
    assert error.key == "configs.prod.exporters.local.url"
    assert "required" in str(error)


def test_an_exporter_rejecting_its_settings_is_reported_under_its_path(
    webhook_registry: PluginRegistry,
) -> None:
    error = error_of(
        one_exporter({"type": "webhook", "url": "http://x"}), registry=webhook_registry
    )
    assert error.key == "configs.prod.exporters.local"
    assert "url must use https" in str(error)


def test_a_plugin_exporter_is_built_with_its_own_keys(
    hub_factory: Any, webhook_registry: PluginRegistry
) -> None:
    hub = hub_factory.from_config(
        one_exporter({"type": "webhook", "url": "https://x", "timeout": 2}),
        registry=webhook_registry,
    )
    (exporter,) = hub.exporters()
    assert isinstance(exporter, WebhookExporter)
    assert (exporter.url, exporter.timeout) == ("https://x", 2)


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        one_exporter({"type": "memory", "secret_key": SECRET}),
        one_exporter({"type": "memory", "log_level": SECRET}),
        one_exporter({"type": "memory", "realtime": SECRET}),
        one_exporter({"type": "memory", "batch": SECRET}),
        one_exporter({"type": "memory", "batch": {"max_size": SECRET}}),
        one_exporter({"type": "memory", "retry": {"max_attempts": SECRET}}),
        one_exporter({"type": "memory", "max_queue_size": SECRET}),
        one_exporter({"type": "jsonl", "path": [SECRET]}),
        one_exporter({"type": "webhook", "url": "https://x", "token": 12345, "x": SECRET}),
        one_exporter({"type": "webhook", "url": "https://x", "timeout": SECRET}),
        {"configs": {"prod": {"service_name": [SECRET]}}},
        {"configs": {"prod": {"sampling": {"strategy": SECRET}}}},
        {"configs": {"prod": {"sampling": {"strategy": "ratio", "probability": SECRET}}}},
        {"configs": {"prod": {"redact": SECRET}}},
        {"configs": {"prod": {"enabled": SECRET}}},
        {"configs": {"prod": {"exporters": SECRET}}},
        {"configs": {"prod": SECRET}},
        {"configs": SECRET},
        {"configs": {"prod": {}}, "default": [SECRET]},
    ],
)
def test_config_errors_never_echo_a_secret_value(
    data: dict[str, Any], webhook_registry: PluginRegistry
) -> None:
    error = error_of(data, registry=webhook_registry)
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert SECRET[:12] not in str(error)


def test_a_missing_env_var_error_does_not_echo_other_values() -> None:
    data = one_exporter({"type": "jsonl", "path": f"{SECRET}/${{NOPE}}"})
    error = error_of(data, environ={})
    assert SECRET not in str(error)
    assert "NOPE" in str(error)


# -- enabled, interpolation order, configs given in code -------------------------------------


def test_a_disabled_table_does_not_need_its_env_vars(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    hub = hub_factory.from_config(
        {
            "configs": {
                "on": {
                    "exporters": {
                        "mem": {"type": "memory"},
                        "off": {
                            "type": "jsonl",
                            "enabled": False,
                            "path": "${NOT_SET_ANYWHERE}",
                        },
                    }
                },
                "later": {"enabled": False, "service_name": "${NOT_SET_ANYWHERE}"},
            }
        }
    )
    assert list(hub.configs) == ["on"]
    assert [e.instance_name for e in hub.exporters()] == ["mem"]


def test_enabled_may_come_from_an_env_var(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE_EXPORT", "false")
    hub = hub_factory.from_config(
        one_exporter({"type": "memory", "enabled": "${FILE_EXPORT:-true}"})
    )
    assert hub.exporters() == []


def test_configs_given_as_dicts_in_code_are_interpolated_and_honour_enabled(
    hub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SVC", "from-env")
    hub = hub_factory(
        configs={
            "a": {"service_name": "${SVC}", "exporters": [obshub.MemoryExporter()]},
            "b": {"enabled": False},
        }
    )
    assert list(hub.configs) == ["a"]
    assert hub.configs["a"].service_name == "from-env"


def test_config_level_options_with_configs_are_rejected_not_ignored() -> None:
    with pytest.raises(ConfigError, match="put them in each config"):
        obshub.Hub(configs={"a": {}}, service_name="lost")


def test_an_exporter_disabled_in_code_is_listed_but_gets_nothing(hub_factory: Any) -> None:
    off = obshub.MemoryExporter(enabled=False, instance_name="off")
    on = obshub.MemoryExporter(instance_name="on")
    hub = hub_factory(exporters=[off, on])
    with hub.span("work"):
        pass
    assert hub.flush(timeout=5)
    assert [e.instance_name for e in hub.exporters()] == ["off", "on"]
    assert list(hub.stats()) == ["default/on"]
    assert off.events == []
    assert len(on.spans()) == 1


def test_a_wrong_spool_dir_type_names_the_key_path() -> None:
    error = error_of(one_exporter({"type": "memory", "spool_dir": 5}))
    assert error.key == "configs.prod.exporters.local.spool_dir"


def test_the_built_in_default_also_records_to_a_store_when_a_sqlite_type_is_installed(
    hub_factory: Any,
) -> None:
    class SqliteStandIn(obshub.MemoryExporter):
        name = "sqlite"

        def __init__(self, *, path: str, **common: Any) -> None:
            super().__init__(**common)
            self.path = path

    class StorePlugin:
        @obshub.hookimpl
        def obshub_register_exporters(self, register: Any) -> None:
            register(SqliteStandIn)

    from obshub._plugins import PluginRegistry

    without = PluginRegistry(entry_points=[], extra_plugins=[])
    assert default_config(without) is DEFAULT_CONFIG
    with_store = PluginRegistry(entry_points=[], extra_plugins=[StorePlugin()])
    config = default_config(with_store)
    exporters = config["configs"]["default"]["exporters"]
    assert exporters["studio"] == {"type": "sqlite", "path": "obshub-traces.db", "realtime": True}
    assert set(exporters) == {"console", "jsonl", "studio"}
    # The constant itself is left as it was.
    assert "studio" not in DEFAULT_CONFIG["configs"]["default"]["exporters"]
