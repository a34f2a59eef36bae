"""Interop: a realistic agent trace sent to the real Arize Phoenix and MLflow, read back.

The receivers come from PyPI, each in its own venv (``scripts/interop-receivers``);
``OBSHUB_INTEROP_DIR`` overrides where they are looked for (default
``<repo>/.interop``). Each server runs on 127.0.0.1 with a free port, a
temporary data folder and its telemetry off, and only its own process is
stopped after the module. Locally the tests skip when the receivers are
not installed; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from obshub_otlp import OtlpExporter

import obshub
from obshub.testing import wait_for

REPO = Path(__file__).resolve().parents[4]
INTEROP_DIR = Path(os.environ.get("OBSHUB_INTEROP_DIR", REPO / ".interop"))
LAUNCHER = Path(__file__).with_name("phoenix_launcher.py")
#: How long a receiver may take to answer after its start (a cold start on 2 cores).
START_TIMEOUT = 120.0
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def venv_python(name: str) -> Path:
    """The Python of the receiver's venv, or skip (fail in CI) when it is not installed."""
    python = INTEROP_DIR / name / "bin" / "python"
    if not python.exists():
        reason = (
            f"{name} is not installed in {INTEROP_DIR / name}: "
            "run scripts/interop-receivers to install the real receivers"
        )
        if IN_CI:
            pytest.fail(f"interop tests must run in CI: {reason}")
        pytest.skip(reason)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10) -> Any:
    assert url.startswith("http://127.0.0.1:"), url  # loopback only
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status < 500)
    except OSError:
        return False


class Receiver:
    """A receiver process: its base URL, its data folder, its log."""

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], port: int, data: Path
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.data = data
        self._log = (self.data / "server.log").open("wb")
        self.process = subprocess.Popen(
            argv,
            env={**_clean_env(), **env},
            cwd=self.data,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, path: str) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            return _answers(self.url + path)

        wait_for(ready, START_TIMEOUT, message=f"{self.name} did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        self._log.flush()
        text = (self.data / "server.log").read_text(errors="replace")
        return text[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    # No proxy, no OTLP settings of the developer's: the receivers only talk to loopback.
    return {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and not key.startswith("OTEL_")
    }


def start_phoenix() -> Iterator[Receiver]:
    python = venv_python("phoenix")
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="obshub-interop-phoenix-"))
    receiver = Receiver(
        "phoenix",
        [str(python), str(LAUNCHER)],
        {
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(free_port()),
            # Its SQLite database and files go to the temporary folder.
            "PHOENIX_WORKING_DIR": str(data),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
            "NO_PROXY": "*",
        },
        port,
        data,
    )
    try:
        receiver.wait_ready("/healthz")
        yield receiver
    finally:
        receiver.stop()


def start_mlflow() -> Iterator[Receiver]:
    python = venv_python("mlflow")
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="obshub-interop-mlflow-"))
    receiver = Receiver(
        "mlflow",
        [
            str(python),
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{data / 'mlflow.db'}",
            "--default-artifact-root",
            str(data / "artifacts"),
        ],
        {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "NO_PROXY": "*"},
        port,
        data,
    )
    try:
        receiver.wait_ready("/health")
        # The first API call of a fresh server is slow (it sets up its store): make it here.
        wait_for(
            lambda: _answers(f"{receiver.url}/api/2.0/mlflow/experiments/get?experiment_id=0"),
            START_TIMEOUT,
            message=f"mlflow did not answer: {receiver.log_tail()}",
        )
        yield receiver
    finally:
        receiver.stop()


def mlflow_traces(receiver: Receiver, experiment_id: str) -> list[dict[str, Any]]:
    """Every trace of the experiment, as ``Trace.to_dict()``, read with MLflow's own client."""
    script = (
        "import json, sys, mlflow\n"
        f"mlflow.set_tracking_uri({receiver.url!r})\n"
        f"traces = mlflow.search_traces(locations=[{experiment_id!r}], return_type='list')\n"
        "json.dump([t.to_dict() for t in traces], sys.stdout)\n"
    )
    result = subprocess.run(
        [str(venv_python("mlflow")), "-c", script],
        env={**_clean_env(), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"mlflow.search_traces failed: {result.stderr.decode()[-3000:]}")
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


@pytest.fixture(scope="module")
def phoenix() -> Iterator[Receiver]:
    """Arize Phoenix (``phoenix serve``) on 127.0.0.1, for the module's tests."""
    yield from start_phoenix()


@pytest.fixture(scope="module")
def mlflow_server() -> Iterator[Receiver]:
    """An MLflow tracking server (``mlflow server``) on 127.0.0.1, for the module's tests."""
    yield from start_mlflow()


SYSTEM = "You are the support bot of an online shop."
QUESTION = "Where is my order 42, and can I get a refund?"
DOCS = [
    {
        "id": "kb-1",
        "content": "Orders ship within 2 days.",
        "score": 0.91,
        "metadata": {"src": "faq"},
    },
    {"id": "kb-2", "content": "Refunds take 5 days after the return.", "score": 0.72},
]
SPAN_NAMES = {"support-agent", "plan", "lookup_order", "search_help_center", "refund", "answer"}


def send_agent_trace(exporter: OtlpExporter, session: str) -> str:
    """Agent → LLM (chat, cached tokens) → tool → retriever (documents) → failing tool → LLM."""
    hub = obshub.Hub(exporters=[exporter], service_name="interop-support-bot")
    try:
        with hub.span(
            "support-agent",
            type="agent_run",
            input=QUESTION,
            session_id=session,
            user_id="user-7",
            tags=["interop"],
            metadata={"plan": "gold"},
        ) as agent:
            chat = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
            tool_call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order": 42}'},
            }
            with hub.span(
                "plan",
                type="model_generation",
                model="gpt-4o-mini",
                provider="openai",
                input=chat,
                parameters={"temperature": 0.2, "max_tokens": 256},
                usage={"input": 1200, "output": 40, "cached_input": 1000},
                cost={"input": 0.00012, "output": 0.00002},
            ) as plan:
                plan.update(
                    output={"role": "assistant", "content": None, "tool_calls": [tool_call]}
                )
            with hub.span("lookup_order", type="tool_call", input={"order": 42}) as tool:
                tool.update(output={"status": "shipped"})
            with hub.span("search_help_center", type="retrieval", input="refund time") as search:
                search.update(output=DOCS)
            with (
                pytest.raises(TimeoutError),
                hub.span("refund", type="tool_call", input={"order": 42}),
            ):
                raise TimeoutError("payment service timed out")
            answer_input = [
                *chat,
                {"role": "assistant", "content": None, "tool_calls": [tool_call]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
            ]
            with hub.span(
                "answer",
                type="model_generation",
                model="gpt-4o-mini",
                provider="openai",
                input=answer_input,
                usage={"input": 1300, "output": 60, "cached_input": 1200},
            ) as answer:
                answer.update(
                    output={"role": "assistant", "content": "It shipped; refunds take 5 days."}
                )
            agent.update(output="It shipped; refunds take 5 days.")
            trace_id = agent.trace_id
        assert hub.flush(90)
        stats = next(iter(hub.stats().values()))
        assert stats.failed == 0, stats
        assert stats.dropped == 0, stats
    finally:
        hub.shutdown(timeout=10)
    return trace_id


def flat(attributes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Phoenix returns attributes nested (``{"llm": {"token_count": ...}}``): flatten them."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                out.update(flat(item, f"{name}.{index}."))
        else:
            out[name] = value
    return out


# -- Arize Phoenix --------------------------------------------------------------------


def phoenix_spans(phoenix: Receiver, project: str, trace_id: str) -> list[dict[str, Any]]:
    def spans() -> list[dict[str, Any]]:
        try:
            found = get_json(f"{phoenix.url}/v1/projects/{project}/spans?limit=100")
        except OSError:
            return []
        mine = [s for s in found["data"] if s["context"]["trace_id"] == trace_id]
        return mine if len(mine) == len(SPAN_NAMES) else []

    return wait_for(spans, 30, message=f"Phoenix did not show the trace: {phoenix.log_tail()}")


@pytest.mark.parametrize(
    "conventions", [["openinference"], ["genai"], ["genai", "openinference"]], ids="+".join
)
def test_phoenix_shows_kinds_tokens_messages_documents_and_errors(
    phoenix: Receiver, conventions: list[str]
) -> None:
    project = f"obshub-{'-'.join(conventions)}"
    exporter = OtlpExporter(
        endpoint=f"{phoenix.url}/v1/traces",
        conventions=conventions,
        resource_attributes={"openinference.project.name": project},
        proxy="",
        timeout=30,  # a receiver's first writes on a cold start can be slow
    )
    trace_id = send_agent_trace(exporter, f"session-{uuid.uuid4().hex[:8]}")
    spans = {s["name"]: s for s in phoenix_spans(phoenix, project, trace_id)}
    assert set(spans) == SPAN_NAMES
    by_id = {s["context"]["span_id"]: s["name"] for s in spans.values()}
    parents = {name: by_id.get(s["parent_id"]) for name, s in spans.items()}
    assert parents == {
        "support-agent": None,
        "plan": "support-agent",
        "lookup_order": "support-agent",
        "search_help_center": "support-agent",
        "refund": "support-agent",
        "answer": "support-agent",
    }
    kinds = {name: s["span_kind"] for name, s in spans.items()}
    assert kinds == {
        "support-agent": "AGENT",
        "plan": "LLM",
        "lookup_order": "TOOL",
        "search_help_center": "RETRIEVER",
        "refund": "TOOL",
        "answer": "LLM",
    }
    plan = flat(spans["plan"]["attributes"])
    assert plan["llm.token_count.prompt"] == 1200
    assert plan["llm.token_count.completion"] == 40
    assert plan["llm.token_count.prompt_details.cache_read"] == 1000
    assert plan["llm.model_name"] == "gpt-4o-mini"
    # The cost the application recorded, in the attribute of each convention.
    if "openinference" in conventions:
        assert plan["llm.cost.total"] == pytest.approx(0.00014)
    if "genai" in conventions:
        assert plan["gen_ai.usage.cost"] == pytest.approx(0.00014)
    # The chat view: messages, one by one, with the tool call.
    assert plan["llm.input_messages.0.message.role"] == "system"
    assert plan["llm.input_messages.0.message.content"] == SYSTEM
    assert plan["llm.input_messages.1.message.content"] == QUESTION
    call = "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"
    assert plan[call] == "lookup_order"
    answer = flat(spans["answer"]["attributes"])
    assert answer["llm.input_messages.3.message.role"] == "tool"
    assert answer["llm.output_messages.0.message.content"] == "It shipped; refunds take 5 days."
    search = flat(spans["search_help_center"]["attributes"])
    assert search["retrieval.documents.0.document.id"] == "kb-1"
    assert search["retrieval.documents.0.document.content"] == "Orders ship within 2 days."
    assert search["retrieval.documents.1.document.score"] == pytest.approx(0.72)
    refund = spans["refund"]
    assert refund["status_code"] == "ERROR"
    assert "payment service timed out" in refund["status_message"]
    assert any(e["name"] == "exception" for e in refund["events"])
    assert all(s["status_code"] != "ERROR" for n, s in spans.items() if n != "refund")


def test_phoenix_refuses_json_and_the_check_says_so(phoenix: Receiver) -> None:
    exporter = OtlpExporter(endpoint=f"{phoenix.url}/v1/traces", protocol="http/json", proxy="")
    result = exporter.check()
    assert not result.ok
    assert "415" in result.message
    assert "try the other protocol" in result.message
    assert OtlpExporter(endpoint=f"{phoenix.url}/v1/traces", proxy="").check().ok


# -- MLflow -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def experiment(mlflow_server: Receiver) -> str:
    return "0"  # the Default experiment every MLflow tracking server has


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_mlflow_shows_kinds_tokens_messages_documents_and_errors(
    mlflow_server: Receiver, experiment: str, protocol: str
) -> None:
    exporter = OtlpExporter(
        endpoint=f"{mlflow_server.url}/v1/traces",
        headers={"x-mlflow-experiment-id": experiment},
        conventions=["genai", "openinference"],
        protocol=protocol,  # type: ignore[arg-type]
        proxy="",
        timeout=30,  # a receiver's first writes on a cold start can be slow
    )
    trace_id = send_agent_trace(exporter, f"session-{uuid.uuid4().hex[:8]}")

    def the_trace() -> dict[str, Any] | None:
        for trace in mlflow_traces(mlflow_server, experiment):
            spans = trace["data"]["spans"]
            if len(spans) == len(SPAN_NAMES) and trace_id in json.dumps(trace["info"]):
                return trace
        return None

    trace = wait_for(
        the_trace, 60, message=f"MLflow did not show the trace: {mlflow_server.log_tail()}"
    )
    spans = {s["name"]: s for s in trace["data"]["spans"]}
    assert set(spans) == SPAN_NAMES
    by_id = {s["span_id"]: s["name"] for s in spans.values()}
    assert {n: by_id.get(s["parent_span_id"] or "") for n, s in spans.items()} == {
        "support-agent": None,
        "plan": "support-agent",
        "lookup_order": "support-agent",
        "search_help_center": "support-agent",
        "refund": "support-agent",
        "answer": "support-agent",
    }
    types = {n: _attribute(s, "mlflow.spanType") for n, s in spans.items()}
    assert types == {
        "support-agent": "AGENT",
        "plan": "LLM",
        "lookup_order": "TOOL",
        "search_help_center": "RETRIEVER",
        "refund": "TOOL",
        "answer": "LLM",
    }
    usage = _attribute(spans["plan"], "mlflow.chat.tokenUsage")
    assert usage["input_tokens"] == 1200
    assert usage["output_tokens"] == 40
    assert usage["cache_read_input_tokens"] == 1000
    assert _attribute(spans["plan"], "gen_ai.usage.cost") == pytest.approx(0.00014)
    assert _attribute(spans["plan"], "llm.cost.total") == pytest.approx(0.00014)
    inputs = _attribute(spans["plan"], "mlflow.spanInputs")
    assert inputs[0] == {"role": "system", "content": SYSTEM}
    docs = _attribute(spans["search_help_center"], "mlflow.spanOutputs")
    assert [d["id"] for d in docs] == ["kb-1", "kb-2"]
    refund = spans["refund"]
    assert refund["status"]["code"] == "STATUS_CODE_ERROR"
    assert "payment service timed out" in refund["status"]["message"]


def _attribute(span: Mapping[str, Any], key: str) -> Any:
    value = span["attributes"].get(key)
    return json.loads(value) if isinstance(value, str) else value
