"""Attention, rollout, occlusion, word aggregation, the result's JSON form, and bad input (tiny model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clearlm.errors import InvalidInputError
from clearlm.explain import Attribution, aggregate_words, explain
from clearlm.explain.aggregate import word_spans
from clearlm.explain.sequence import build_sequence
from clearlm.models import Message

PROMPT = "The capital of Italy is"
TARGET = " Rome. The"


def logp_of_targets(backend, ids: list[int], targets: list[int]) -> np.ndarray:
    """log p of each target token after ``ids`` (fresh forward passes, no sharing)."""
    out = []
    for k, t in enumerate(targets):
        seq = torch.tensor([ids + targets[:k]])
        with torch.no_grad():
            logits = backend.model(seq).logits[0, -1]
        out.append(torch.log_softmax(logits, -1)[t].item())
    return np.array(out)


def test_attention_rows_are_probabilities(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="attention")
    n_layers = tiny_backend.model.config.num_hidden_layers
    n_heads = tiny_backend.model.config.num_attention_heads
    assert r.layer_head_scores.shape == (n_layers, n_heads, r.n_targets, r.n_sources)
    np.testing.assert_allclose(np.nansum(r.layer_head_scores, -1), 1.0, atol=1e-5)
    mask = ~np.isnan(r.scores)
    np.testing.assert_allclose(r.scores[mask], r.layer_head_scores.mean(axis=(0, 1))[mask], atol=1e-6)
    one = explain(tiny_backend, PROMPT, TARGET, method="attention", layer=-1, head=2)
    np.testing.assert_allclose(one.scores, r.layer_head_scores[-1, 2], atol=1e-7)
    with pytest.raises(InvalidInputError, match="layer 9 is out of range"):
        explain(tiny_backend, PROMPT, TARGET, method="attention", layer=9)
    # the model's attention implementation is restored afterwards
    assert tiny_backend.model.config._attn_implementation != "eager"


def test_attention_rollout_rows_sum_to_one(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="attention_rollout")
    np.testing.assert_allclose(np.nansum(r.scores, -1), 1.0, atol=1e-5)
    assert np.nanmin(r.scores) >= 0


def test_occlusion_equals_leaving_the_token_out(tiny_backend):
    r = explain(tiny_backend, PROMPT, TARGET, method="occlusion")
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    ids, n_p = seq.ids.tolist(), seq.n_prompt
    full = logp_of_targets(tiny_backend, ids[:n_p], ids[n_p:])
    for j in (0, 2, n_p - 1, n_p):  # prompt tokens and the first generated token
        without = ids[:j] + ids[j + 1 :]
        if j < n_p:
            expected = full - logp_of_targets(tiny_backend, without[: n_p - 1], ids[n_p:])
            np.testing.assert_allclose(r.scores[:, j], expected, atol=1e-9)
        else:  # target 0 is no longer predicted after removal; later targets are
            later = logp_of_targets(tiny_backend, without[:n_p], without[n_p:])
            np.testing.assert_allclose(r.scores[1:, j], full[1:] - later, atol=1e-9)
            assert np.isnan(r.scores[0, j])


def test_occlusion_by_word_and_with_a_baseline_token(tiny_backend):
    words = explain(
        tiny_backend, "The Eiffel Tower is located in the city of", " Paris", method="occlusion", unit="word"
    )
    assert words.granularity == "word"
    prompt_words = words.source_tokens[: words.n_prompt]
    assert "".join(prompt_words) == "The Eiffel Tower is located in the city of"
    assert prompt_words[1] == " Eiffel"
    assert all(b - a >= 1 for a, b in words.source_spans)
    replaced = explain(tiny_backend, PROMPT, TARGET, method="occlusion", baseline="<|endoftext|>")
    seq = build_sequence(tiny_backend, PROMPT, TARGET)
    ids, n_p = seq.ids.tolist(), seq.n_prompt
    pad = tiny_backend.tokenizer.pad_token_id
    full = logp_of_targets(tiny_backend, ids[:n_p], ids[n_p:])
    swapped = ids[:1] + [pad] + ids[2:n_p]
    np.testing.assert_allclose(
        replaced.scores[:, 1], full - logp_of_targets(tiny_backend, swapped, ids[n_p:]), atol=1e-9
    )


def test_word_spans_join_subwords_only():
    tokens = ["The", " E", "iff", "el", " Tower", ",", " Paris", "<|im_end|>", "x"]
    special = [False] * 7 + [True, False]
    spans = word_spans(tokens, special, [0] * 9)
    assert ["".join(tokens[a:b]) for a, b in spans] == [
        "The",
        " Eiffel",
        " Tower",
        ",",
        " Paris",
        "<|im_end|>",
        "x",
    ]
    # different messages never join
    assert word_spans(["ab", "cd"], [False, False], [0, 1]) == [(0, 1), (1, 2)]


def test_aggregate_words_sums_and_keeps_nan(tiny_backend):
    r = explain(tiny_backend, "The Eiffel Tower is", " Paris.", method="input_x_gradient")
    w = aggregate_words(r, "sum")
    a = aggregate_words(r, "abs_sum")
    for k, (lo, hi) in enumerate(w.source_spans):
        block = r.scores[:, lo:hi]
        all_nan = np.isnan(block).all(1)
        np.testing.assert_allclose(w.scores[~all_nan, k], np.nansum(block, 1)[~all_nan], rtol=1e-6)
        np.testing.assert_allclose(a.scores[~all_nan, k], np.nansum(np.abs(block), 1)[~all_nan], rtol=1e-6)
        assert np.isnan(w.scores[all_nan, k]).all()
    # sums of rows are kept: linear methods keep their totals at word level
    np.testing.assert_allclose(np.nansum(w.scores, 1), np.nansum(r.scores, 1), rtol=1e-5)
    with pytest.raises(ValueError):
        aggregate_words(w)


def test_chat_messages_are_tagged_with_roles(tiny_backend):
    msgs = [Message("system", "Answer briefly."), Message("user", "The capital of Italy is")]
    r = explain(tiny_backend, msgs, " Rome", method="saliency")
    visible = r.visible_sources()
    text = {
        role: "".join(r.source_tokens[i] for i in visible if r.source_roles[i] == role)
        for role in ("system", "user")
    }
    assert text == {"system": "Answer briefly.", "user": "The capital of Italy is"}
    assert not any(r.source_special[i] for i in visible)
    assert len(r.visible_sources(show_template=True)) == r.n_sources


def test_json_round_trip_is_lossless(tiny_backend, tmp_path):
    tok = tiny_backend.tokenizer
    contrast = tok.decode(tok(" Madrid", add_special_tokens=False)["input_ids"][:1])
    for method, kw in [
        ("integrated_gradients", {"steps": 4, "placement": "gauss-legendre"}),
        ("attention", {}),
        ("contrastive", {"contrast": contrast}),
    ]:
        r = explain(tiny_backend, PROMPT, TARGET, method=method, **kw)
        path = r.save(tmp_path / f"{method}.json")
        back = Attribution.load(path)
        assert back.equals(r)
        assert np.isnan(back.scores).any()  # NaN survives as null
        json.loads(path.read_text())  # strict JSON: no NaN literals
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "unknown method"),
        ({"method": "saliency", "steps": 3}, "unknown option"),
        ({"method": "integrated_gradients", "steps": 0}, "at least 32 steps"),
        ({"method": "integrated_gradients", "placement": "riemann", "steps": 0}, "at least 1 steps"),
        ({"method": "integrated_gradients", "tolerance": 0}, "between 0 and 1"),
        ({"method": "integrated_gradients", "baseline": "blue"}, "unknown baseline"),
        ({"method": "contrastive"}, "needs a contrast"),
        ({"method": "occlusion", "unit": "sentence"}, "unit"),
        ({"target": ""}, "tokenizes to nothing"),
    ],
)
def test_bad_input_raises_clear_errors(tiny_backend, kwargs, message):
    kwargs = {"target": TARGET, **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        explain(tiny_backend, PROMPT, **kwargs)


def test_prompt_longer_than_context(tiny_backend):
    with pytest.raises(InvalidInputError, match="context"):
        explain(tiny_backend, "Rome " * 400, " Rome")
    with pytest.raises(InvalidInputError, match="empty"):
        explain(tiny_backend, "   ", " Rome")


def test_generated_target_is_the_greedy_continuation(tiny_backend):
    from clearlm.models import SamplingParams, generate

    r = explain(tiny_backend, PROMPT, method="saliency", max_new_tokens=5)
    completion = generate(tiny_backend, PROMPT, SamplingParams(max_new_tokens=5))
    assert "".join(r.target_tokens) == tiny_backend.tokenizer.decode(list(completion.token_ids))
    assert r.n_targets == len(completion.token_ids)
