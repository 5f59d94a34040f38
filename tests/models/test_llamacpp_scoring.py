"""Teacher-forced scoring on llama.cpp (``llamacpp_scoring``) on the real packaged GGUF: shared prefixes
decoded once give the log-probabilities of a plain single-sequence llama.cpp evaluation, close to the
torch path's, the same source ranking in context attribution, and the same results while the engine
generates."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from clearlm.explain.context import ContextSources, context_attribution
from clearlm.models import DEFAULT_MODEL, SamplingParams, generate, load_backend
from conftest import TOWN_PASSAGES as PASSAGES

pytestmark = [pytest.mark.integration, pytest.mark.llamacpp]

RESPONSE = "The lighthouse of Brisk Harbour was designed by Anika Brandt."
# GGUF Q5_0/Q4_K/Q6_K weights (output Q8_0), dequantized to float32 for torch: the weights are the same,
# but llama.cpp quantizes activations to 8 bits for its dot products and keeps keys and values in f16.
# This model amplifies such rounding: plain llama.cpp with an f32 instead of an f16 KV cache moves a
# token's log-probability by up to 0.065 nats, and plain llama.cpp differs from torch by up to 0.20 here.
# A shared prefix changes where the cells sit in the cache (so the rounding of the attention sums), which
# moves single tokens by as much: measured up to 0.18 nats against plain llama.cpp and 0.16 against torch.
ATOL = 0.3


def _plain(gguf: str, prompts, response) -> np.ndarray:
    """The reference: each prompt + response evaluated alone by llama.cpp's high-level API, all logits."""
    from llama_cpp import Llama

    llm = Llama(model_path=gguf, n_ctx=1024, logits_all=True, verbose=False)
    rows = []
    for p in prompts:
        llm.reset()
        llm.eval([*p, *response])
        logits = np.asarray(llm.scores[len(p) - 1 : len(p) + len(response) - 1], dtype=np.float64)
        lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
        rows.append(logits[np.arange(len(response)), response] - lse)
    return np.stack(rows)


def _tree_positions(prompts, response) -> int:
    """Positions decoded when every distinct prefix is decoded once, each prompt's last token and the
    response (but its last token) always: the prefix tree of the sequences, counted by hand."""
    seen: set[tuple[int, ...]] = set()
    n = 0
    for p in prompts:
        seq = [*p, *response]
        for k in range(1, len(seq)):  # the position k - 1, holding seq[k - 1]
            if k >= len(p) or tuple(seq[:k]) not in seen:
                n += 1
            seen.add(tuple(seq[:k]))
    return n


def test_engine_scoring_matches_plain_llamacpp_and_torch(default_backend):
    llama = load_backend(DEFAULT_MODEL, "llamacpp")
    sources = ContextSources.in_message(
        PASSAGES,
        before="Passages:\n\n",
        after="\n\nQuestion: Who designed the lighthouse of Brisk Harbour?",
        system="Answer from the passages.",
    )
    masks = [(1, 1, 1), (0, 1, 1), (1, 0, 1), (1, 1, 0), (0, 0, 1)]
    prompts = [llama.encode(sources.render([bool(k) for k in m])).token_ids for m in masks]
    response = llama.tokenizer(RESPONSE, add_special_tokens=False)["input_ids"]

    got = llama.response_logprobs(prompts, response)
    assert got.shape == (len(prompts), len(response)) and got.dtype == np.float64
    # each distinct prefix decoded about once: the positions of the prefix tree (a prompt's last position,
    # whose logits are needed, may be decoded again), not of every sequence
    tree = _tree_positions(prompts, response)
    assert tree <= llama.scorer.decoded_tokens <= tree + len(prompts)
    assert llama.scorer.decoded_tokens < 0.9 * sum(len(p) + len(response) - 1 for p in prompts)
    plain = _plain(llama.llm.model_path, prompts, response)
    torch_lp = default_backend.response_logprobs(prompts, response)
    for reference in (plain, torch_lp):
        assert np.abs(got - reference).max() < ATOL
        assert np.abs(got - reference).mean() < 0.05
        # dropping the answer's passage (ablations 2 and 4) costs the answer the most, on every path
        assert set(np.argsort(reference.sum(1))[:2]) == set(np.argsort(got.sum(1))[:2]) == {2, 4}

    # scoring beside a generation: both give what they give alone
    prompt = "The Eiffel Tower is located in the city of"
    alone = generate(llama, prompt, SamplingParams(max_new_tokens=12)).token_ids
    beside: list = []
    thread = threading.Thread(
        target=lambda: beside.append(generate(llama, prompt, SamplingParams(max_new_tokens=12)).token_ids)
    )
    thread.start()
    again = llama.response_logprobs(prompts, response)
    thread.join(timeout=120)
    assert beside == [alone]
    np.testing.assert_array_equal(again, got)

    # context attribution on llama.cpp ranks the passages as torch does
    ours = context_attribution(llama, sources, RESPONSE, ablations=8, gradient=False)
    theirs = context_attribution(default_backend, sources, RESPONSE, ablations=8, gradient=False)
    assert ours.ranking()[0] == theirs.ranking()[0] == 1
    assert ours.ranking() == theirs.ranking()
    np.testing.assert_allclose(ours.weights, theirs.weights, atol=0.1 + 0.1 * np.abs(theirs.weights).max())
