"""Adapters for an engine that applies LoRA itself (vLLM's multi-LoRA serving): their PEFT folders by name,
each checked to belong to the served base model.

vLLM loads the adapter's PEFT files (``adapter_config.json``, ``adapter_model.safetensors``) over its own
copy of the base, so clearlm has no torch model to hash: an adapter's card must name the served model
(the same catalog name, a catalog model with the same packaged GGUF sha256, or the same folder).
"""

from __future__ import annotations

from pathlib import Path

from clearlm.models.catalog import CATALOG
from clearlm.tune.adapters import adapter_dir, read_card
from clearlm.tune.serve import AdapterMismatchError


def lora_modules(model: str, names: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """The folders of adapters ``names`` (``$CLEARLM_HOME/adapters/NAME``) by name, for serving over
    ``model`` (a catalog name or a transformers folder): ``{name: folder}``, in the given order.

    Raises:
        AdapterNotFoundError: no such adapter. AdapterMismatchError: an adapter trained on another base.
    """
    out = {}
    for name in names:
        card = read_card(name)
        if not same_base(card["base"], model):
            raise AdapterMismatchError(
                f"adapter {name!r} was trained on {card['base']['name']}, not on {model}: "
                f"serve it over --model {card['base']['name']}"
            )
        out[name] = adapter_dir(name)
    return out


def same_base(base: dict, model: str) -> bool:
    """Whether an adapter card's ``base`` record names ``model``."""
    if base["name"] == model:
        return True
    spec = CATALOG.get(model)
    if spec is not None:
        return base.get("gguf_sha256") is not None and base["gguf_sha256"] == spec.sha256
    if base["name"] in CATALOG:
        return False
    return Path(base["name"]).expanduser().resolve() == Path(model).expanduser().resolve()
