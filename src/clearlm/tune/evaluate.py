"""Perplexity before and after tuning: on held-out domain text, and on general text (the forgetting check).

Perplexity is ``exp(mean next-token negative log-likelihood)`` over the target tokens (the assistant tokens
of chat data, every token of plain text), teacher-forced, in float32 logits.
"""

from __future__ import annotations

import contextlib
import math
from importlib import resources
from pathlib import Path

import torch

from clearlm.errors import InvalidInputError
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.tune.data import Example
from clearlm.tune.train import collate, token_nll


def perplexity(model, examples: list[Example], pad_id: int, max_tokens: int = 4096) -> dict:
    """Perplexity of ``model`` on ``examples`` (one at a time, in order, until ``max_tokens`` target tokens).

    Returns ``{"perplexity": float, "nll": float (mean nats/token), "tokens": int}``; perplexity is None
    when there are no examples.
    """
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for e in examples:
            if count >= max_tokens:
                break
            nll, n = token_nll(model, *collate([e], pad_id))
            total, count = total + float(nll), count + n
    model.train(was_training)
    if not count:
        return {"perplexity": None, "nll": None, "tokens": 0}
    return {"perplexity": math.exp(total / count), "nll": total / count, "tokens": count}


def base_only(model):
    """A context in which a PEFT model computes with its adapters disabled (the base model)."""
    disable = getattr(model, "disable_adapter", None)
    return disable() if disable else contextlib.nullcontext()


class BaseOnly(TorchBackend):
    """The base model inside a PEFT model (being tuned, or loaded to be measured): each generation runs
    with the adapter disabled, so the base's answers come from the same module as the tuned ones."""

    def __init__(self, backend: TorchBackend, peft_model) -> None:
        super().__init__(backend.model, backend.tokenizer, backend.name)
        self.peft = peft_model

    def stream(self, prompt, params):
        with base_only(self.peft):
            yield from super().stream(prompt, params)


def general_text(path: str | Path | None = None) -> str:
    """General English prose for the forgetting check: the file at ``path``, or the packaged sample
    (``tune/data/general.txt``: everyday and encyclopedic paragraphs written for this project, so no model
    has seen them verbatim).

    Raises:
        InvalidInputError: an unreadable or empty file.
    """
    if path is None:
        return resources.files("clearlm.tune").joinpath("data/general.txt").read_text(encoding="utf-8")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the general text {path}: {exc}") from None
    if not text.strip():
        raise InvalidInputError(f"the general text {path} is empty")
    return text


def text_examples(tokenizer, text: str, seq_len: int) -> list[Example]:
    """Plain text cut into consecutive windows of ``seq_len`` tokens (every token a target)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = [tuple(ids[i : i + seq_len]) for i in range(0, len(ids), seq_len)]
    return [Example(w, w) for w in windows if len(w) > 1]


def compare(model, domain: list[Example], general: list[Example], pad_id: int, max_tokens: int, before=None):
    """Perplexities of the adapted model and (unless ``before`` is given) of the base, on both sets:
    ``{"domain": {"before": {...}, "after": {...}, "change": fraction}, "general": {...}}``."""
    if before is None:
        with base_only(model):
            before = {
                "domain": perplexity(model, domain, pad_id, max_tokens),
                "general": perplexity(model, general, pad_id, max_tokens),
            }
    out = {}
    for name, examples in (("domain", domain), ("general", general)):
        after = perplexity(model, examples, pad_id, max_tokens)
        b, a = before[name]["perplexity"], after["perplexity"]
        out[name] = {"before": before[name], "after": after, "change": (a / b - 1) if a and b else None}
    return out
