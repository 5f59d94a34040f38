"""Tuning runs on a tiny random Qwen2 model: repeatable, resumable, atomic, measured, carded, refused clearly."""

from __future__ import annotations

import json

import pytest
import torch

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.tune import AdapterExistsError, TuneConfig, list_adapters, read_card, remove_adapter, tune
from clearlm.tune.adapters import adapters_root, work_dir, write_adapter
from clearlm.tune.base import load_base, weights_sha256
from clearlm.tune.memory import InsufficientMemoryError

CONFIG = TuneConfig(steps=6, seq_len=32, warmup_steps=1, checkpoint_every=2, held_out=0.3, eval_tokens=256)


class Interrupted(Exception):
    pass


def test_repeatable_resumable_and_atomic(home, tiny_base, docs, email_policy):
    before = weights_sha256(tiny_base.model)
    first = tune("a", tiny_base, docs, CONFIG, policy=email_policy)
    assert weights_sha256(tiny_base.model) == before  # the base is left as it was
    assert not any("lora" in n for n, _ in tiny_base.model.named_modules())
    second = tune("b", tiny_base, docs, CONFIG, policy=email_policy)
    assert len(first.report["losses"]) == 6
    assert first.report["losses"] == second.report["losses"]  # a fixed seed: the same run

    def stop_at_3(info):
        if info.step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        tune("c", tiny_base, docs, CONFIG, policy=email_policy, on_step=stop_at_3)
    # no adapter folder, not even a partial one; the step-2 checkpoint is kept for resumption
    assert sorted(p.name for p in adapters_root().iterdir()) == [".work", "a", "b"]
    assert (work_dir("c") / "checkpoint.pt").is_file()
    resumed = tune("c", tiny_base, docs, CONFIG, policy=email_policy)
    assert resumed.card["figures"]["resumed_from"] == 2
    assert resumed.report["losses"] == first.report["losses"]
    assert not work_dir("c").exists()  # checkpoints go once the adapter is written

    # another run's checkpoint with other settings is not silently resumed
    with pytest.raises(Interrupted):
        tune("d", tiny_base, docs, CONFIG, policy=email_policy, on_step=stop_at_3)
    other = TuneConfig(**{**CONFIG.to_dict(), "rank": 4})
    with pytest.raises(InvalidInputError, match="pass --restart"):
        tune("d", tiny_base, docs, other, policy=email_policy)
    assert (
        tune("d", tiny_base, docs, other, policy=email_policy, restart=True).card["figures"]["resumed_from"]
        == 0
    )


def test_card_report_and_adapter_commands(home, tiny_base, docs, email_policy):
    result = tune("apt", tiny_base, docs, CONFIG, policy=email_policy)
    files = sorted(p.name for p in result.path.iterdir())
    assert files == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "card.json",
        "report.json",
    ]
    card = read_card("apt")
    assert card["base"]["name"] == "tiny-random-qwen2"
    assert card["base"]["weights_sha256"] == weights_sha256(tiny_base.model)
    assert [s["sha256"] for s in card["data"]["sources"]] == [
        __import__("hashlib").sha256(p.read_bytes()).hexdigest() for p in sorted(docs.iterdir())
    ]
    assert card["hyperparameters"]["rank"] == 8 and card["hyperparameters"]["steps"] == 6
    f = card["figures"]
    for key in ("domain", "general"):
        assert f[key]["before"]["perplexity"] > 1 and f[key]["after"]["perplexity"] > 1
        assert f[key]["change"] == pytest.approx(
            f[key]["after"]["perplexity"] / f[key]["before"]["perplexity"] - 1
        )
        assert f[key]["before"]["tokens"] > 0
    assert f["tokens_per_s"] > 0 and f["tokens"] > 0 and f["final_loss"] == card["report"]["losses"][-1]
    assert card["intended_use"] and card["limitations"]
    assert "held-out domain perplexity" in (result.path / "README.md").read_text()
    assert [a["name"] for a in list_adapters()] == ["apt"]
    with pytest.raises(AdapterExistsError, match="'apt' exists"):
        tune("apt", tiny_base, docs, CONFIG, policy=email_policy)
    remove_adapter("apt")
    assert list_adapters() == []


def test_chat_sft_learns_the_answers(home, tiny_base, tmp_path, email_policy):
    turn = [
        {"role": "user", "content": "Where is the Eiffel Tower?"},
        {"role": "assistant", "content": "The Eiffel Tower is located in the city of Paris, France."},
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps({"messages": turn}) for _ in range(8)) + "\n")
    config = TuneConfig(
        steps=8, seq_len=64, learning_rate=1e-2, warmup_steps=0, held_out=0.25, eval_tokens=256
    )
    result = tune("sft", tiny_base, path, config, policy=email_policy)
    f = result.card["figures"]
    assert result.card["data"]["kind"] == "chat"
    assert f["domain"]["after"]["perplexity"] < 0.8 * f["domain"]["before"]["perplexity"]
    assert result.report["losses"][-1] < result.report["losses"][0]


def test_write_adapter_leaves_nothing_on_failure(home):
    def half(folder):
        (folder / "adapter_model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_adapter("x", half)
    assert list(adapters_root().iterdir()) == []


def test_bad_settings_and_bases(home, tiny_base, docs, email_policy, tmp_path):
    with pytest.raises(
        InsufficientMemoryError, match=r"needs about .* GiB .* try a shorter seq_len \(now 32\)"
    ):
        tune("m", tiny_base, docs, CONFIG, policy=email_policy, available_memory=1000)
    assert not adapters_root().exists() or list(adapters_root().iterdir()) in (
        [],
        [home / "adapters" / ".work"],
    )
    with pytest.raises(InvalidInputError, match="bad adapter name"):
        tune("../x", tiny_base, docs, CONFIG, policy=email_policy)
    with pytest.raises(InvalidInputError, match="rank must be >= 1"):
        TuneConfig(rank=0)
    (tmp_path / "gguf-only").mkdir()
    (tmp_path / "gguf-only" / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(InvalidInputError, match="holds only GGUF weights .* cannot be trained"):
        load_base(str(tmp_path / "gguf-only"))
    with pytest.raises(BackendUnavailableError, match="only the torch backend has"):
        load_base("qwen2.5-0.5b-instruct", backend="llamacpp")
    with pytest.raises(
        InvalidInputError, match=r"cannot put LoRA on tiny-random-qwen2: .*\{'nope'\} not found"
    ):
        tune(
            "t",
            tiny_base,
            docs,
            TuneConfig(**{**CONFIG.to_dict(), "target_modules": ["nope"]}),
            policy=email_policy,
        )
    assert torch.is_grad_enabled()
