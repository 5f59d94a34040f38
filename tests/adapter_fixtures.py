"""LoRA adapters for the comparison tests (tests/tune/test_compare*.py, tests/web/test_adapters_compare.py),
written straight to ``$CLEARLM_HOME/adapters/NAME`` without a training run: PEFT's own initialisation
(B = 0, so base + adapter computes exactly the base) or B filled with random values (the adapter changes
the model, as a trained one does), with a card that names the tiny base and its weights hash."""

from __future__ import annotations

import datetime as dt
import json

import torch

from conftest import make_model


def tiny_base(tokenizer, name: str = "tiny-random-qwen2"):
    """A fresh float32 TorchBackend over the tests' random 2-layer Qwen2 (seed 0: the same weights every time)."""
    from clearlm.models.backends.torch_backend import TorchBackend

    return TorchBackend(make_model(tokenizer, dtype=torch.float32), tokenizer, name)


def write_adapter(
    tokenizer, name: str, b_scale: float = 0.0, seed: int = 1, base_name: str = "tiny-random-qwen2"
):
    """Write adapter ``name`` for ``tiny_base(tokenizer, base_name)``: rank-4 LoRA on q/k/v/o and the MLP's
    projections, its B matrices zero (``b_scale=0``) or normal(0, b_scale) drawn with ``seed``."""
    from peft import LoraConfig, get_peft_model

    from clearlm.tune.adapters import write_adapter as write_atomic
    from clearlm.tune.base import peft_quietly, weights_sha256

    model = make_model(tokenizer, dtype=torch.float32)
    sha = weights_sha256(model)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    with peft_quietly():
        peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for pname, param in peft_model.named_parameters():
            if "lora_B" in pname and b_scale:
                param.normal_(0.0, b_scale)
    card = {
        "name": name,
        "type": "lora-adapter",
        "base": {"name": base_name, "weights_sha256": sha},
        "data": {"kind": "documents", "sources": []},
        "hyperparameters": {"rank": 4, "alpha": 8},
        "figures": {},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

    def fill(folder):
        peft_model.save_pretrained(folder)
        (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")

    return write_atomic(name, fill)
