"""Signing in to the web UI: an API key starts a cookie session that the /v1 API accepts; a state-changing
request with the cookie needs the CSRF token; revoking the key ends the session; open access signs in at
once; every page carries the strict Content-Security-Policy."""

from __future__ import annotations

import httpx
import pytest

CHAT = {"model": "tiny-random-qwen2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture
def keyed(serve, tiny_backend):
    server = serve(tiny_backend)
    admin, secret = server.state.keys.create("alice", scope="admin")
    return server, admin, secret


def test_a_key_signs_in_and_the_cookie_works_on_the_api_with_its_csrf_token(keyed):
    server, admin, secret = keyed
    with httpx.Client(base_url=server.base, follow_redirects=False) as c:
        bad = c.post("/signin", data={"key": "sk-clearlm-wrong", "next": "/chat"})
        assert (
            bad.status_code == 401
            and "not valid" in bad.text
            and "clearlm_session" not in bad.headers.get("set-cookie", "")
        )
        ok = c.post("/signin", data={"key": secret, "next": "/chat"})
        assert ok.status_code == 303 and ok.headers["location"] == "/chat"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and secret not in cookie
        assert c.get("/v1/keys").json()["data"][0]["id"] == admin.id  # the cookie authenticates
        refused = c.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
        token = server.state.sessions.get(c.cookies["clearlm_session"]).csrf
        done = c.post("/v1/chat/completions", json=CHAT, headers={"X-CSRF-Token": token})
        assert done.status_code == 200 and done.json()["choices"][0]["message"]["role"] == "assistant"
        records = server.state.audit.records()
        assert records[-1].api_key_id == admin.id and records[-1].endpoint == "/v1/chat/completions"
        server.state.keys.revoke(admin.id)
        gone = c.get("/v1/keys")
        assert gone.status_code == 401 and "sign in again" in gone.json()["error"]["message"]


def test_sign_in_from_another_site_and_open_redirects_are_refused(keyed):
    server, _, secret = keyed
    with httpx.Client(base_url=server.base, follow_redirects=False) as c:
        other = c.post("/signin", data={"key": secret}, headers={"Origin": "https://evil.example"})
        assert other.status_code == 401 and "another site" in other.text
        away = c.post("/signin", data={"key": secret, "next": "//evil.example/x"})
        assert away.status_code == 303 and away.headers["location"] == "/chat"


def test_open_access_signs_in_at_once_and_pages_carry_the_security_headers(serve, tiny_backend):
    server = serve(tiny_backend)
    with httpx.Client(base_url=server.base, follow_redirects=False) as c:
        r = c.get("/signin?next=/knowledge")
        assert r.status_code == 303 and r.headers["location"] == "/knowledge"
        assert "clearlm_session" in r.headers["set-cookie"]
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in c.get("/docs").headers  # Swagger UI keeps working


def test_the_sign_in_page_in_a_browser(keyed, open_page):
    server, _, secret = keyed
    page = open_page(server)
    page.goto("/signin")
    page.assert_accessible()
    page.tab.get_by_label("API key").fill("sk-clearlm-not-a-key")
    page.tab.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.tab.get_by_role("alert").inner_text()
    page.screenshot("signin")
    page.sign_in(secret, "/chat")
    cookie = next(c for c in page.context.cookies() if c["name"] == "clearlm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_an_open_access_session_ends_when_the_first_key_is_made(serve, tiny_backend):
    server = serve(tiny_backend)
    with httpx.Client(base_url=server.base, follow_redirects=False) as c:
        c.get("/signin?next=/chat")
        assert c.get("/v1/models").status_code == 200
        server.state.keys.create("first")
        gone = c.get("/v1/models")
        assert gone.status_code == 401 and "sign in again" in gone.json()["error"]["message"]
        assert c.get("/chat").status_code == 303  # the page sends the browser to sign in
