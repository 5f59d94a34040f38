"""The chat page in headless Chromium against a real server with the tiny random model (its answers are
gibberish: the tests check structure and stored values, never wording): a streamed answer, stop,
regenerate, edit-and-resend, rename, search, delete, export, escaping of user and model text, 500
messages, accessibility."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from clearlm.store.conversations import Conversations

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


class SlowBackend:
    """The tiny model, a chunk every 40 ms (a person can watch it stream and stop it); it never stops at
    an end-of-text token, so an answer runs to max_tokens."""

    def __init__(self, backend) -> None:
        self._backend = backend

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def stream(self, prompt, params):
        from clearlm.models.backends.base import Chunk

        for chunk in self._backend.stream(prompt, params):
            time.sleep(0.04)
            if chunk.finish_reason == "stop":
                chunk = Chunk(chunk.text, chunk.token_ids, "length", chunk.logprobs)
            yield chunk


@pytest.fixture
def server(serve, tiny_backend):
    return serve(SlowBackend(tiny_backend))


def stored(server) -> list[dict]:
    """Every conversation of the open-access user, newest first, with messages."""
    store = Conversations(server.state.db)
    return [store.get("default", "local", c["id"]) for c in store.list("default", "local")]


def settle(page, server, n: int, timeout: float = 30) -> dict:
    """Wait until the page is idle (Send enabled) and the one conversation holds ``n`` messages."""
    expect(page.tab.locator("#send")).to_be_enabled(timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [conv] = stored(server)
        if len(conv["messages"]) == n:
            return conv
        time.sleep(0.1)
    raise AssertionError(f"{len(conv['messages'])} messages, not {n}")


def new_page(open_page, server):
    """A Page whose browser is answered Chromium's own /favicon.ico request (the server has none: its 404
    would show as a console error)."""
    page = open_page(server)
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    return page


def send(page, text: str) -> None:
    page.tab.get_by_label("Message", exact=True).fill(text)
    page.tab.get_by_label("Message", exact=True).press("Enter")


def test_send_stream_stop_regenerate_and_edit(server, open_page):
    page = new_page(open_page, server)
    tab = page.tab
    page.sign_in()
    page.assert_accessible()
    tab.get_by_text("Settings: model").click()
    tab.get_by_label("Max tokens").fill("40")
    tab.get_by_role("button", name="Save settings").click()
    send(page, "Tell me about Paris")
    streaming = tab.locator("article.msg.streaming[data-role=assistant] .msg-body")
    streaming.wait_for()
    expect(streaming).to_have_text(re.compile(r"\S"))
    partial = streaming.inner_text()
    conv = settle(page, server, 2)
    assert tab.url.endswith("/chat/" + conv["id"])
    user, answer = conv["messages"]
    assert user["content"] == "Tell me about Paris" and answer["status"] == "complete"
    assert answer["meta"]["finish_reason"] == "length" and len(answer["meta"]["logprobs"]) == 40
    assert (
        conv["settings"]["max_tokens"] == 40 and partial.strip() and len(partial) < len(answer["content"]) + 2
    )
    shown = tab.locator(f"article[data-message-id='{answer['id']}']")
    assert shown.locator(".badge.ai").inner_text() == "AI-generated · tiny-random-qwen2"
    assert shown.get_by_role("button", name="Why?").is_visible()
    assert tab.locator("#conv-title").inner_text() == "Tell me about Paris"
    assert tab.locator("#conv-list a[aria-current=page]").inner_text() == "Tell me about Paris"

    # Stop: the text so far stays, marked stopped, and is stored so
    tab.get_by_text("Settings: model").click() if not tab.locator("#settings[open]").count() else None
    tab.get_by_label("Max tokens").fill("100")
    tab.get_by_role("button", name="Save settings").click()
    expect(tab.locator("#status")).to_have_text("Settings saved")
    send(page, "Now a long story")
    expect(tab.locator("article.msg.streaming .msg-body")).to_have_text(re.compile(r"\S.{5,}", re.S))
    tab.get_by_role("button", name="Stop").click()
    conv = settle(page, server, 4)
    stopped = conv["messages"][3]
    assert stopped["status"] == "stopped" and 0 < len(stopped["meta"]["logprobs"]) < 100
    node = tab.locator(f"article[data-message-id='{stopped['id']}']")
    node.wait_for()
    assert (
        node.get_attribute("data-status") == "stopped" and "stopped" in node.locator(".msg-head").inner_text()
    )
    assert node.locator(".msg-body").inner_text().strip() == stopped["content"].strip()

    # Regenerate the last answer: the same number of messages, a new last answer
    node.get_by_role("button", name="Regenerate").click()
    time.sleep(0.3)
    tab.get_by_role("button", name="Stop").click()
    conv = settle(page, server, 4)
    assert conv["messages"][3]["created_at"] > stopped["created_at"]
    assert [m["content"] for m in conv["messages"][:3]] == [
        m["content"] for m in stored(server)[0]["messages"][:3]
    ]

    # Edit the first message and send it again: what followed it is gone
    first = tab.locator("article.msg[data-role=user]").first
    first.get_by_role("button", name="Edit").click()
    tab.get_by_label("Edit your message").fill("Tell me about Rome")
    tab.get_by_role("button", name="Send edited").click()
    time.sleep(0.3)
    tab.get_by_role("button", name="Stop").click()
    conv = settle(page, server, 2)
    assert (
        conv["messages"][0]["content"] == "Tell me about Rome" and conv["messages"][1]["role"] == "assistant"
    )
    assert tab.locator("article.msg").count() == 2
    page.assert_accessible()
    page.screenshot("chat")
    assert not page.errors, page.errors
