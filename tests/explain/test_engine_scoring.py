"""Attribution through a backend's own scorer (the llama.cpp path), checked on the tiny float64 model with a
reference scorer: the bookkeeping around the scorer (which sequences, which positions, which rows) gives
the same occlusion scores and context attribution as the torch path, and the gates say what is missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clearlm.errors import BackendUnavailableError
from clearlm.explain.aggregate import word_spans
from clearlm.explain.context import ContextSources, context_attribution
from clearlm.explain.occlusion import occlusion_scores
from clearlm.explain.sequence import build_sequence

TEXTS = (
    "The Eiffel Tower is located in the city of Paris, France.",
    "The capital of Italy is Rome. The capital of Spain is Madrid.",
    "Why is the sky blue? Because of Rayleigh scattering of sunlight.",
)
RESPONSE = " The Eiffel Tower is in Paris."


class Scoring:
    """A backend without gradients that scores each sequence alone, as a plain forward pass: what the
    llama.cpp backend offers, over the tiny torch model."""

    kind = "llamacpp"

    def __init__(self, inner) -> None:
        self.inner, self.tokenizer, self.name = inner, inner.tokenizer, inner.name
        self.context_length, self.encode, self.decode = inner.context_length, inner.encode, inner.decode
        self.calls = 0

    def sequence_logprobs(self, seqs, starts):
        self.calls += 1
        out = []
        for s, start in zip(seqs, starts, strict=True):
            with torch.no_grad():
                logp = torch.log_softmax(self.inner.model(torch.tensor([list(s)])).logits[0], -1)
            out.append(np.array([logp[j - 1, s[j]].item() for j in range(start, len(s))]))
        return out

    def response_logprobs(self, prompts, response):
        seqs = [[*p, *response] for p in prompts]
        return np.stack(self.sequence_logprobs(seqs, [len(p) for p in prompts]))


def test_occlusion_through_a_scorer_equals_the_torch_path(tiny_backend):
    seq = build_sequence(tiny_backend, "The capital of Italy is", " Rome. The")
    scorer = Scoring(tiny_backend)
    tokens = [(i, i + 1) for i in range(seq.n_sources)]
    words = word_spans(seq.tokens[:-1], seq.special[:-1], seq.message_index[:-1])
    for groups, baseline in ((tokens, None), (words, None), (tokens, 0)):
        want, want_full = occlusion_scores(tiny_backend.model, seq, groups, baseline_id=baseline)
        got, got_full = occlusion_scores(None, seq, groups, baseline_id=baseline, scorer=scorer)
        np.testing.assert_allclose(got_full, want_full, atol=1e-9)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # the same (group, target) pairs
        np.testing.assert_allclose(got, want, atol=1e-5, equal_nan=True)  # float32 scores
        assert np.isfinite(got).sum() > len(groups)  # generated tokens as groups count too
    assert scorer.calls == 3  # every occluded sequence in one call


def test_context_attribution_without_gradients_on_a_scoring_backend(tiny_backend):
    src = ContextSources.in_message(TEXTS, before="Passages:\n\n", after="\n\nQ: where is the tower?")
    want = context_attribution(tiny_backend, src, RESPONSE, ablations=8, gradient=False, alpha=1e-6)
    got = context_attribution(Scoring(tiny_backend), src, RESPONSE, ablations=8, gradient=False, alpha=1e-6)
    np.testing.assert_array_equal(got.masks, want.masks)
    np.testing.assert_allclose(got.logprobs, want.logprobs, atol=1e-9)
    np.testing.assert_allclose(got.weights, want.weights, atol=1e-7)
    assert got.gradient is None and got.exact and np.abs(got.weights).max() > 0


def test_gates_say_what_each_backend_lacks(tiny_backend):
    src = ContextSources.in_message(TEXTS)
    with pytest.raises(BackendUnavailableError, match="gradient=False"):
        context_attribution(Scoring(tiny_backend), src, RESPONSE)  # gradient defaults to True

    class NoScoring:
        kind = "vllm"

    with pytest.raises(BackendUnavailableError, match="cannot score"):
        context_attribution(NoScoring(), src, RESPONSE, gradient=False)


def test_the_torch_backend_scores_like_scoring_response_logprobs(tiny_backend):
    from clearlm.models.backends.torch_scoring import response_logprobs

    prompts = [[5, 6, 7, 8, 9, 10], [5, 6, 7, 11], [5, 6]]
    got = tiny_backend.response_logprobs(prompts, [12, 13, 14])
    np.testing.assert_array_equal(got, response_logprobs(tiny_backend.model, prompts, [12, 13, 14]))
    assert got.shape == (3, 3) and (got < 0).all()
