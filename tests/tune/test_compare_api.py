"""A real server of two adapters over the tiny base: ``/v1/explain`` explains under the adapter the request
names (not whichever one the last generation left active), streamed or not, and ``POST
/v1/adapters/{name}/compare`` compares an adapter with its base, or with the other adapter, on the same
tokens (audited, bad input refused with clear messages)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from adapter_fixtures import tiny_base, write_adapter
from clearlm.explain import explain
from clearlm.models import Message
from clearlm.tune.router import AdapterRouter
from clearlm.tune.serve import AdapterSet

BASE = "tiny-random-qwen2"
MESSAGES = [{"role": "user", "content": "Where is the Eiffel Tower?"}]
PROMPT = [Message("user", "Where is the Eiffel Tower?")]
TARGET = " It is in Paris."


@pytest.fixture
def adapters(home, tiny_tokenizer):
    write_adapter(tiny_tokenizer, "one", b_scale=0.3, seed=1)
    write_adapter(tiny_tokenizer, "two", b_scale=0.3, seed=2)


def alone(tokenizer, adapter: str | None, method: str = "input_x_gradient", target: str = TARGET):
    """The explanation under ``adapter`` loaded by itself over a fresh base (None: the plain base)."""
    base = tiny_base(tokenizer)
    backend = base if adapter is None else AdapterSet(base).load(adapter)
    with backend.lock:
        return explain(backend, PROMPT, target, method=method)


def scores(body: dict) -> np.ndarray:
    return np.array(body["scores"], dtype=np.float64)


def sse_body(response: httpx.Response) -> dict:
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data: {")]
    return next(e for e in events if e.get("object") == "explanation")


def test_explain_uses_the_requested_adapter(adapters, tiny_tokenizer, serve):
    expected = {name: alone(tiny_tokenizer, name) for name in ("one", "two", None)}
    server = serve(AdapterRouter(tiny_base(tiny_tokenizer), ["one", "two"]), model=BASE)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        for model, name in ((f"{BASE}:one", "one"), ("two", "two"), (BASE, None), ("one", "one")):
            # a generation with another adapter first leaves that one active
            other = "two" if name != "two" else "one"
            r = c.post("/chat/completions", json={"model": other, "messages": MESSAGES, "max_tokens": 2})
            assert r.status_code == 200, r.text
            body = {"model": model, "messages": MESSAGES, "target": TARGET, "method": "input_x_gradient"}
            r = c.post("/explain", json=body)
            assert r.status_code == 200, r.text
            assert r.json()["model"] == (BASE if name is None else f"{BASE}:{name}")
            np.testing.assert_allclose(
                scores(r.json()["explanation"]), expected[name].scores, rtol=1e-5, atol=1e-7
            )
            r = c.post("/explain", json={**body, "stream": True})  # the work runs in its own thread
            np.testing.assert_allclose(
                scores(sse_body(r)["explanation"]), expected[name].scores, rtol=1e-5, atol=1e-7
            )
    assert not np.allclose(expected["one"].scores, expected["two"].scores, equal_nan=True)


def test_compare_route(adapters, tiny_tokenizer, serve):
    base_alone, one_alone, two_alone = (
        alone(tiny_tokenizer, None, "occlusion"),
        alone(tiny_tokenizer, "one", "occlusion"),
        alone(tiny_tokenizer, "two", "occlusion"),
    )
    server = serve(AdapterRouter(tiny_base(tiny_tokenizer), ["one", "two"]), model=BASE)
    with httpx.Client(base_url=server.url, timeout=120) as c:
        c.post("/chat/completions", json={"model": "two", "messages": MESSAGES, "max_tokens": 2})
        body = {"messages": MESSAGES, "target": TARGET, "method": "occlusion", "top_k": 3}
        r = c.post("/adapters/one/compare", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["object"], out["model"], out["base_model"], out["text"]) == (
            "adapter.comparison",
            f"{BASE}:one",
            BASE,
            TARGET,
        )
        cmp = out["comparison"]
        np.testing.assert_allclose(scores(cmp["base"]), base_alone.scores, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(scores(cmp["tuned"]), one_alone.scores, rtol=1e-5, atol=1e-7)
        assert len(cmp["top_moved"]) == 3 and min(cmp["distance"]) > 0
        record = server.state.audit.get(out["id"])
        assert record.model == f"{BASE}:one" and record.status_code == 200
        assert record.parameters["compare"]["adapter"] == "one" and record.output in (TARGET, [TARGET])
        assert (out["against"], out["reference_model"], cmp["reference"]) == (None, BASE, None)

        # one adapter against the other: the reference side is the other adapter's attribution
        r = c.post("/adapters/one/compare", json={**body, "against": "two"})
        assert r.status_code == 200, r.text
        out = r.json()
        assert (out["model"], out["base_model"], out["reference_model"], out["against"]) == (
            f"{BASE}:one",
            BASE,
            f"{BASE}:two",
            "two",
        )
        cmp = out["comparison"]
        assert cmp["reference"] == "two" and cmp["base"]["model"] == f"{BASE}:two"
        np.testing.assert_allclose(scores(cmp["base"]), two_alone.scores, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(scores(cmp["tuned"]), one_alone.scores, rtol=1e-5, atol=1e-7)
        assert min(cmp["distance"]) > 0
        compared = server.state.audit.get(out["id"]).parameters["compare"]
        assert compared["against"] == "two" and compared["base"] == f"{BASE}:two"

        # no target: the tuned model's greedy answer, word level
        r = c.post(
            "/adapters/two/compare",
            json={"prompt": "The Eiffel Tower is in", "max_tokens": 3, "level": "word"},
        )
        assert r.status_code == 200, r.text
        out = r.json()
        two = AdapterSet(tiny_base(tiny_tokenizer)).load("two")
        from clearlm.models import SamplingParams
        from clearlm.models.backends.base import generate

        assert out["text"] == generate(two, "The Eiffel Tower is in", SamplingParams(max_new_tokens=3)).text
        assert out["comparison"]["tuned"]["granularity"] == "word"

        for path, payload, status, message in (
            ("/adapters/three/compare", body, 404, "the adapter 'three' is not served here"),
            ("/adapters/one/compare", {**body, "prompt": "hi"}, 400, "exactly one"),
            ("/adapters/one/compare", {**body, "method": "nope"}, 400, "unknown method"),
            ("/adapters/bad name/compare", body, 400, "path.name"),
            ("/adapters/one/compare", {**body, "against": "one"}, 400, "cannot be compared with itself"),
            ("/adapters/one/compare", {**body, "against": "three"}, 404, "the adapter 'three' is not served"),
        ):
            r = c.post(path, json=payload)
            assert r.status_code == status, r.text
            assert message in r.text


def test_compare_on_a_server_without_adapters(serve, tiny_backend):
    server = serve(tiny_backend)
    r = httpx.post(server.url + "/adapters/one/compare", json={"prompt": "hi"}, timeout=30)
    assert r.status_code == 404 and "serves no LoRA adapters" in r.json()["error"]["message"]


def test_adapters_on_vllm_are_explained_on_a_torch_twin_with_the_adapter(adapters, tiny_tokenizer, serve):
    """A server of adapters on vLLM (multi-LoRA) explains on a torch twin of the base, into which it loads
    the request's adapter: the explanation is the adapter's, not the base's. (The vLLM backend object is
    real; nothing is sent to it: nothing listens at its address, and every request here gives its target.)"""
    from clearlm.models.backends.vllm_backend import VllmBackend

    expected = {name: alone(tiny_tokenizer, name) for name in ("one", None)}
    occluded = {name: alone(tiny_tokenizer, name, "occlusion") for name in ("one", None)}
    vllm = VllmBackend("http://127.0.0.1:9", tiny_tokenizer, BASE, served_name=BASE, context_length=256)
    twin = tiny_base(tiny_tokenizer)  # (load_backend cannot name the tiny model)
    server = serve(AdapterRouter(vllm, ["one", "two"]), model=BASE, explainer=twin)
    body = {"messages": MESSAGES, "target": TARGET, "method": "input_x_gradient"}
    with httpx.Client(base_url=server.url, timeout=120) as c:
        for model, name in ((f"{BASE}:one", "one"), (BASE, None), ("one", "one")):
            r = c.post("/explain", json={**body, "model": model})
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(
                scores(r.json()["explanation"]), expected[name].scores, rtol=1e-5, atol=1e-7
            )
        r = c.post("/adapters/one/compare", json={**body, "method": "occlusion"})
        assert r.status_code == 200, r.text
        cmp = r.json()["comparison"]
        np.testing.assert_allclose(scores(cmp["base"]), occluded[None].scores, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(scores(cmp["tuned"]), occluded["one"].scores, rtol=1e-5, atol=1e-7)
        r = c.post("/explain", json={**body, "model": "three"})
        assert r.status_code == 404 and "not served here" in r.json()["error"]["message"]
    assert set(server.state._twin_views) == {"one", None}  # loaded when asked: not "two"
