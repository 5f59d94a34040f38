"""GET /v1/adapters and /v1/adapters/{name} on a real server (uvicorn on loopback, httpx): admin keys only,
each adapter's card and report, which one is served under which model name, OpenAI-style errors."""

from __future__ import annotations

import json

import httpx
import pytest
import torch

from clearlm.tune import TuneConfig, read_card, tune
from clearlm.tune.answers import QuestionSet
from clearlm.tune.questions import Question
from conftest import make_model
from tune_fixtures import apt_docs, email_policy_now

CONFIG = TuneConfig(steps=2, seq_len=32, warmup_steps=0, checkpoint_every=0, eval_tokens=64)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_tokenizer):
    """Adapter "apt" over a tiny base under a module-wide $CLEARLM_HOME, with a question asked (no knowledge
    base: the base and tuned set-ups)."""
    from clearlm.models.backends.torch_backend import TorchBackend

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARLM_HOME", str(tmp_path_factory.mktemp("home")))
        base = TorchBackend(
            make_model(tiny_tokenizer, dtype=torch.float32), tiny_tokenizer, "tiny-random-qwen2"
        )
        docs = apt_docs(tmp_path_factory.mktemp("docs"))
        asked = QuestionSet(
            (Question("purge", "How do I delete a package and its settings?", "apt purge", ("apt purge",)),),
            max_new_tokens=4,
        )
        tune("apt", base, docs, CONFIG, policy=email_policy_now(), questions=asked)
        yield base


def test_adapters_over_the_api(trained, serve, tiny_backend):
    from clearlm.tune.router import AdapterRouter

    server = serve(AdapterRouter(trained, ["apt"]), model="tiny-random-qwen2")
    _, admin = server.state.keys.create("alice", tenant="acme", scope="admin")
    _, other_admin = server.state.keys.create("olga", tenant="other", scope="admin")
    _, user = server.state.keys.create("bob", tenant="acme", scope="user")
    card = read_card("apt")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        bearer = {"Authorization": f"Bearer {admin}"}
        listed = c.get("/adapters", headers=bearer)
        assert listed.status_code == 200, listed.text
        [apt] = listed.json()["data"]
        assert (apt["id"], apt["object"], apt["base"], apt["kind"]) == (
            "apt",
            "adapter",
            "tiny-random-qwen2",
            "documents",
        )
        assert (apt["served"], apt["model"]) == (True, "tiny-random-qwen2:apt")
        assert apt["figures"] == json.loads(json.dumps(card["figures"]))
        assert apt["figures"]["questions"]["setups"] == ["base", "tuned"] and apt["bytes"] > 1000
        # the model name the list gives is the one chat completions answer to
        assert "tiny-random-qwen2:apt" in [m["id"] for m in c.get("/models", headers=bearer).json()["data"]]
        # adapters belong to the deployment: an admin of another tenant sees the same list
        assert c.get("/adapters", headers={"Authorization": f"Bearer {other_admin}"}).json()["data"] == [apt]

        one = c.get("/adapters/apt", headers=bearer).json()
        assert one["card"]["base"]["weights_sha256"] == card["base"]["weights_sha256"]
        assert one["card"]["data"]["sources"] == card["data"]["sources"] and "report" not in one["card"]
        assert one["report"]["questions"]["rows"][0]["id"] == "purge"
        assert len(one["report"]["losses"]) == 2 and one["model"] == "tiny-random-qwen2:apt"

        missing = c.get("/adapters/nope", headers=bearer)
        assert missing.status_code == 404
        error = missing.json()["error"]
        assert (
            error["code"] == "adapter_not_found"
            and error["message"] == "no adapter 'nope': choose one of apt"
        )
        bad = c.get("/adapters/.hidden", headers=bearer)
        assert bad.status_code == 400 and "name" in bad.json()["error"]["message"]
        assert c.get("/adapters", headers={"Authorization": f"Bearer {user}"}).status_code == 403
        assert c.get("/adapters/apt", headers={"Authorization": f"Bearer {user}"}).status_code == 403
        assert c.get("/adapters").status_code == 401

    # a server that serves no adapter (here a plain backend) lists them all the same, none served
    plain = serve(tiny_backend)
    _, key = plain.state.keys.create("alice", scope="admin")
    with httpx.Client(base_url=plain.url, timeout=30) as c:
        [apt] = c.get("/adapters", headers={"Authorization": f"Bearer {key}"}).json()["data"]
        assert (apt["id"], apt["served"], apt["model"]) == ("apt", False, None)
