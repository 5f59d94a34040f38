"""Merge an adapter into its base and export the result as a transformers checkpoint.

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
from clearlm.tune.base import check_trainable
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
