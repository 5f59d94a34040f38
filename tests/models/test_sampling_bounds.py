"""Decoding parameters at their edges: a vanishing temperature decodes greedily, a seed out of range is refused."""

from __future__ import annotations

import pytest

from clearlm.errors import InvalidInputError
from clearlm.models import Message, SamplingParams, generate


def test_a_vanishing_temperature_decodes_greedily(tiny_backend):
    prompt = [Message("user", "Why is the sky blue?")]
    greedy = generate(tiny_backend, prompt, SamplingParams(max_new_tokens=6))
    # logits / 2e-308 overflowed to inf and sampling from NaN probabilities raised (a 500 on the server)
    tiny = generate(tiny_backend, prompt, SamplingParams(max_new_tokens=6, temperature=2e-308, seed=3))
    assert tiny.token_ids == greedy.token_ids


@pytest.mark.parametrize("seed", [2**70, -(2**64)])
def test_a_seed_outside_64_bits_is_refused(seed):
    with pytest.raises(InvalidInputError, match="seed must be a 64-bit integer"):
        SamplingParams(seed=seed)
