"""Gradient methods against Captum on a tiny random float64 model: equal to 1e-8."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clearlm.explain import explain
from clearlm.explain import gradient as G
from clearlm.explain.sequence import build_sequence

PROMPT = "The capital of Italy is"
TARGET = " Rome. The capital of Spain"


def ours(backend, method, target=TARGET, **kw):
    """float64 scores straight from the gradient module (the Attribution result rounds to float32)."""
    seq = build_sequence(backend, PROMPT, target)
    return G.gradient_attribution(backend.model, seq, method, **kw).scores


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def captum_per_step(backend, seq, attr_cls, **attr_kwargs):
    """Captum's plain method on the embeddings, run the way inseq/Captum do: one prefix per target step.

    Returns float64[n_targets, n_sources, D] per-dimension attributions (zeros past each prefix)."""
    model = backend.model
    embed = model.get_input_embeddings()
    n_p, n_t = seq.n_prompt, seq.n_targets
    out = np.zeros((n_t, seq.n_sources, model.config.hidden_size))
    for t in range(n_t):
        prefix = seq.ids[: n_p + t]
        target = int(seq.ids[n_p + t])

        def forward(e, target=target):
            return torch.log_softmax(model(inputs_embeds=e).logits[:, -1], -1)[:, target]

        x = embed(prefix[None]).detach().requires_grad_(True)
        attr = attr_cls(forward).attribute(x, **attr_kwargs)
        out[t, : n_p + t] = attr[0].detach().numpy()
    return out


def test_input_x_gradient_equals_captum_llm_gradient_attribution(tiny_backend):
    from captum.attr import LayerGradientXActivation, LLMGradientAttribution, TextTokenInput

    scores = ours(tiny_backend, "input_x_gradient")
    model, tok = tiny_backend.model, tiny_backend.tokenizer
    llm = LLMGradientAttribution(LayerGradientXActivation(model, model.get_input_embeddings()), tok)
    inp = TextTokenInput(PROMPT, tok)
    target_ids = torch.tensor(tok(TARGET, add_special_tokens=False)["input_ids"])
    theirs = llm.attribute(inp, target=target_ids).token_attr.detach().numpy()  # [T, n_prompt]
    n_prompt = len(inp.to_tensor()[0])
    assert theirs.shape == (len(target_ids), n_prompt)
    assert rel_err(scores[:, :n_prompt], theirs) < 1e-8


def test_saliency_is_gradient_norm_equal_to_captum(tiny_backend):
    from captum.attr import Saliency

    scores = ours(tiny_backend, "saliency")
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    grads = captum_per_step(tiny_backend, seq, Saliency, abs=False)
    theirs = np.linalg.norm(grads, axis=-1)
    mask = ~np.isnan(scores)
    assert rel_err(scores[mask], theirs[mask]) < 1e-8
    assert np.all(theirs[~mask] == 0)  # our NaNs are exactly the sources Captum never sees


@pytest.fixture
def captum_step_sizes(monkeypatch):
    """Captum casts its quadrature weights to float32 (integrated_gradients.py: ``torch.tensor(step_sizes)
    .float()``), a 1e-7 relative change; give ours the same rounding so the comparison can be exact."""
    exact = G.integration_points

    def rounded(steps, placement="gauss-legendre"):
        alphas, weights = exact(steps, placement)
        return alphas, weights.astype(np.float32).astype(np.float64)

    monkeypatch.setattr(G, "integration_points", rounded)


@pytest.mark.usefixtures("captum_step_sizes")
def test_integrated_gradients_equal_captum(tiny_backend):
    from captum.attr import IntegratedGradients

    scores = ours(tiny_backend, "integrated_gradients", steps=16, baseline="zero", placement="gauss-legendre")
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    theirs = captum_per_step(tiny_backend, seq, IntegratedGradients, n_steps=16, method="gausslegendre").sum(
        -1
    )
    mask = ~np.isnan(scores)
    assert rel_err(scores[mask], theirs[mask]) < 1e-8
    result = explain(
        tiny_backend, PROMPT, TARGET, method="integrated_gradients", steps=16, placement="gauss-legendre"
    )
    assert result.params["steps"] == 16 and result.params["baseline"] == "zero"
    np.testing.assert_array_equal(result.scores, scores.astype(np.float32))
    assert result.completeness_gap.shape == (result.n_targets,)


@pytest.mark.parametrize("placement", ["gauss-legendre", "riemann"])
def test_integration_points_integrate_polynomials(placement):
    alphas, weights = G.integration_points(8, placement)
    assert weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert (weights * alphas).sum() == pytest.approx(0.5, abs=1e-14)  # exact for linear integrands
    if placement == "gauss-legendre":
        assert (weights * alphas**15).sum() == pytest.approx(1 / 16, abs=1e-14)  # degree 2n - 1


def test_completeness_gap_is_reported_and_shrinks_with_steps(tiny_backend):
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    coarse, fine = (
        G.gradient_attribution(
            tiny_backend.model, seq, "integrated_gradients", steps=n, placement="gauss-legendre"
        )
        for n in (16, 256)
    )
    # recompute the gap independently: f(x) - f(0) from two forward passes
    with torch.no_grad():
        x = tiny_backend.model.get_input_embeddings()(seq.ids[None])
        delta = (
            G.step_logprobs(tiny_backend.model, x, seq)[0]
            - G.step_logprobs(tiny_backend.model, 0 * x, seq)[0]
        )[0]
    expected = np.abs(np.nansum(fine.scores, 1) - delta.numpy()) / np.abs(delta.numpy())
    np.testing.assert_allclose(fine.completeness_gap, expected, rtol=1e-5, atol=1e-7)
    assert fine.completeness_gap.max() < 1e-3 < coarse.completeness_gap.max()


def test_batched_backward_equals_one_backward_per_row(tiny_backend, monkeypatch):
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    batched = G.gradient_attribution(tiny_backend.model, seq, "input_x_gradient", rows_per_call=8)
    monkeypatch.setattr(G._RowGradients, "batched", False)
    looped = G.gradient_attribution(tiny_backend.model, seq, "input_x_gradient", rows_per_call=1)
    np.testing.assert_allclose(batched.scores, looped.scores, rtol=1e-10, atol=1e-14)


def test_causal_mask_and_shapes(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="input_x_gradient")
    n_p, n_t = r.n_prompt, r.n_targets
    assert r.scores.shape == (n_t, n_p + n_t - 1) and r.scores.dtype == np.float32
    for t in range(n_t):
        assert not np.isnan(r.scores[t, : n_p + t]).any()
        assert np.isnan(r.scores[t, n_p + t :]).all()
    assert np.all((r.target_probs > 0) & (r.target_probs < 1))


def test_contrastive_is_difference_of_two_explanations(tiny_backend):
    """Input x gradient is linear in f, so attributing log p(A) - log p(B) equals the difference."""
    tok = tiny_backend.tokenizer
    contrast = tok.decode(tok(" Madrid", add_special_tokens=False)["input_ids"][:1])  # one token
    target = " Rome"
    r = explain(tiny_backend, PROMPT, target, method="contrastive", contrast=contrast)
    ra = explain(tiny_backend, PROMPT, target, method="input_x_gradient")
    rb = explain(tiny_backend, PROMPT, contrast, method="input_x_gradient")
    n = r.n_prompt
    np.testing.assert_allclose(r.scores[0, :n], ra.scores[0, :n] - rb.scores[0, :n], rtol=1e-5, atol=1e-9)
    assert r.contrast_tokens[0] == contrast
    assert r.contrast_probs[0] == pytest.approx(rb.target_probs[0], rel=1e-6)
    # later steps are contrasted with themselves: log p(a) - log p(a) has zero gradient
    assert np.all(np.nan_to_num(r.scores[1:]) == 0)


@pytest.mark.parametrize(
    ("method", "kw"),
    [
        ("input_x_gradient", {}),
        ("integrated_gradients", {"steps": 16, "placement": "gauss-legendre"}),
        ("occlusion", {}),
    ],
)
def test_sequence_level_equals_the_sum_of_token_rows(tiny_backend, method, kw):
    """Attributing sum_t log p(target_t) (one backward per step) equals summing the token-level rows for
    input x gradient and integrated gradients by linearity; occlusion's drops add up the same way."""
    tokens = explain(tiny_backend, PROMPT, TARGET, method=method, **kw)
    whole = explain(tiny_backend, PROMPT, TARGET, method=method, sequence=True, **kw)
    assert whole.target_tokens == ["".join(tokens.target_tokens)] and whole.params["sequence"] is True
    assert whole.scores.shape == (1, tokens.n_sources) and not np.isnan(whole.scores).any()
    assert rel_err(whole.scores[0], np.nansum(tokens.scores, 0)) < 1e-5  # float32 results
    assert whole.target_probs[0] == pytest.approx(np.prod(tokens.target_probs.astype(np.float64)), rel=1e-5)


def test_sequence_level_input_x_gradient_equals_captum_seq_attr(tiny_backend):
    from captum.attr import LayerGradientXActivation, LLMGradientAttribution, TextTokenInput

    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    ours = G.gradient_attribution(tiny_backend.model, seq, "input_x_gradient", sequence=True).scores[0]
    model, tok = tiny_backend.model, tiny_backend.tokenizer
    llm = LLMGradientAttribution(LayerGradientXActivation(model, model.get_input_embeddings()), tok)
    theirs = llm.attribute(TextTokenInput(PROMPT, tok), target=seq.target_ids).seq_attr.detach().numpy()
    # One backward of the sum against a sum of per-token backwards: Qwen2's RMSNorm runs in float32 even in
    # this float64 model, so the two orders of summation differ at float32's precision, not float64's.
    assert rel_err(ours[: seq.n_prompt], theirs) < 1e-6


def test_sequence_level_adaptive_integrated_gradients_meets_its_tolerance(tiny_backend):
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    out = G.gradient_attribution(
        tiny_backend.model, seq, "integrated_gradients", sequence=True, tolerance=1e-3
    )
    assert out.scores.shape == (1, seq.n_sources) and out.completeness_gap[0] <= 1e-3


def test_sequence_level_is_refused_by_attention(tiny_backend):
    from clearlm.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown option"):
        explain(tiny_backend, PROMPT, TARGET, method="attention", sequence=True)
