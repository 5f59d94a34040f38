"""Context attribution on the tiny float64 model: batched, prefix-shared scoring equals one forward pass per
ablation; the surrogate recovers known weights; source spans and gradient totals match the explanation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.explain import explain
from clearlm.explain.context import (
    ContextAttribution,
    ContextSources,
    context_attribution,
    logit_mean_prob,
    source_token_spans,
)
from clearlm.explain.surrogate import ablation_masks, fit_surrogate
from clearlm.models import Message
from clearlm.models.backends.torch_scoring import response_logprobs

TEXTS = (
    "The Eiffel Tower is located in the city of Paris, France.",
    "The capital of Italy is Rome. The capital of Spain is Madrid.",
    "Why is the sky blue? Because of Rayleigh scattering of sunlight.",
)
RESPONSE = " The Eiffel Tower is in Paris."


def sources() -> ContextSources:
    return ContextSources.in_message(
        TEXTS,
        before="Passages:\n\n",
        after="\n\nQuestion: where is the Eiffel Tower?",
        system="You are a helpful assistant. Answer briefly and cite your sources.",
    )


def unbatched_logprobs(model, prompt_ids: list[int], response_ids: list[int]) -> np.ndarray:
    """The reference: one plain forward pass over prompt + response, no cache, no batch."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + response_ids])).logits[0]
    logp = torch.log_softmax(logits, -1)
    n = len(prompt_ids)
    return np.array([logp[n - 1 + t, r].item() for t, r in enumerate(response_ids)])


# ---- batched scoring -----------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_scores_equal_one_forward_per_prompt(tiny_backend, share, batch_size):
    rng = np.random.default_rng(1)
    head = rng.integers(3, 250, 30).tolist()
    parts = [rng.integers(3, 250, k).tolist() for k in (7, 12, 5, 9)]
    tail = [5, 6, 7]
    prompts = [
        head + [t for keep, part in zip(mask, parts, strict=True) if keep for t in part] + tail
        for mask in itertools.product([True, False], repeat=4)
    ]
    response = rng.integers(3, 250, 6).tolist()
    stats: dict = {}
    ours = response_logprobs(
        tiny_backend.model, prompts, response, batch_size=batch_size, share_prefixes=share, stats=stats
    )
    reference = np.stack([unbatched_logprobs(tiny_backend.model, p, response) for p in prompts])
    assert ours.shape == (16, 6) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)
    unshared = sum(len(p) + len(response) for p in prompts)
    if share:  # the 30-token head once, each part once per distinct prefix before it
        assert stats["tokens"] < 0.6 * unshared
    elif batch_size == 1:
        assert stats == {"forward_passes": 16, "tokens": unshared}


def test_context_attribution_scores_equal_unbatched_forwards(tiny_backend):
    src = sources()
    result = context_attribution(tiny_backend, src, RESPONSE, ablations=8, batch_size=3)
    assert result.exact and result.n_ablations == 8
    assert sorted(map(tuple, result.masks.tolist())) == sorted(itertools.product([False, True], repeat=3))
    assert result.masks[0].all()
    response_ids = result.response_ids
    for mask, row, score in zip(result.masks, result.logprobs, result.scores, strict=True):
        ids = tiny_backend.encode(src.render(mask)).token_ids
        reference = unbatched_logprobs(tiny_backend.model, ids, response_ids)
        np.testing.assert_allclose(row, reference, rtol=0, atol=1e-5)
        assert abs(score - logit_mean_prob(reference[None])[0]) < 1e-5
    assert result.full_score == result.scores[0]


def test_logit_mean_prob():
    lp = np.log(np.array([[0.5, 0.5, 0.5], [0.9, 0.1, 0.8], [1.0, 1.0, 1.0]]))
    out = logit_mean_prob(lp)
    assert out[0] == pytest.approx(0.0, abs=1e-12)
    assert out[1] == pytest.approx(np.log(0.6 / 0.4))
    assert np.isfinite(out[2]) and out[2] == pytest.approx(np.log((1 - 1e-15) / 1e-15), rel=1e-3)
    counted = logit_mean_prob(lp, [True, False, True])
    assert counted[1] == pytest.approx(np.log(0.85 / 0.15))
    with pytest.raises(ValueError):
        logit_mean_prob(lp, [False, False, False])


# ---- masks and surrogate -------------------------------------------------------------------------------


def test_masks_exact_when_the_budget_allows_else_distinct_and_seeded():
    masks, exact = ablation_masks(3, 8)
    assert exact and masks.shape == (8, 3) and len({tuple(m) for m in masks.tolist()}) == 8
    masks, exact = ablation_masks(6, 40, seed=3)
    assert not exact and masks.shape == (40, 6) and masks[0].all()
    assert len({tuple(m) for m in masks.tolist()}) == 40
    assert 0.35 < masks[1:].mean() < 0.65  # each source kept with probability 1/2
    again, _ = ablation_masks(6, 40, seed=3)
    other, _ = ablation_masks(6, 40, seed=4)
    assert np.array_equal(masks, again) and not np.array_equal(masks, other)
    with pytest.raises(ValueError):
        ablation_masks(0, 8)


def test_surrogate_recovers_known_sparse_weights():
    true = np.array([2.0, 0.0, -1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    masks, _ = ablation_masks(len(true), 128, seed=0)
    rng = np.random.default_rng(0)
    scores = 0.7 + masks @ true + rng.normal(0, 0.05, len(masks))
    fit = fit_surrogate(masks, scores, alpha=0.01, folds=4)
    np.testing.assert_allclose(fit.weights, true, atol=0.06)
    assert fit.intercept == pytest.approx(0.7, abs=0.06)
    assert fit.lds > 0.97 and fit.r2 > 0.97 and fit.folds == 4
    assert np.abs(fit.weights[true == 0]).max() < 0.03  # LASSO keeps the irrelevant sources near zero


def test_surrogate_on_constant_scores_and_tiny_budgets():
    masks, _ = ablation_masks(2, 4)
    fit = fit_surrogate(masks, np.full(4, 3.0))
    assert np.all(fit.weights == 0) and fit.intercept == 3.0 and np.isnan(fit.lds) and np.isnan(fit.r2)
    fit = fit_surrogate(masks[:2], np.array([1.0, 0.0]))
    assert fit.folds == 0 and np.isnan(fit.lds)


# ---- spans and gradients -------------------------------------------------------------------------------


def test_source_spans_cover_exactly_the_source_tokens(tiny_backend):
    src = sources()
    encoded = tiny_backend.encode(src.render([True] * 3))
    spans = source_token_spans(tiny_backend, encoded, src.texts)
    tokens = encoded.token_ids
    for (a, b), text in zip(spans, src.texts, strict=True):
        assert tiny_backend.tokenizer.decode(tokens[a:b]) == text
    assert spans[0][0] > 0 and spans[-1][1] < len(tokens) and spans[0][1] < spans[1][0]


def test_source_spans_of_chat_messages(tiny_backend):
    messages = [
        Message("system", "Be brief."),
        Message("user", TEXTS[0]),
        Message("assistant", "Noted."),
        Message("user", "Where is the Eiffel Tower?"),
    ]
    src = ContextSources.from_messages(messages, sources=[1, 2])
    assert src.texts == (TEXTS[0], "Noted.")
    assert [m.content for m in src.render([False, True])] == ["Be brief.", "Noted.", messages[3].content]
    encoded = tiny_backend.encode(src.render([True, True]))
    spans = source_token_spans(tiny_backend, encoded, src.texts)
    for (a, b), i in zip(spans, (1, 2), strict=True):
        assert set(encoded.message_index[a:b]) == {i}  # the chat template's own message mapping agrees
    with pytest.raises(InvalidInputError, match="distinct"):
        ContextSources.from_messages(messages, sources=[1, 1])


def test_gradient_totals_equal_the_explanation_summed_over_targets_and_spans(tiny_backend):
    src = sources()
    result = context_attribution(tiny_backend, src, RESPONSE, ablations=4)
    reference = explain(tiny_backend, src.render([True] * 3), RESPONSE, method="input_x_gradient")
    per_source = np.nansum(reference.scores.astype(np.float64), axis=0)
    expected = np.array([per_source[a:b].sum() for a, b in result.source_spans])
    np.testing.assert_allclose(result.gradient, expected, rtol=1e-4, atol=1e-7)  # explain stores float32
    assert np.abs(result.gradient_shares).sum() == pytest.approx(1.0)
    assert np.allclose(result.gradient_shares, result.gradient / np.abs(result.gradient).sum())


def test_counted_tokens_restrict_the_score(tiny_backend):
    src = sources()
    n = len(tiny_backend.tokenizer(RESPONSE, add_special_tokens=False)["input_ids"])
    counted = [True] * (n - 2) + [False, False]
    result = context_attribution(tiny_backend, src, RESPONSE, ablations=4, counted=counted, gradient=False)
    np.testing.assert_allclose(result.scores, logit_mean_prob(result.logprobs, counted))
    assert result.gradient is None and result.counted == counted


# ---- result --------------------------------------------------------------------------------------------


def test_result_json_round_trip(tiny_backend, tmp_path):
    result = context_attribution(tiny_backend, sources(), RESPONSE, ablations=6, seed=2)
    assert not result.exact and result.n_ablations == 6 and result.params["seed"] == 2
    again = ContextAttribution.from_json(result.to_json())
    assert again.equals(result)
    assert ContextAttribution.load(result.save(tmp_path / "c.json")).equals(result)
    assert result.ranking()[0] == int(np.argmax(result.weights))
    assert set(result.seconds) == {"ablation", "gradient"}


def test_bad_input_is_refused_clearly(tiny_backend):
    src = sources()

    class NoGradients:
        kind = "llamacpp"

    with pytest.raises(BackendUnavailableError, match="torch backend"):
        context_attribution(NoGradients(), src, RESPONSE)
    with pytest.raises(InvalidInputError, match="at least 2 ablations"):
        context_attribution(tiny_backend, src, RESPONSE, ablations=1)
    with pytest.raises(InvalidInputError, match="response is empty"):
        context_attribution(tiny_backend, src, [])
    with pytest.raises(InvalidInputError, match="counted"):
        context_attribution(tiny_backend, src, RESPONSE, counted=[True])
    with pytest.raises(InvalidInputError, match="at least one source"):
        ContextSources((), lambda mask: "x")
    with pytest.raises(InvalidInputError, match="empty"):
        ContextSources(("a", ""), lambda mask: "x")
    rewritten = ContextSources(TEXTS, lambda mask: "\n".join(t.upper() for t in TEXTS))
    with pytest.raises(InvalidInputError, match="not in the rendered prompt verbatim"):
        context_attribution(tiny_backend, rewritten, RESPONSE, ablations=2)
