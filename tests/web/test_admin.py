"""The admin pages: API keys (create, the secret shown once, revoke) and models (installed, the catalog, pull
with progress over POST /v1/models/{name}/pull), in headless Chromium against a real server, axe-checked."""

from __future__ import annotations

import importlib
import json

import httpx
import pytest

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
