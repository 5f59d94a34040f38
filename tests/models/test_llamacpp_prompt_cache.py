"""The llama.cpp engine's host-memory prompt cache: the bookkeeping on its own, and finished sequences
moved out of the KV cache and copied back on the real gemma-3-270m GGUF."""

from __future__ import annotations

import pytest

from clearlm.models.backends.llamacpp_prompt_cache import PromptCache, SavedSequence


def saved(tokens: list[int], nbytes: int = 10) -> SavedSequence:
    return SavedSequence(tokens, state=None, nbytes=nbytes)


def test_the_longest_shared_prefix_wins_and_counts_as_used():
    cache = PromptCache(budget_bytes=100)
    a, b = saved([1, 2, 3, 4]), saved([1, 2, 9])
    cache.put(a)
    cache.put(b)
    assert cache.best([1, 2, 3, 7], limit=10) == (3, a)
    assert cache.best([1, 2, 3, 4, 5], limit=3) == (3, a)  # the limit binds
    assert cache.best([5, 6], limit=10) == (0, None)
    cache.put(saved([8], nbytes=85))  # past the budget: the least recently used (b) goes
    assert len(cache) == 2 and cache.best([1, 2, 9], limit=10) == (2, a)
    assert cache.nbytes == 95


def test_a_longer_sequence_replaces_the_ones_it_extends_and_an_oversized_one_is_not_kept():
    cache = PromptCache(budget_bytes=100)
    cache.put(saved([1, 2]))
    cache.put(saved([1, 2, 3]))
    cache.put(saved([1, 5]))
    assert len(cache) == 2 and cache.nbytes == 20
    cache.put(saved([7], nbytes=101))
    assert len(cache) == 2 and cache.best([7], limit=5) == (0, None)


@pytest.mark.integration
@pytest.mark.llamacpp
def test_a_finished_sequence_leaves_the_kv_cache_and_comes_back_with_the_same_results():
    import llama_cpp

    from clearlm.models import SamplingParams, generate, load_backend
    from conftest import assert_greedy_up_to_ties

    gemma = load_backend("gemma-3-270m", "llamacpp", slots=2)
    engine = gemma.engine
    params = SamplingParams(max_new_tokens=6, logprobs=3)
    first = "The history of the lighthouse at the edge of the northern bay is long. " * 6 + "The keeper was"
    other = "A recipe for bread: flour, water, salt and yeast, mixed and left to rise overnight. " * 4

    def steps(prompt: str) -> list:
        return [(t.token_id, t.logprob, t.top) for t in generate(gemma, prompt, params).logprobs]

    def cells(slot: int) -> int:  # the positions llama.cpp holds for the slot's sequence
        return llama_cpp.llama_memory_seq_pos_max(llama_cpp.llama_get_memory(engine.ctx.ctx), slot) + 1

    fresh = steps(first)
    slot = next(k for k, tokens in enumerate(engine._cached) if tokens)
    assert cells(slot) == len(engine._cached[slot]) > 50 and len(engine.prompt_cache) == 0
    prompt = gemma.encode(first).token_ids
    steps(other)  # starting it moves the finished sequence to host memory
    assert [cells(k) for k in range(2)] == [len(tokens) for tokens in engine._cached]
    assert not any(tokens[:20] == prompt[:20] for tokens in engine._cached)
    assert len(engine.prompt_cache) == 1
    before = engine.reused_tokens
    assert_greedy_up_to_ties(steps(first), fresh)  # copied back, not prefilled again
    assert engine.reused_tokens - before == len(prompt) - 1
