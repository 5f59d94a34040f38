"""Faithfulness metrics on the tiny model: values recomputed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clearlm.errors import InvalidInputError
from clearlm.explain import aggregate_words, explain
from clearlm.explain.metrics import _last_logprobs, evaluate, random_attribution

PROMPT = "The capital of Italy is"
TARGET = " Rome. The"


def p_target(backend, ids: list[int], target: int) -> float:
    with torch.no_grad():
        logits = backend.model(torch.tensor([ids])).logits[0, -1]
    return torch.softmax(logits.double(), -1)[target].item()


def test_right_padding_does_not_change_the_last_logits(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="saliency")
    ids = torch.tensor(r.token_ids)
    n_p = r.n_prompt
    keeps = [list(range(n_p + t)) for t in range(r.n_targets)]
    got = _last_logprobs(tiny_backend.model, ids, keeps, r.token_ids[n_p:], batch_size=3)
    np.testing.assert_allclose(np.exp(got), r.target_probs, rtol=1e-5)


def test_comprehensiveness_and_sufficiency_by_hand(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="input_x_gradient")
    f = evaluate(tiny_backend, r, fractions=(0.2,), samples=1)
    ids, n_p = r.token_ids, r.n_prompt
    for t in range(r.n_targets):
        sources = list(range(n_p + t))
        order = sorted(sources, key=lambda s: -float(r.scores[t, s]))
        top = set(order[: math.ceil(0.2 * len(sources))])
        full = float(r.target_probs[t])
        without = p_target(tiny_backend, [ids[s] for s in sources if s not in top], ids[n_p + t])
        only = p_target(tiny_backend, [ids[s] for s in sources if s in top], ids[n_p + t])
        assert f.comprehensiveness[t] == pytest.approx(full - without, abs=1e-6)
        assert f.sufficiency[t] == pytest.approx(full - only, abs=1e-6)


def test_soft_metrics_are_seeded_and_bounded(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="occlusion")
    a = evaluate(tiny_backend, r, samples=2, seed=1)
    b = evaluate(tiny_backend, r, samples=2, seed=1)
    np.testing.assert_array_equal(a.soft_nc, b.soft_nc)
    finite = a.soft_nc[np.isfinite(a.soft_nc)]
    assert np.all(finite >= 0)
    assert set(a.summary()) == {"comprehensiveness", "sufficiency", "soft_nc", "soft_ns"}


def test_random_floor_keeps_the_causal_mask(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="saliency")
    floor = random_attribution(r, seed=3)
    assert floor.method == "random"
    np.testing.assert_array_equal(np.isnan(floor.scores), np.isnan(r.scores))
    assert not np.array_equal(np.nan_to_num(floor.scores), np.nan_to_num(r.scores))


def test_word_level_results_are_refused(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="saliency")
    with pytest.raises(InvalidInputError, match="token-level"):
        evaluate(tiny_backend, aggregate_words(r))


def test_a_shared_cache_reuses_forward_passes_and_changes_nothing(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="input_x_gradient")
    floor = random_attribution(r, seed=2)
    calls = []
    hook = tiny_backend.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        cache: dict = {}
        first = evaluate(tiny_backend, r, samples=2, cache=cache)
        n_first = len(calls)
        again = evaluate(tiny_backend, r, samples=2, cache=cache)
        n_again = len(calls) - n_first
        evaluate(tiny_backend, floor, samples=2, cache=cache)
    finally:
        hook.remove()
    plain = evaluate(tiny_backend, r, samples=2)
    for name in ("comprehensiveness", "sufficiency", "soft_nc", "soft_ns"):
        np.testing.assert_allclose(getattr(first, name), getattr(plain, name), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert n_again == 2 * 2  # only the random Soft-NC/NS masks run again
    assert len(cache) > 1
