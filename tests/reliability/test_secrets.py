"""A password in a backend URL never leaves: reprs, errors, check(), ``obshub check``, logs.

Each HTTP exporter (Langfuse, OTLP, the example webhook) is given
``http://admin:PASS@127.0.0.1:<port>`` as its URL, against loopback servers
that fail in the ways that make messages quote the URL: an error status
whose body echoes the URL (password included, as a careless server would),
a refused connection, a server that never answers. Before one scrubbing
helper owned this, the Langfuse exporter showed ``PASS`` in its repr, its
``check()`` message and details, and ``obshub check``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_langfuse import LangfuseExporter
from obshub_otlp import OtlpExporter
from obshub_webhook import WebhookExporter
from structlog.testing import capture_logs

import obshub
from obshub import _cli as cli
from obshub.testing import HttpReceiver, make_trace, unreachable_url, wait_for
from obshub.testing.net import MisbehavingServer, silent

PASSWORD = "PASS"
TOKEN = "qt0k3n-value"
FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.02, "max_attempts": 2}


def with_password(base: str) -> str:
    """``base`` (``http://127.0.0.1:<port>``) with user info and a secret query parameter."""
    return base.replace("http://", f"http://admin:{PASSWORD}@")


#: (type name, settings for a base URL with a password in it, path the exporter posts to)
Maker = Callable[[str], dict[str, Any]]
EXPORTERS: dict[str, tuple[str, Maker]] = {
    "langfuse": (
        "langfuse",
        lambda base: {
            "public_key": "pk-lf-1",
            "secret_key": "sk-lf-1",
            "base_url": with_password(base),
        },
    ),
    "otlp": ("otlp", lambda base: {"endpoint": f"{with_password(base)}/v1/traces?token={TOKEN}"}),
    "webhook": ("webhook", lambda base: {"url": f"{with_password(base)}/hook?api_key={TOKEN}"}),
}
CLASSES: dict[str, type[obshub.Exporter]] = {
    "langfuse": LangfuseExporter,
    "otlp": OtlpExporter,
    "webhook": WebhookExporter,
}


@pytest.fixture(params=sorted(EXPORTERS))
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def echoing() -> Iterator[HttpReceiver]:
    """A server that answers every request with an error that quotes the URL, password and all."""
    with HttpReceiver() as server:
        yield server


def build(kind: str, base: str, **extra: Any) -> obshub.Exporter:
    _, settings = EXPORTERS[kind]
    return CLASSES[kind](**settings(base), timeout=0.5, **extra)


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text, text
        assert TOKEN not in text, text


def test_the_repr_never_shows_the_password(kind: str) -> None:
    exporter = build(kind, "http://127.0.0.1:9")
    assert_clean(repr(exporter))
    assert "admin:***@127.0.0.1" in repr(exporter)


@pytest.mark.parametrize("status", [400, 401, 500])
def test_errors_quoting_the_url_never_show_the_password(
    kind: str, echoing: HttpReceiver, status: int
) -> None:
    echoing.respond(
        status, body=f"rejected {with_password(echoing.url)}/x?token={TOKEN} ({PASSWORD})", times=9
    )
    exporter = build(kind, echoing.url)
    with capture_logs() as logs, pytest.raises(obshub.ExportError) as caught:
        exporter.export(make_trace())
    assert_clean(str(caught.value), repr(caught.value), json.dumps(logs, default=str))


@pytest.mark.parametrize("failure", ["refused", "silent"])
def test_transport_errors_never_show_the_password(kind: str, failure: str) -> None:
    if failure == "refused":
        exporter = build(kind, unreachable_url().rstrip("/"))
        with pytest.raises(obshub.ExportError) as caught:
            exporter.export(make_trace())
    else:
        with MisbehavingServer(silent) as server:
            exporter = build(kind, server.url)
            with pytest.raises(obshub.ExportError) as caught:
                exporter.export(make_trace())
    assert caught.value.retryable
    assert_clean(str(caught.value))


@pytest.mark.parametrize("status", [200, 401, 403, 404, 500])
def test_check_messages_and_details_never_show_the_password(
    kind: str, echoing: HttpReceiver, status: int
) -> None:
    echoing.respond(status, body=f"echo {with_password(echoing.url)}?token={TOKEN}", times=9)
    result = build(kind, echoing.url).check()
    assert_clean(result.message, json.dumps(result.details, default=str))
    unreachable = build(kind, unreachable_url().rstrip("/")).check()
    assert not unreachable.ok
    assert_clean(unreachable.message, json.dumps(unreachable.details, default=str))


def test_a_hub_failing_to_deliver_logs_no_password(
    kind: str, echoing: HttpReceiver, tmp_path: Path, kit: Any, figures: Any
) -> None:
    echoing.respond(503, body=f"down: {with_password(echoing.url)} {PASSWORD}", times=1000)
    exporter = build(
        kind,
        echoing.url,
        retry=FAST_RETRY,
        batch={"max_size": 10, "interval": 0.05},
        spool_dir=tmp_path / "spool",
    )
    with capture_logs() as logs:
        hub = obshub.Hub(exporters=[exporter], service_name="secrets")
        try:
            for i in range(20):
                with hub.span("step", input={"i": i}):
                    pass
            wait_for(lambda: kit.only_stats(hub).spooled == 20, timeout=kit.WAIT)
        finally:
            hub.shutdown(timeout=2.0)
    text = json.dumps(logs, default=str)
    kit.report(
        figures,
        f"secrets_logs_{kind}",
        log_events=len(logs),
        password_in_logs=text.count(PASSWORD),
    )
    assert logs
    assert_clean(text, repr(hub.stats()))


def test_obshub_check_prints_no_password(
    echoing: HttpReceiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kit: Any,
    figures: Any,
) -> None:
    echoing.respond(401, body=f"who are you, {with_password(echoing.url)}?", times=9)
    tables = []
    for name, (type_name, settings) in EXPORTERS.items():
        values = {"type": type_name, "timeout": 1.0, **settings(echoing.url)}
        lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
        tables.append(f"[configs.main.exporters.{name}]\n{lines}\n")
    config = tmp_path / "obshub.toml"
    config.write_text("".join(tables), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    code = cli.main(["check", "--config", str(config)], out=out)
    printed = out.getvalue()
    stderr = capsys.readouterr().err
    kit.report(
        figures,
        "secrets_cli_check",
        exit_code=code,
        password_in_output=printed.count(PASSWORD) + stderr.count(PASSWORD),
    )
    for name in ("langfuse", "otlp", "webhook"):
        assert name in printed
    assert_clean(printed, stderr)
