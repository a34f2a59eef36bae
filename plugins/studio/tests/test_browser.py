"""The studio in a real browser: Playwright driving the system chromium (Debian's package).

Playwright's own browser download is not used: the tests launch the chromium found on
``PATH`` (or ``$OBSHUB_CHROMIUM``). Without one they are skipped, unless
``OBSHUB_REQUIRE_BROWSER=1`` (set by CI), where they fail. With
``OBSHUB_STUDIO_SCREENSHOTS=DIR`` they save the screenshots the docs show into DIR.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from obshub_studio.server import StudioServer

import obshub

from .conftest import record_agent

playwright_sync = pytest.importorskip("playwright.sync_api")

WAIT_MS = 15_000


def _chromium() -> str | None:
    explicit = os.environ.get("OBSHUB_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        if os.environ.get("OBSHUB_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: the page's Content-Security-Policy would stop an injected script anyway;
    # without it, the hostile-content test proves the page never turns data into markup. It
    # also lets Playwright's polling wait_for_function evaluate its predicate.
    context = browser.new_context(viewport={"width": 1360, "height": 860}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    context.close()


def rendered(page: Any) -> None:
    """Wait until the view of the page's current address is on screen."""
    page.wait_for_function("document.getElementById('app').dataset.route === location.hash")


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    target = Path(os.environ.get("OBSHUB_STUDIO_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name))


def test_from_the_list_to_a_trace_to_a_span(
    hub: obshub.Hub, studio: StudioServer, page: Any, tmp_path: Path
) -> None:
    record_agent(
        hub, question="Can I change my delivery address?", session_id="s-1", tags=("beta", "web")
    )
    trace_id = record_agent(hub, fail=True)
    assert hub.flush(timeout=5)

    page.goto(studio.url)
    rows = page.locator("[data-testid=trace-row]")
    rows.first.wait_for()
    assert rows.count() == 2
    assert rows.first.get_attribute("data-trace-id") == trace_id
    assert "support-agent" in rows.first.inner_text()
    shoot(page, tmp_path, "traces.png")

    rows.first.click()
    nodes = page.locator("[data-testid=tree-node]")
    nodes.first.wait_for()
    assert page.url.endswith(f"#/trace/{trace_id}?span={nodes.first.get_attribute('data-span-id')}")
    tree = [
        (n.get_attribute("data-depth"), n.locator("[data-testid=node-name]").inner_text())
        for n in nodes.all()
    ]
    assert tree[0] == ("0", "support-agent")
    assert ("1", "gpt-4o") in tree
    assert ("1", "lookup_order") in tree
    assert ("1", "◆ cache-hit") in tree
    # The root's detail lists its event and the trace's score.
    detail = page.locator("[data-testid=span-detail]")
    assert "faq-12" in detail.locator("[data-testid=events]").inner_text()
    assert "helpfulness" in detail.locator("[data-testid=scores]").inner_text()

    page.locator("[data-testid=tree-node]", has_text="gpt-4o").click()
    detail = page.locator("[data-testid=span-detail]")
    detail.locator("[data-testid=usage]").wait_for()
    usage = detail.locator("[data-testid=usage]").inner_text()
    assert "812" in usage
    assert "512" in usage
    assert "40" in usage
    assert "$0.00300" in detail.locator("[data-testid=cost]").inner_text()
    assert "Time to first token" in detail.inner_text()
    user = detail.locator("[data-testid=input] .msg.user")
    assert "Where is my order #1234?" in user.inner_text()
    assert (
        "You are a support agent." in detail.locator("[data-testid=input] .msg.system").inner_text()
    )
    assert (
        "It ships tomorrow." in detail.locator("[data-testid=output] .msg.assistant").inner_text()
    )
    assert "temperature" in detail.locator("[data-testid=parameters]").inner_text()
    shoot(page, tmp_path, "trace.png")

    page.locator("[data-testid=tree-node]", has_text="lookup_order").click()
    error = page.locator("[data-testid=error]")
    error.wait_for()
    assert "LookupError: order service unreachable" in error.inner_text()
    assert "raise LookupError" in error.locator("pre.stack").inner_text()
    shoot(page, tmp_path, "error.png")
    assert page.errors == []


def test_filters_narrow_the_list(hub: obshub.Hub, studio: StudioServer, page: Any) -> None:
    wanted = record_agent(hub, session_id="s-wanted", model="claude-sonnet")
    record_agent(hub, session_id="s-other", fail=True)
    assert hub.flush(timeout=5)
    page.goto(studio.url)
    rows = page.locator("[data-testid=trace-row]")
    rows.nth(1).wait_for()

    page.fill("[data-testid=filter-session]", "s-wanted")
    page.click("[data-testid=apply]")
    page.wait_for_url("**session=s-wanted")
    rendered(page)
    assert rows.count() == 1
    assert rows.first.get_attribute("data-trace-id") == wanted

    page.fill("[data-testid=filter-session]", "")
    page.check("[data-testid=filter-error]")
    page.click("[data-testid=apply]")
    page.wait_for_url("**error=1")
    rendered(page)
    assert rows.count() == 1
    assert rows.first.get_attribute("data-trace-id") != wanted

    page.goto(studio.url + "#/traces?model=nothing-like-this")
    rendered(page)
    assert page.locator("[data-testid=no-traces]").count() == 1
    assert page.errors == []


def test_a_trace_recorded_while_the_page_is_open_appears_without_a_reload(
    hub: obshub.Hub, studio: StudioServer, page: Any
) -> None:
    record_agent(hub)
    assert hub.flush(timeout=5)
    page.goto(studio.url)
    page.locator("[data-testid=trace-row]").first.wait_for()
    page.evaluate("window.__sameDocument = true")
    # The app has read the store's change counter once before anything new is written.
    page.wait_for_function("document.getElementById('db').textContent !== ''")

    live = record_agent(hub, name="live-agent", question="recorded while watching")
    assert hub.flush(timeout=5)
    page.locator(f"[data-trace-id='{live}']").wait_for()
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    page.wait_for_function("document.querySelectorAll('[data-testid=trace-row]').length === 2")


def test_hostile_span_content_renders_as_text_and_never_runs(
    hub: obshub.Hub, studio: StudioServer, page: Any, tmp_path: Path
) -> None:
    script = "<script>window.__pwned = 1</script>"
    image = '<img src=x onerror="window.__pwned = 2">'
    odd = "e\u0301 \u202etxt.exe \u200b zero-width \U0001f600 \ud800 \x00 nul"
    huge = "A" * 10_000_000
    with hub.span(f"<b>{script}</b>", type="agent_run", input=script, tags=[image]) as root:
        root.update(output=image, metadata={"odd": odd, "huge": huge})
        with hub.span(
            "chat",
            type="model_generation",
            input=[
                {"role": "user", "content": image},
                {"role": "<img src=x onerror=alert(1)>", "content": script},
            ],
        ):
            pass
    assert hub.flush(timeout=30)

    page.goto(studio.url)
    row = page.locator(f"[data-trace-id='{root.trace_id}']")
    row.wait_for()
    assert script in row.inner_text()
    assert image in row.inner_text()
    row.click()
    detail = page.locator("[data-testid=span-detail]")
    detail.wait_for()
    assert script in detail.locator("[data-testid=input]").inner_text()
    assert image in detail.locator("[data-testid=output]").inner_text()
    metadata = detail.locator("[data-testid=metadata]")
    assert "zero-width" in metadata.inner_text()
    assert "\U0001f600" in metadata.inner_text()
    # The huge value is folded: a few KB on the page and a button saying how much there is.
    unfold = metadata.locator("[data-testid=unfold]")
    assert "show all" in unfold.inner_text()
    assert len(metadata.locator("pre").first.inner_text()) < 3000
    page.locator("[data-testid=tree-node]", has_text="chat").click()
    chat = page.locator("[data-testid=span-detail] [data-testid=chat]")
    chat.wait_for()
    assert image in chat.inner_text()
    assert script in chat.inner_text()
    shoot(page, tmp_path, "hostile.png")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#app img, #app script, [onerror]").count() == 0
    assert page.errors == []


def test_sessions_read_as_a_conversation_and_the_dashboard_sums_up(
    hub: obshub.Hub, studio: StudioServer, page: Any, tmp_path: Path
) -> None:
    record_agent(hub, question="Where is my order #1234?", answer="It ships tomorrow.")
    record_agent(
        hub, question="Can it come on Friday?", answer="Yes, Friday works.", model="gpt-4o-mini"
    )
    record_agent(hub, question="Thanks!", answer="You are welcome.", fail=True)
    assert hub.flush(timeout=5)

    page.goto(studio.url + "#/sessions")
    page.locator("[data-testid=session-row]").first.click()
    turns = page.locator("[data-testid=turn]")
    turns.nth(2).wait_for()
    assert turns.count() == 3
    first = turns.first.inner_text()
    assert "Where is my order #1234?" in first
    assert "It ships tomorrow." in first
    assert "Yes, Friday works." in turns.nth(1).locator(".msg.assistant").inner_text()
    shoot(page, tmp_path, "session.png")

    page.goto(studio.url + "#/dashboard")
    page.locator("[data-testid=per-model]").wait_for()
    assert page.locator("[data-testid=dash-traces]").inner_text().startswith("3")
    models = page.locator("[data-testid=per-model]").inner_text()
    assert "gpt-4o-mini" in models
    assert "gpt-4o" in models
    assert "33.3 %" in page.locator("[data-testid=dash-errors]").inner_text()
    shoot(page, tmp_path, "dashboard.png")
    assert page.errors == []
