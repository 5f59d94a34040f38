"""Fixtures of the web UI's tests: a real server on loopback (``serve``), headless Chromium driven by
Playwright, axe-core's accessibility check, and screenshots kept for the README (docs/screenshots)."""

from __future__ import annotations

from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class Page:
    """A browser tab on a server: ``tab`` is the Playwright page; ``errors`` collects console errors and
    CSP violations (a test ends by asserting there are none)."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
        self.tab = self.context.new_page()
        self.tab.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.tab.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.tab.on("pageerror", lambda e: self.errors.append(str(e)))

    def goto(self, path: str):
        return self.tab.goto(self.base + path)

    def axe(self) -> list[dict]:
        """axe-core's serious and critical violations on the page as it is now."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.tab)
        return [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]

    def assert_accessible(self) -> None:
        bad = self.axe()
        assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in bad]

    def screenshot(self, name: str) -> Path:
        """Keep a screenshot of the page (docs/screenshots/NAME.png, which the README shows)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.tab.screenshot(path=str(path), full_page=False)
        return path

    def sign_in(self, secret: str | None = None, next_path: str = "/chat") -> None:
        """Sign in through the form (with ``secret``), or by opening a page of an open-access server."""
        if secret is None:
            self.goto(next_path)
            return
        self.goto("/signin?next=" + next_path)
        self.tab.get_by_label("API key").fill(secret)
        self.tab.get_by_role("button", name="Sign in").click()
        self.tab.wait_for_url(f"**{next_path}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser):
    """``open_page(server)`` -> a signed-in-nothing-yet Page on that LiveServer (closed at the end)."""
    pages: list[Page] = []

    def start(server) -> Page:
        pages.append(Page(browser, server.base))
        return pages[-1]

    yield start
    for p in pages:
        p.close()
