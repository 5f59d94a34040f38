"""One short tuning run on the real packaged default model (qwen2.5-0.5b-instruct, float32 on CPU)."""

from __future__ import annotations

import math

import pytest

from clearlm.tune import TuneConfig, tune


@pytest.mark.integration
def test_two_steps_on_the_default_model(home, default_backend, docs, email_policy):
    from clearlm.models.catalog import get_spec

    config = TuneConfig(
        steps=2, seq_len=48, grad_accum=1, warmup_steps=0, rank=4, eval_tokens=48, held_out=0.3
    )
    result = tune("real", default_backend, docs, config, policy=email_policy)
    card, f = result.card, result.card["figures"]
    assert card["base"]["gguf_sha256"] == get_spec("qwen2.5-0.5b-instruct").sha256
    assert card["base"]["parameters"] > 400_000_000
    assert all(math.isfinite(x) for x in result.report["losses"]) and len(result.report["losses"]) == 2
    # a trained model: a uniform guess over its 151,936 tokens would have a perplexity of 151,936
    assert 1 < f["domain"]["before"]["perplexity"] < 1000 and 1 < f["general"]["before"]["perplexity"] < 1000
    assert f["memory_estimate"]["weights_bytes"] > 1.5e9 and f["tokens_per_s"] > 0
    assert not any(
        "lora" in n for n, _ in default_backend.model.named_modules()
    )  # the base is left as it was
