"""An adapter's attribution against its base (clearlm.tune.compare) over the tiny model: the base side is
plain ``explain`` on the base, a zero-B adapter moves nothing, a trained one moves the rows; the measures'
definitions checked on the numbers; and ``clearlm explain --adapter NAME [--compare]`` as a user runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from adapter_fixtures import tiny_base, write_adapter
from clearlm.errors import InvalidInputError
from clearlm.explain import explain
from clearlm.models import Message
from clearlm.tune import TuneConfig, tune
from clearlm.tune.compare import compare, compare_adapter, shares
from clearlm.tune.serve import AdapterSet
from conftest import make_model

PROMPT = [Message("user", "Where is the Eiffel Tower?")]
TARGET = " It is in the city of Paris."


def test_zero_adapter_moves_nothing_and_a_trained_one_moves(home, tiny_tokenizer, docs, email_policy):
    plain = {
        m: explain(tiny_base(tiny_tokenizer), PROMPT, TARGET, method=m)
        for m in ("input_x_gradient", "occlusion")
    }
    write_adapter(tiny_tokenizer, "zero")  # PEFT's initialisation: B = 0
    base = tiny_base(tiny_tokenizer)
    tune(
        "trained",
        base,
        docs,
        TuneConfig(
            steps=4, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=64
        ),
        policy=email_policy,
    )
    adapters = AdapterSet(tiny_base(tiny_tokenizer))

    for method in ("input_x_gradient", "occlusion"):
        zero = compare_adapter(adapters, "zero", PROMPT, TARGET, method=method)
        # the base side is plain `explain` on the base, bit for bit; B = 0 adds exact zeros
        np.testing.assert_array_equal(zero.base.scores, plain[method].scores)
        np.testing.assert_array_equal(zero.tuned.scores, plain[method].scores)
        assert zero.base.model == "tiny-random-qwen2" and zero.tuned.model == "tiny-random-qwen2:zero"
        assert not zero.distance.any() and not zero.moved.any()

        trained = compare_adapter(adapters, "trained", PROMPT, TARGET, method=method, top_k=4)
        np.testing.assert_array_equal(trained.base.scores, plain[method].scores)
        assert trained.tuned.target_tokens == plain[method].target_tokens  # the same tokens, both models
        assert (trained.distance > 1e-3).all() and (trained.distance <= 2).all()
        # the measures as defined: rows over their absolute sums, L1 per target, signed sum per source
        finite = np.nan_to_num(trained.tuned_share)
        assert np.allclose(np.abs(finite).sum(axis=1), 1, atol=1e-5)
        diff = np.nan_to_num(trained.tuned_share.astype(np.float64) - trained.base_share)
        assert np.allclose(trained.distance, np.abs(diff).sum(axis=1), atol=1e-6)
        assert np.allclose(trained.moved, diff.sum(axis=0), atol=1e-6)
        top = trained.top_moved
        assert len(top) == 4 and all(m["source"] < trained.tuned.n_prompt for m in top)
        assert [abs(m["moved"]) for m in top] == sorted((abs(m["moved"]) for m in top), reverse=True)
        prompt_sources = [s for s in trained.tuned.visible_sources() if s < trained.tuned.n_prompt]
        assert abs(top[0]["moved"]) == pytest.approx(np.abs(trained.moved[prompt_sources]).max())
        assert top[0]["token"] == trained.tuned.source_tokens[top[0]["source"]] and top[0]["moved"] != 0
        assert top[0]["moved"] == pytest.approx(top[0]["tuned"] - top[0]["base"], abs=1e-5)

    # no target: the tuned model's greedy answer, generated once and attributed under both
    generated = compare_adapter(adapters, "trained", PROMPT, method="input_x_gradient", max_new_tokens=4)
    assert generated.base.target_tokens == generated.tuned.target_tokens and generated.tuned.n_targets >= 1
    saved = json.loads(generated.to_json())
    assert (
        saved["tuned"]["model"] == "tiny-random-qwen2:trained"
        and len(saved["distance"]) == generated.tuned.n_targets
    )

    # a saturated model (probabilities near 1): its gradient scores vanish, and the comparison says so
    assert generated.warning is None and zero.warning is None and zero.mass_ratio == 1
    faint = compare(generated.base, generated.base.with_scores(generated.base.scores * 1e-5), "trained")
    assert faint.mass_ratio == pytest.approx(1e-5, rel=1e-3) and np.allclose(faint.distance, 0, atol=1e-5)
    assert "the tuned model's input_x_gradient scores are 1.0e-05 times the other's" in faint.warning

    with pytest.raises(InvalidInputError, match="not of the same tokens"):
        compare(zero.base, generated.tuned, "trained")

    # against another adapter: its attribution is the reference; against a zero adapter, the base's
    for method in ("input_x_gradient", "occlusion"):
        versus = compare_adapter(adapters, "trained", PROMPT, TARGET, method=method, against="zero")
        alone = compare_adapter(adapters, "trained", PROMPT, TARGET, method=method)
        assert versus.reference == "zero" and versus.base.model == "tiny-random-qwen2:zero"
        np.testing.assert_array_equal(versus.base.scores, plain[method].scores)
        np.testing.assert_array_equal(versus.tuned.scores, alone.tuned.scores)
        np.testing.assert_array_equal(versus.distance, alone.distance)
    assert json.loads(versus.to_json())["reference"] == "zero" and alone.reference is None
    with pytest.raises(InvalidInputError, match="'trained' cannot be compared with itself"):
        compare_adapter(adapters, "trained", PROMPT, TARGET, against="trained")


def test_shares_keep_the_mask_and_zero_rows():
    rows = shares(np.array([[1.0, -3.0, np.nan], [0.0, 0.0, np.nan]]))
    np.testing.assert_allclose(rows[0, :2], [0.25, -0.75])
    assert np.isnan(rows[:, 2]).all() and not rows[1, :2].any()


def test_cli_explain_adapter_and_compare(home, tiny_tokenizer, tmp_path, clearlm):
    folder = tmp_path / "tiny-base"
    make_model(tiny_tokenizer, dtype=torch.float32).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    write_adapter(tiny_tokenizer, "apt", b_scale=0.3, base_name=str(folder))
    write_adapter(tiny_tokenizer, "other", b_scale=0.3, seed=2, base_name=str(folder))
    prompt = "The Eiffel Tower is located in"
    common = ["-t", " Paris", "--level", "token", "--db", f"sqlite:///{tmp_path / 'audit.db'}"]

    runs = {}
    for name, args in (
        ("base", ["--model", str(folder)]),
        ("tuned", ["--adapter", "apt"]),  # the base defaults to the adapter's (its card's)
        ("compare", ["--adapter", "apt", "--compare", "--top-k", "3"]),
        ("against", ["--adapter", "apt", "--compare", "--against", "other"]),
    ):
        out = tmp_path / f"{name}.json"
        run = clearlm("explain", prompt, *args, *common, "--json", out)
        assert run.returncode == 0, run.stderr
        runs[name] = (run, json.loads(out.read_text()))
    compared = runs["compare"][1]
    assert compared["base"]["scores"] == runs["base"][1]["scores"]
    assert compared["tuned"]["scores"] == runs["tuned"][1]["scores"]
    assert runs["tuned"][1]["model"] == f"{folder}:apt" and compared["base"]["model"] == str(folder)
    assert len(compared["top_moved"]) == 3 and min(compared["distance"]) > 0
    shown = " ".join(runs["compare"][0].stdout.split())
    assert (
        "Per generated token" in shown
        and "moved most" in shown
        and compared["top_moved"][0]["token"].strip() in shown
    )
    versus = runs["against"][1]  # apt against the other adapter: the tuned side is the same
    assert versus["reference"] == "other" and versus["base"]["model"] == f"{folder}:other"
    assert versus["tuned"]["scores"] == compared["tuned"]["scores"]
    assert versus["base"]["scores"] != compared["base"]["scores"] and min(versus["distance"]) > 0
    assert "p other" in runs["against"][0].stdout and f"{folder}:apt against {folder}:other" in " ".join(
        runs["against"][0].stdout.split()
    )

    for args, message in (
        (["--compare"], "--compare compares a LoRA adapter with its base: give --adapter NAME"),
        (["--adapter", "nope"], "no adapter 'nope': choose one of apt"),
        (["--adapter", "apt", "--compare", "--html", tmp_path / "x.html"], "--compare writes --json only"),
        (
            ["--adapter", "apt", "--against", "other"],
            "--against names the adapter to compare with: give --compare",
        ),
        (["--adapter", "apt", "--compare", "--against", "apt"], "'apt' cannot be compared with itself"),
        (["--adapter", "apt", "--compare", "--against", "nope"], "no adapter 'nope'"),
        (["--adapter", "apt", "--model", str(folder), "--dtype", "float64"], "adapter 'apt' was trained on"),
    ):
        run = clearlm("explain", prompt, "-t", " Paris", *args)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert message in " ".join(run.stderr.split()), run.stderr


def test_a_views_lock_activates_its_adapter_and_restores_an_enclosing_one(home, tiny_tokenizer):
    write_adapter(tiny_tokenizer, "one", b_scale=0.3, seed=1)
    write_adapter(tiny_tokenizer, "two", b_scale=0.3, seed=2)
    adapters = AdapterSet(tiny_base(tiny_tokenizer))
    one, two, base = adapters.load("one"), adapters.load("two"), adapters.view(None)
    ids = torch.tensor([tiny_tokenizer("The Eiffel Tower is in Paris.")["input_ids"]])

    def logits(view):
        with view.lock, torch.inference_mode():
            return view.model(input_ids=ids).logits

    alone = {v.name: logits(v) for v in (one, two, base)}
    with one.lock:
        assert adapters.active == "one"
        with base.lock:  # nested in the same thread (a comparison's base side)
            assert adapters.active is None
            assert torch.equal(logits(base), alone[base.name])
        assert adapters.active == "one"  # given back to the enclosing holder
        assert torch.equal(logits(one), alone[one.name])
    assert adapters.depth == 0 and not torch.equal(alone[one.name], alone[two.name])
