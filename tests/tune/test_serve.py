"""Serving adapters over one base (PEFT multi-adapter) and merging them: the same log-probabilities."""

from __future__ import annotations

import threading

import pytest
import torch

from clearlm.models import Message, SamplingParams
from clearlm.models.backends.base import generate
from clearlm.tune import TuneConfig, tune
from clearlm.tune.export import export_merged
from clearlm.tune.serve import AdapterMismatchError, AdapterSet

CONFIG = TuneConfig(
    steps=4, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=64
)
TEXT = "The Eiffel Tower is located in the city of Paris, France."


def _logprobs(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]


@pytest.fixture
def two_adapters(home, tiny_base, docs, email_policy):
    tune("one", tiny_base, docs, CONFIG, policy=email_policy)
    tune("two", tiny_base, docs, TuneConfig(**{**CONFIG.to_dict(), "seed": 7}), policy=email_policy)
    return tiny_base


def test_several_adapters_over_one_base(two_adapters, tiny_tokenizer):
    ids = torch.tensor([tiny_tokenizer(TEXT)["input_ids"]])
    plain = _logprobs(two_adapters.model, ids)
    adapters = AdapterSet(two_adapters)
    one, two, base = adapters.load("one"), adapters.load("two"), adapters.view(None)
    assert (one.name, two.name, base.name) == (
        "tiny-random-qwen2:one",
        "tiny-random-qwen2:two",
        "tiny-random-qwen2",
    )
    scores = {}
    for view in (one, two, base, one):
        with adapters.lock:
            adapters.activate(view.adapter)
            scores.setdefault(view.name, []).append(_logprobs(view.model, ids))
    assert torch.equal(scores["tiny-random-qwen2"][0], plain)  # the base view is the base
    assert torch.equal(*scores["tiny-random-qwen2:one"])  # switching back gives the same adapter
    assert not torch.allclose(scores["tiny-random-qwen2:one"][0], plain, atol=1e-4)
    assert not torch.allclose(
        scores["tiny-random-qwen2:one"][0], scores["tiny-random-qwen2:two"][0], atol=1e-4
    )

    # generations from several threads each use their own adapter (greedy: compare with one at a time)
    prompt = [Message("user", "Where is the Eiffel Tower?")]
    params = SamplingParams(max_new_tokens=8)
    alone = {v.name: generate(v, prompt, params).token_ids for v in (one, two, base)}
    together: dict[str, tuple] = {}

    def run(view):
        together[view.name] = generate(view, prompt, params).token_ids

    threads = [threading.Thread(target=run, args=(v,)) for v in (one, two, base, one)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


def test_merged_export_has_the_adapters_logprobs(two_adapters, tiny_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([tiny_tokenizer(TEXT)["input_ids"]])
    view = AdapterSet(two_adapters).load("one")
    with view.adapters.lock:
        view.adapters.activate("one")
        adapted = _logprobs(view.model, ids)
    view.adapters.peft.unload()  # the base as it was, for the merge below
    dest = export_merged("one", two_adapters, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(dest, dtype=torch.float32)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    # equal within float32 rounding: the merge folds (alpha / r) B A into each weight
    assert torch.allclose(_logprobs(merged, ids), adapted, atol=1e-5, rtol=0)
    assert (dest / "tokenizer.json").is_file()


def test_adapter_for_another_base_is_refused(two_adapters, tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    other = TorchBackend(
        make_model(tiny_tokenizer, dtype=torch.float32, seed=1), tiny_tokenizer, "other-tiny"
    )
    with pytest.raises(
        AdapterMismatchError, match="adapter 'one' was trained on tiny-random-qwen2 .* not on other-tiny"
    ):
        AdapterSet(other).load("one")


def test_server_routes_each_request_to_its_adapter(two_adapters, serve):
    import openai

    from clearlm.tune.router import AdapterRouter

    router = AdapterRouter(two_adapters, ["one", "two"])
    server = serve(router, model="tiny-random-qwen2")
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
    assert [m.id for m in c.models.list().data][:3] == [
        "tiny-random-qwen2",
        "tiny-random-qwen2:one",
        "tiny-random-qwen2:two",
    ]
    prompt = [Message("user", "Where is the Eiffel Tower?")]
    params = SamplingParams(max_new_tokens=6)
    texts = {v: generate(router.views[v], prompt, params).text for v in ("one", "two", None)}
    assert len(set(texts.values())) > 1  # the adapters change what is generated
    for model, view in (("tiny-random-qwen2:one", "one"), ("two", "two"), ("tiny-random-qwen2", None)):
        r = c.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Where is the Eiffel Tower?"}],
            max_tokens=6,
            temperature=0,
        )
        assert r.model == router.views[view].name
        assert r.choices[0].message.content == texts[view]
    with pytest.raises(openai.NotFoundError, match="tiny-random-qwen2:one"):
        c.chat.completions.create(model="three", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
