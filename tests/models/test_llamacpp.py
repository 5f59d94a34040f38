"""The llama.cpp backend on the real packaged GGUF (an optional extra; `make test` installs it)."""

from __future__ import annotations

import pytest

from clearlm.errors import InvalidInputError
from clearlm.models import DEFAULT_MODEL, Message, SamplingParams, generate, load_backend
from conftest import assert_greedy_up_to_ties

pytestmark = [pytest.mark.integration, pytest.mark.llamacpp]


@pytest.fixture(scope="module")
def llama():
    return load_backend(DEFAULT_MODEL, "llamacpp")


def test_greedy_decoding_says_paris(llama):
    out = generate(llama, "The Eiffel Tower is located in the city of", SamplingParams(max_new_tokens=4))
    assert out.text.startswith(" Paris")
    assert out.finish_reason == "length" and out.completion_tokens == 4


def test_chat_turn_ends_at_end_of_turn_and_streams(llama):
    prompt = [
        Message("system", "Answer in one short sentence."),
        Message("user", "What is the capital of France?"),
    ]
    chunks = list(llama.stream(prompt, SamplingParams(max_new_tokens=64)))
    text = "".join(c.text for c in chunks)
    assert "Paris" in text and "<|im_end|>" not in text
    assert chunks[-1].finish_reason == "stop"
    assert len(chunks) > 3  # streamed token by token


def test_stop_strings_and_seeded_sampling(llama):
    greedy = generate(llama, "The Eiffel Tower is located in the city of", SamplingParams(max_new_tokens=8))
    cut = generate(
        llama,
        "The Eiffel Tower is located in the city of",
        SamplingParams(
            max_new_tokens=8,
            stop=".",
        ),
    )
    assert "." not in cut.text and greedy.text.startswith(cut.text) and cut.finish_reason == "stop"
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=7)
    assert (
        generate(llama, "Once upon a time", params).text == generate(llama, "Once upon a time", params).text
    )


def test_prompt_longer_than_the_context(llama):
    with pytest.raises(InvalidInputError, match="context"):
        generate(llama, "word " * 9000, SamplingParams(max_new_tokens=4))


def test_logprobs_match_the_torch_backend(llama, default_backend):
    prompt = "The Eiffel Tower is located in the city of"
    params = SamplingParams(max_new_tokens=3, logprobs=3)
    ours, theirs = generate(llama, prompt, params), generate(default_backend, prompt, params)
    assert ours.token_ids == theirs.token_ids  # the same GGUF weights, dequantized for torch
    for a, b in zip(ours.logprobs, theirs.logprobs, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=0.05)
        assert [i for i, _ in a.top] == [i for i, _ in b.top]


def test_json_schema_is_enforced_by_a_grammar(llama):
    import json

    from clearlm.models.backends.base import JsonOutput

    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    out = generate(
        llama,
        [Message("user", "What is the capital of France? Reply in JSON.")],
        SamplingParams(max_new_tokens=30, json_output=JsonOutput(json.dumps(schema))),
    )
    assert out.finish_reason == "stop" and "Paris" in json.loads(out.text)["answer"]


def test_slots_decode_together_with_the_same_greedy_results():
    import threading

    batched = load_backend(DEFAULT_MODEL, "llamacpp", slots=4)
    prompts = [f"Question {i}: what is {i} plus {i}? Answer:" for i in range(4)]
    params = SamplingParams(max_new_tokens=8, logprobs=5)

    def steps(i: int) -> list:
        out = generate(batched, prompts[i], params)
        return [(t.token_id, t.logprob, t.top) for t in out.logprobs]

    alone = [steps(i) for i in range(4)]
    together: list = [None] * 4

    def run(i: int) -> None:
        together[i] = steps(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for i in range(4):
        assert_greedy_up_to_ties(together[i], alone[i])
    # a stream closed early frees its slot for the next one
    stream = batched.stream(prompts[0], SamplingParams(max_new_tokens=200))
    next(stream)
    stream.close()
    assert steps(1) == alone[1]
