"""Generation: the text stream, sampling parameters, the context budget, and the torch backend on the tiny model."""

from __future__ import annotations

import time

import pytest
import torch

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import (
    MAX_NEW_TOKENS_LIMIT,
    Chunk,
    SamplingParams,
    TextStream,
    budget,
    generate,
)

PROMPT = "cite Italy blue"  # the tiny model's greedy reply: 8 tokens, no end of turn, a 2-byte character


def byte_decoder(pieces: list[bytes]):
    """A decode function over token ids that index ``pieces`` (bytes), like a byte-level BPE decode."""
    return lambda ids: b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")


def pushes(stream: TextStream, n: int) -> list[str]:
    return [stream.push([i]) for i in range(n)]


# --- TextStream -----------------------------------------------------------------------------------------


def test_text_stream_without_stop_strings_releases_everything():
    pieces = [b"Hello", b",", b" world"]
    stream = TextStream(byte_decoder(pieces))
    assert pushes(stream, 3) == ["Hello", ",", " world"]
    assert stream.finish() == ""
    assert not stream.stopped


def test_a_stop_string_split_across_pushes_is_cut_and_never_shown():
    pieces = [b"Paris is ", b"nice.\nU", b"SER: hi", b" more"]
    stream = TextStream(byte_decoder(pieces), stop=("\nUSER:",))
    out = pushes(stream, 4)
    assert out == ["Paris is ", "nice.", "", ""]
    assert stream.stopped
    assert stream.finish() == ""
    assert "".join(out) == "Paris is nice."


def test_the_earliest_of_several_stop_strings_wins():
    pieces = [b"one two three"]
    stream = TextStream(byte_decoder(pieces), stop=("three", "two"))
    assert stream.push([0]) == "one "
    assert stream.stopped


def test_a_prefix_of_a_stop_string_is_held_back_and_released_by_finish():
    pieces = [b"The answer", b" is 4", b"2 ##", b"#"]
    stream = TextStream(byte_decoder(pieces), stop=("###END",))
    assert pushes(stream, 4) == ["The answer", " is 4", "2 ", ""]  # "##", then "###", held back
    assert not stream.stopped
    assert stream.finish() == "###"
    assert stream.finish() == ""  # nothing is released twice


def test_held_back_text_that_turns_out_not_to_be_a_stop_string_is_released():
    pieces = [b"a <", b"/", b"b>"]
    stream = TextStream(byte_decoder(pieces), stop=("</s>",))
    assert pushes(stream, 3) == ["a ", "", "</b>"]


def test_incomplete_utf8_releases_nothing_until_complete():
    euro = "€".encode()  # 3 bytes
    pieces = [b"cost: ", euro[:1], euro[1:2], euro[2:] + b"5", b"\xf0\x9f", b"\x98\x80!"]
    decode = byte_decoder(pieces)
    assert decode([0, 1]).endswith("\ufffd")  # what the fake decode gives for a partial character
    stream = TextStream(decode)
    out = pushes(stream, 6)
    assert out == ["cost: ", "", "", "€5", "", "😀!"]
    assert all("\ufffd" not in piece for piece in out)
    assert stream.finish() == ""


def test_incomplete_utf8_at_the_end_is_released_by_finish():
    pieces = [b"ok", b"\xe2\x82"]
    stream = TextStream(byte_decoder(pieces))
    assert pushes(stream, 2) == ["ok", ""]
    assert stream.finish() == "\ufffd"


def test_a_stop_string_followed_by_an_incomplete_character_is_still_cut():
    pieces = [b"Hi STOP\xe2", b"\x82\xac"]
    stream = TextStream(byte_decoder(pieces), stop=("STOP",))
    assert stream.push([0]) == "Hi "
    assert stream.stopped
    assert stream.finish() == ""  # the stop string is never shown, even when generation ends here
    assert stream.push([1]) == ""


def test_pushing_after_a_stop_releases_nothing():
    stream = TextStream(byte_decoder([b"xSTOPy", b"zzz"]), stop=("STOP",))
    assert stream.push([0]) == "x"
    assert stream.push([1]) == ""
    assert stream.finish() == ""


# --- SamplingParams and budget --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": -5}, "max_new_tokens"),
        ({"max_new_tokens": MAX_NEW_TOKENS_LIMIT + 1}, "max_new_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.01}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"stop": ("###", "")}, "stop strings"),
    ],
)
def test_sampling_params_validation(kwargs, words):
    with pytest.raises(InvalidInputError, match=words):
        SamplingParams(**kwargs)


def test_valid_sampling_params():
    assert SamplingParams().greedy
    assert SamplingParams(max_new_tokens=MAX_NEW_TOKENS_LIMIT).max_new_tokens == MAX_NEW_TOKENS_LIMIT
    params = SamplingParams(max_new_tokens=1, temperature=0.7, top_p=1.0, top_k=0, stop=("x",))
    assert not params.greedy


def test_budget_caps_max_new_tokens_to_the_space_left():
    assert budget(10, SamplingParams(max_new_tokens=100), 256) == 100
    assert budget(250, SamplingParams(max_new_tokens=100), 256) == 6
    assert budget(255, SamplingParams(max_new_tokens=100), 256) == 1
    for prompt_tokens in (256, 300):
        with pytest.raises(InvalidInputError, match="context"):
            budget(prompt_tokens, SamplingParams(), 256)


# --- the torch backend on the tiny model ----------------------------------------------------------------


def argmax_loop(backend, prompt_ids: list[int], n: int) -> list[int]:
    """Greedy decoding by hand: a full forward pass (no KV cache) per token."""
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(n):
            logits = backend.model(torch.tensor([ids]), use_cache=False).logits
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt_ids) :]


def test_greedy_generation_equals_an_argmax_loop(tiny_backend):
    prompt_ids = tiny_backend.encode(PROMPT).token_ids
    expected = argmax_loop(tiny_backend, prompt_ids, 8)
    assert not set(expected) & tiny_backend.eos_token_ids  # so generation runs to the length limit

    result = generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=8))

    assert list(result.token_ids) == expected
    assert result.finish_reason == "length"
    assert result.completion_tokens == 8
    assert result.prompt_tokens == len(prompt_ids) == len(tiny_backend.tokenizer(PROMPT)["input_ids"])
    assert result.text == tiny_backend.decode(expected)


def test_streamed_chunks_add_up_to_the_full_text(tiny_backend):
    params = SamplingParams(max_new_tokens=8)
    chunks = list(tiny_backend.stream(PROMPT, params))
    full = generate(tiny_backend, PROMPT, params)

    assert all(isinstance(c, Chunk) for c in chunks)
    assert "".join(c.text for c in chunks) == full.text
    assert tuple(i for c in chunks for i in c.token_ids) == full.token_ids
    assert "\ufffd" not in full.text and all("\ufffd" not in c.text for c in chunks)
    assert [c.finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["length"]
    assert len([c for c in chunks if c.token_ids]) == 8  # one token per chunk


def test_seeded_sampling_reproduces(tiny_backend):
    def sample(seed):
        return generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=8, temperature=1.0, seed=seed))

    first, again, other = sample(3), sample(3), sample(4)
    greedy = generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=8))
    assert first.token_ids == again.token_ids
    assert first.text == again.text
    assert len(first.token_ids) > 0
    assert other.token_ids != first.token_ids
    assert first.token_ids != greedy.token_ids


def test_a_stop_string_cuts_the_text(tiny_backend):
    full = generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=8))
    stop = full.text[5:8]
    cut = full.text.find(stop)
    assert len(stop) == 3 and cut > 0

    result = generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=8, stop=(stop,)))

    assert result.text == full.text[:cut]
    assert stop not in result.text
    assert result.finish_reason == "stop"
    assert 0 < result.completion_tokens < 8
    assert result.token_ids == full.token_ids[: result.completion_tokens]


def test_closing_the_stream_early_stops_generation_and_releases_the_model(tiny_backend):
    forwards: list[int] = []
    hook = tiny_backend.model.register_forward_hook(lambda *args: forwards.append(1))
    try:
        gen = tiny_backend.stream(PROMPT, SamplingParams(max_new_tokens=240))  # greedy: no end of turn
        first = next(gen)
        assert first.finish_reason is None and len(first.token_ids) == 1
        start = time.monotonic()
        gen.close()
        assert time.monotonic() - start < 1.0
        assert len(forwards) < 10  # cancelled at the next token, not run to 240 tokens
        assert not tiny_backend.lock.locked()

        forwards.clear()
        result = generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=8))  # hangs on a held lock
        assert result.completion_tokens == 8
        assert len(forwards) == 8
    finally:
        hook.remove()


def test_a_prompt_longer_than_the_context(tiny_backend):
    assert tiny_backend.context_length == 256
    prompt = "Rome Madrid Paris " * 100
    assert len(tiny_backend.encode(prompt).token_ids) > 256
    with pytest.raises(InvalidInputError, match="context"):
        generate(tiny_backend, prompt, SamplingParams(max_new_tokens=1))
    assert not tiny_backend.lock.locked()


def test_generation_stops_at_the_end_of_the_context(tiny_backend):
    filler = "Rome " * 300
    ids = tiny_backend.tokenizer(filler)["input_ids"][:253]
    prompt = tiny_backend.tokenizer.decode(ids)
    n_prompt = len(tiny_backend.encode(prompt).token_ids)
    assert 250 <= n_prompt < 256
    expected = argmax_loop(tiny_backend, tiny_backend.encode(prompt).token_ids, 256 - n_prompt)
    if set(expected) & tiny_backend.eos_token_ids:
        pytest.fail("choose another filler: the tiny model ends its turn within the budget")

    result = generate(tiny_backend, prompt, SamplingParams(max_new_tokens=100))

    assert result.completion_tokens == 256 - n_prompt
    assert list(result.token_ids) == expected
    assert result.finish_reason == "length"


@pytest.mark.parametrize("prompt", ["", "   \n", []])
def test_generation_rejects_an_empty_prompt(tiny_backend, prompt):
    with pytest.raises(InvalidInputError):
        generate(tiny_backend, prompt, SamplingParams())


# --- JSON output: bounded whitespace ---------------------------------------------------------------------


@pytest.fixture
def whitespace_lover(tiny_tokenizer):
    """The tiny model with a head that ranks every whitespace-only token first (the rest at 0)."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    model = make_model(tiny_tokenizer)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True, dtype=model.dtype)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        for token, i in tiny_tokenizer.get_vocab().items():
            text = tiny_tokenizer.convert_tokens_to_string([token])
            if text and text.isspace():
                head.bias[i] = 10.0
    model.lm_head = head
    return TorchBackend(model, tiny_tokenizer, "tiny-whitespace")


@pytest.mark.parametrize("schema", [None, '{"type": "object", "properties": {"a": {"type": "integer"}}}'])
def test_json_output_bounds_runs_of_whitespace(whitespace_lover, schema):
    import re

    from clearlm.models.backends.base import JsonOutput
    from clearlm.models.tools import MAX_WHITESPACE

    free = generate(whitespace_lover, PROMPT, SamplingParams(max_new_tokens=12))
    assert free.text.isspace() and len(free.text) > MAX_WHITESPACE  # unconstrained, it pads
    out = generate(
        whitespace_lover, PROMPT, SamplingParams(max_new_tokens=40, json_output=JsonOutput(schema))
    )
    between = re.sub(r'"(?:[^"\\]|\\.)*"?', '""', out.text)  # whitespace inside a string is its text
    runs = [len(r) for r in re.findall(r"\s+", between)]
    assert between.startswith("{") and runs and max(runs) <= MAX_WHITESPACE, repr(out.text)
