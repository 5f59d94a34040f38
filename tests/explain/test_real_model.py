"""The real embedded default model (qwen2.5-0.5b-instruct, float32): the issue's acceptance checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clearlm.explain import aggregate_words, explain
from clearlm.explain import gradient as G
from clearlm.explain.sequence import build_sequence
from clearlm.models import SamplingParams, generate

pytestmark = pytest.mark.integration
EIFFEL = "The Eiffel Tower is located in the city of"


def test_greedy_decoding_says_paris(default_backend):
    completion = generate(default_backend, EIFFEL, SamplingParams(max_new_tokens=3))
    first = default_backend.tokenizer.decode(list(completion.token_ids[:1]))
    assert first == " Paris"


@pytest.mark.parametrize("method", ["input_x_gradient", "integrated_gradients"])
def test_eiffel_is_the_top_word_for_paris(default_backend, method):
    r = explain(default_backend, EIFFEL, " Paris", method=method)
    words = aggregate_words(r, "abs_sum")
    top = words.top_sources(0, k=1)[0][0]
    assert words.source_tokens[top] == " Eiffel"
    if method == "integrated_gradients":  # the default adaptive rule reaches its 1% tolerance
        assert r.completeness_gap.shape == (1,) and r.completeness_gap[0] < 0.01
        assert r.params["gradient_evaluations"] <= r.params["steps"]


def test_input_x_gradient_equals_captum_on_the_real_model(default_backend):
    from captum.attr import LayerGradientXActivation, LLMGradientAttribution, TextTokenInput

    target = " Paris. It is"
    seq = build_sequence(default_backend, EIFFEL, target)
    ours = G.gradient_attribution(default_backend.model, seq, "input_x_gradient").scores
    model, tok = default_backend.model, default_backend.tokenizer
    llm = LLMGradientAttribution(LayerGradientXActivation(model, model.get_input_embeddings()), tok)
    theirs = (
        llm.attribute(TextTokenInput(EIFFEL, tok), target=seq.target_ids).token_attr.detach().double().numpy()
    )
    mine = ours[:, : seq.n_prompt]
    assert np.linalg.norm(mine - theirs) / np.linalg.norm(theirs) < 1e-3


def test_integrated_gradients_equal_captum_on_the_real_model(default_backend):
    from captum.attr import IntegratedGradients

    seq = build_sequence(default_backend, EIFFEL, " Paris")
    ours = G.gradient_attribution(
        default_backend.model, seq, "integrated_gradients", steps=16, placement="gauss-legendre"
    ).scores[0]
    model = default_backend.model
    target = int(seq.target_ids[0])

    def forward(e):
        return torch.log_softmax(model(inputs_embeds=e).logits[:, -1], -1)[:, target]

    x = model.get_input_embeddings()(seq.ids[None, : seq.n_prompt]).detach()
    theirs = IntegratedGradients(forward).attribute(x, n_steps=16, internal_batch_size=8).sum(-1)[0]
    theirs = theirs.detach().double().numpy()
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-3


def test_completeness_gap_matches_its_definition(default_backend):
    """The reported gap is |sum of scores - (f(x) - f(baseline))| / |f(x) - f(baseline)|, recomputed here."""
    seq = build_sequence(default_backend, EIFFEL, " Paris")
    out = G.gradient_attribution(default_backend.model, seq, "integrated_gradients", steps=32)
    with torch.no_grad():
        x = default_backend.model.get_input_embeddings()(seq.ids[None])
        fx = G.step_logprobs(default_backend.model, x, seq)[0][0, 0].item()
        f0 = G.step_logprobs(default_backend.model, torch.zeros_like(x), seq)[0][0, 0].item()
    expected = abs(np.nansum(out.scores[0]) - (fx - f0)) / abs(fx - f0)
    assert out.completeness_gap[0] == pytest.approx(expected, rel=1e-3)
