"""Convert a GGUF file once into a cached transformers checkpoint.

Loading a GGUF through transformers dequantizes every tensor (35-40 s for a 0.5B model on two cores); the
float32 checkpoint written here loads in seconds. The conversion writes to a temporary folder and renames it
into place, so an interrupted conversion is redone rather than half-used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch


def load_gguf(path: Path, dtype: torch.dtype = torch.float32):
    """Load ``path`` (a .gguf file) as a transformers (model, tokenizer) pair, dequantized to ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    # Dequantize every weight: explanations and LoRA need plain dense tensors with gradients.
    model = AutoModelForCausalLM.from_pretrained(
        path.parent,
        gguf_file=path.name,
        dtype=dtype,
        quantization_config=GgufConfig(gguf_file=path.name, dequantize=True),
    )
    # After dequantization the GGUF quantizer is only a marker, and it blocks save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def convert_gguf(path: Path, dest: Path, on_stage=None) -> Path:
    """Write the transformers checkpoint of the GGUF ``path`` (float32 safetensors) to ``dest``.

    Args:
        on_stage: optional callable given the name of each stage as it starts ("dequantize", "save").
    """
    if on_stage:
        on_stage("dequantize")
    model, tokenizer = load_gguf(path)
    if on_stage:
        on_stage("save")
    tmp = dest.with_name(dest.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def is_converted(dest: Path) -> bool:
    return (dest / "config.json").is_file() and any(dest.glob("*.safetensors"))
