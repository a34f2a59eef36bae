"""The ``obshub_register_commands`` hook: plugins add ``obshub`` subcommands, each guarded."""

from __future__ import annotations

import argparse
import io
from typing import Any, TextIO

import pytest

import obshub
from obshub import _cli as cli
from obshub._plugins import PluginRegistry


def greet(args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"hello {args.who}\n")
    return 3


def greet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--who", default="world")


class Greeter:
    @obshub.hookimpl
    def obshub_register_commands(self, register: Any) -> None:
        register("greet", greet, help="say hello", arguments=greet_arguments)


class Raising:
    @obshub.hookimpl
    def obshub_register_commands(self, register: Any) -> None:
        raise RuntimeError("boom in register")


class TakesABuiltInName:
    @obshub.hookimpl
    def obshub_register_commands(self, register: Any) -> None:
        register("check", greet)


class BadArguments:
    @obshub.hookimpl
    def obshub_register_commands(self, register: Any) -> None:
        def arguments(parser: argparse.ArgumentParser) -> None:
            raise ValueError("cannot add options")

        register("fragile", greet, arguments=arguments)


def run_with(registry: PluginRegistry, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli, "get_registry", lambda: registry)
    out = io.StringIO()
    return cli.main(argv, out=out), out.getvalue()


def test_a_plugin_command_is_registered_and_runs_with_its_own_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = PluginRegistry(entry_points=[], extra_plugins=[Greeter()])
    command = registry.commands()["greet"]
    assert (command.help, command.plugin) == ("say hello", "Greeter")
    code, out = run_with(registry, ["greet", "--who", "studio"], monkeypatch)
    assert (code, out) == (3, "hello studio\n")


def test_a_raising_command_hook_is_reported_and_the_other_plugins_keep_their_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = PluginRegistry(entry_points=[], extra_plugins=[Raising(), Greeter()])
    [error] = registry.errors
    assert (error.plugin, error.stage) == ("Raising", "register")
    assert "boom in register" in error.error
    assert list(registry.commands()) == ["greet"]
    assert run_with(registry, ["greet"], monkeypatch) == (3, "hello world\n")


def test_a_plugin_cannot_take_a_built_in_command_name() -> None:
    registry = PluginRegistry(entry_points=[], extra_plugins=[TakesABuiltInName()])
    assert registry.commands() == {}
    [error] = registry.errors
    assert "'check' is a built-in obshub command" in error.error


def test_a_command_whose_options_cannot_be_added_fails_alone_with_a_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = PluginRegistry(entry_points=[], extra_plugins=[BadArguments(), Greeter()])
    code, out = run_with(registry, ["fragile"], monkeypatch)
    assert code == 2
    assert "its 'fragile' command is broken: ValueError: cannot add options" in out
    assert run_with(registry, ["greet"], monkeypatch) == (3, "hello world\n")


def test_plugin_commands_appear_in_the_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = PluginRegistry(entry_points=[], extra_plugins=[Greeter()])
    monkeypatch.setattr(cli, "get_registry", lambda: registry)
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "greet" in capsys.readouterr().out


def test_a_built_in_command_keeps_its_name_even_if_a_plugin_registered_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from structlog.testing import capture_logs

    from obshub import _plugins

    # A registry that does not know every CLI name (e.g. one added to the CLI later).
    monkeypatch.setattr(_plugins, "RESERVED_COMMANDS", frozenset())
    registry = PluginRegistry(entry_points=[], extra_plugins=[TakesABuiltInName()])
    assert "check" in registry.commands()
    monkeypatch.setattr(cli, "get_registry", lambda: registry)
    with capture_logs() as logs:
        parser = cli.build_parser()
    assert parser.parse_args(["check"]).func is cli.cmd_check
    assert {
        "event": "plugin_command_shadowed",
        "plugin": "TakesABuiltInName",
        "command": "check",
        "log_level": "warning",
    } in logs
