"""Merge an adapter into its base and export the result as a transformers checkpoint or a GGUF file.

Merging adds ``(alpha / r) * B @ A`` to each adapted weight (PEFT's ``merge_and_unload``) in the base's own
float dtype, so the merged model's log-probabilities equal the adapter's up to that dtype's rounding (no
quantized base is involved: clearlm trains and merges dequantized float weights, cf. peft issue #2321).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.tune.adapters import adapter_dir, read_card
from clearlm.tune.base import check_trainable, peft_quietly
from clearlm.tune.serve import check_base


def merge(name: str, base):
    """The base's model with adapter ``name`` merged in (a plain transformers model; ``base``, a loaded torch
    backend, is changed in place and should not be used afterwards).

    Raises:
        AdapterNotFoundError, AdapterMismatchError.
    """
    from peft import PeftModel

    check_trainable(base)
    check_base(read_card(name), base)
    with peft_quietly():
        model = PeftModel.from_pretrained(base.model, adapter_dir(name), adapter_name=name)
    return model.merge_and_unload()


def export_merged(name: str, base, dest: str | Path, overwrite: bool = False) -> Path:
    """Write base + adapter ``name``, merged, to ``dest`` as a transformers checkpoint (safetensors, the
    tokenizer beside it), through a temporary folder renamed into place.

    Raises:
        InvalidInputError: ``dest`` exists (without ``overwrite``). AdapterNotFoundError,
            AdapterMismatchError.
    """
    dest = Path(dest).expanduser()
    if dest.exists() and not overwrite:
        raise InvalidInputError(f"{dest} exists: choose another folder, or pass --overwrite")
    model = merge(name, base)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        base.tokenizer.save_pretrained(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def export_gguf(name: str, base, dest: str | Path, outtype: str = "f16", overwrite: bool = False) -> Path:
    """Write base + adapter ``name``, merged, to ``dest`` as one GGUF file for llama.cpp (the llamacpp
    backend loads it: ``clearlm serve --backend llamacpp --model DEST``). The merged transformers checkpoint
    is written to a temporary folder beside ``dest`` and converted by llama.cpp's own converter
    (:mod:`clearlm.tune.gguf`); the file appears only when the conversion succeeded. ``outtype``: "f32",
    "f16" (the default: half the size of f32 and about twice llama.cpp's decoding speed on a CPU, which
    is memory-bound), "bf16" or "q8_0".

    Raises:
        InvalidInputError: a ``dest`` not ending in .gguf, a folder, or existing (without ``overwrite``);
            an unknown ``outtype``. BackendUnavailableError: the converter is not installed (``make
            gguf-converter``). GgufConversionError: the converter failed. AdapterNotFoundError,
            AdapterMismatchError.
    """
    from clearlm.tune import gguf

    if outtype not in gguf.OUTTYPES:
        raise InvalidInputError(f"unknown GGUF type {outtype!r}: choose one of {', '.join(gguf.OUTTYPES)}")
    dest = gguf.check_dest(Path(dest), overwrite)
    gguf.find_converter()  # fail before merging when it is missing
    model = merge(name, base)
    checkpoint = dest.with_name(f".{dest.stem}.checkpoint-{os.getpid()}")
    shutil.rmtree(checkpoint, ignore_errors=True)
    try:
        model.save_pretrained(checkpoint)
        base.tokenizer.save_pretrained(checkpoint)
        return gguf.convert(checkpoint, dest, outtype)
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
