"""The support chat widget (``/support/widget.js``) and CORS on the support routes, over a real server (the
tiny random model, the sample desk in examples/support): the script is served as JavaScript; only the
configured origins get CORS, only on the support routes; and in a real Chromium, a plain page of another
origin embeds the widget with one script tag, a customer's message gets the flow's reply, a hand-off and
then an agent's answer (through /v1/review) show up in the widget, the chat survives a reload, closing it
works, the page stays accessible (axe-core), and an API error (a bad key) is shown to the customer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from clearlm.errors import InvalidInputError
from clearlm.server.support_channels import WIDGET, check_origin
from support_site import ASK_REASON, LATE, page_with_widget
from support_site import site as site  # a fixture

DESK = Path(__file__).parents[2] / "examples" / "support"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
AGENT = "Hello Ana, we can accept it as an exception: the label is on its way."


def preflight(base: str, path: str, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return httpx.options(base + path, headers=headers)


def test_the_script_is_served_as_javascript_and_cors_is_for_the_support_routes_only(serve, tiny_backend):
    plain = serve(tiny_backend)
    script = httpx.get(plain.base + "/support/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert script.content == WIDGET.read_bytes() and b"/v1/support" in script.content
    # no origins configured: same origin only, no CORS header at all
    assert (
        "access-control-allow-origin"
        not in preflight(plain.url, "/support/customers", "http://shop.test").headers
    )

    shop = "http://shop.test:8080"
    server = serve(tiny_backend, support_origins=(shop,))
    ok = preflight(server.url, "/support/conversations/sup_1/messages", shop)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == shop
    assert set(ok.headers["access-control-allow-headers"].split(", ")) >= {"authorization", "content-type"}
    assert "access-control-allow-credentials" not in ok.headers  # never cookies cross-origin
    refused = preflight(server.url, "/support/customers", "http://evil.test")
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    other = preflight(server.url, "/chat/completions", shop)  # not a support route
    assert "access-control-allow-origin" not in other.headers
    # nor the desk's web pages (under /support/)
    page = httpx.get(server.base + "/support/conversations/sup_1", headers={"Origin": shop})
    assert "access-control-allow-origin" not in page.headers
    listed = httpx.get(server.url + "/support/customers", headers={"Origin": shop})
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == shop
    for bad in ("https://shop.test/", "shop.test", "https://shop.test/path"):
        with pytest.raises(InvalidInputError, match="scheme://host"):
            check_origin(bad)
    assert check_origin("*") == "*"


def serious(tab) -> list[tuple[str, str]]:
    """axe-core's serious and critical violations on the page as it is now: (rule, help)."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(tab).response["violations"]
    return [(v["id"], v["help"]) for v in found if v["impact"] in ("serious", "critical")]


def tab_of(browser):
    """A new browser context's tab, and the list its console errors and page errors go to."""
    tab = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    tab.set_default_timeout(30_000)
    errors: list[str] = []
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    return tab, errors


def test_a_page_of_another_origin_chats_through_the_widget_to_a_person(serve, tiny_backend, site, browser):
    from playwright.sync_api import expect

    server = serve(tiny_backend, support_desk=str(DESK), support_origins=(site.origin,), default_max_tokens=4)
    _, widget_key = server.state.keys.create("shop widget", tenant="acme", scope="user")
    _, agent_key = server.state.keys.create("agent", tenant="acme", scope="admin")
    tab, errors = tab_of(browser)
    tab.goto(page_with_widget(site, "index.html", server, key=widget_key, name="Ana", poll="1"))

    launcher = tab.get_by_role("button", name="Chat with support")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    box = tab.get_by_label("Your message")
    expect(box).to_be_focused()
    box.fill("I am returning order A-10002")
    box.press("Enter")
    replies = tab.locator(".messages > li.assistant .text")
    expect(replies).to_have_text([ASK_REASON], timeout=20_000)  # (a loaded machine: seconds a turn)
    box.fill("changed mind")
    box.press("Enter")
    expect(replies).to_have_text([ASK_REASON, LATE], timeout=20_000)
    expect(tab.get_by_role("status")).to_have_text("A person will answer here.")
    assert tab.get_by_role("log").get_attribute("aria-live") == "polite"

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {agent_key}"}) as agent:
        [item] = agent.get("/review", params={"kind": "support_handoff"}).json()["data"]
        assert (item["payload"]["customer_name"], item["payload"]["reason"]) == (
            "Ana",
            "outside_return_window",
        )
        decided = agent.post(f"/review/{item['id']}/decision", json={"action": "answer", "answer": AGENT})
        assert decided.status_code == 200, decided.text
    said = ["I am returning order A-10002", ASK_REASON, "changed mind", LATE, AGENT]
    expect(tab.locator(".messages > li .text")).to_have_text(said)  # polled: the person's answer appears
    expect(tab.locator(".messages > li.agent .who")).to_have_text(["Agent"])
    tab.screenshot(path=str(SCREENSHOTS / "support-widget.png"))  # (the README shows it)
    assert serious(tab) == []

    box.press("Escape")  # keyboard: Escape hides the panel and gives the focus back to the launcher
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    tab.keyboard.press("Enter")
    expect(box).to_be_focused()

    tab.reload()  # the same conversation again (its id is kept in the page's localStorage)
    tab.get_by_role("button", name="Chat with support").click()
    expect(tab.locator(".messages > li .text")).to_have_text(said)
    tab.get_by_role("button", name="End chat").click()
    expect(tab.locator(".messages > li.system .text")).to_have_text(["The conversation was closed."])
    expect(box).to_be_disabled()
    survey = tab.get_by_role("group", name="How satisfied were you with this chat?")
    expect(survey).to_be_visible()
    assert serious(tab) == []
    survey.get_by_role("button", name="4 of 5: satisfied").click()
    expect(tab.get_by_role("status")).to_have_text("Thank you for your rating.")
    expect(survey).to_be_hidden()
    conversation = httpx.get(
        f"{server.url}/support/conversations/{item['payload']['conversation_id']}",
        headers={"Authorization": f"Bearer {agent_key}"},
    ).json()
    assert conversation["status"] == "closed"
    figures = httpx.get(f"{server.url}/support/analytics", headers={"Authorization": f"Bearer {agent_key}"})
    assert (figures.json()["csat_count"], figures.json()["csat_mean"]) == (1, 4.0)
    assert errors == []


def test_the_widget_shows_the_api_s_error(serve, tiny_backend, site, browser):
    from playwright.sync_api import expect

    server = serve(tiny_backend, support_origins=(site.origin,))
    server.state.keys.create("some key", tenant="acme", scope="user")  # keys exist: a key is needed
    tab, _ = tab_of(browser)
    tab.goto(page_with_widget(site, "bad.html", server, key="not-a-key", open="true"))
    expect(tab.get_by_role("alert")).to_have_text(
        "Error 401: the API key is not valid (unknown or revoked): ask for a new one"
    )
    expect(tab.get_by_label("Your message")).to_be_enabled()
