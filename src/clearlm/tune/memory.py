"""Estimate a LoRA run's peak memory before it starts, and refuse with what to change when it will not fit.

The estimate adds: the base weights (frozen, as loaded); the LoRA parameters with their gradients and AdamW's
two moments (4 copies); the activations kept for the backward pass, per layer and token about
``16 h + 3 i`` floats plus ``heads * T`` attention probabilities (after Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models", whose per-layer count is ``34 s b h + 5 a s^2 b``
bytes in 16-bit precision); and the output layer's logits, their log-softmax and gradient (3 copies of
``tokens x vocab``). Gradient checkpointing keeps one layer's activations plus each layer's input.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearlm.errors import ClearlmError
from clearlm.tune.config import TuneConfig

GIB = 1024**3


class InsufficientMemoryError(ClearlmError):
    """The run's estimated peak memory exceeds what the machine has free."""

    code = "insufficient_memory"


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes: weights, trainable (LoRA params + grads + AdamW moments), activations, logits, total; and the
    count of LoRA parameters."""

    weights: int
    trainable: int
    activations: int
    logits: int
    lora_parameters: int

    @property
    def total(self) -> int:
        return int((self.weights + self.trainable + self.activations + self.logits) * 1.15)  # allocator slack

    def to_dict(self) -> dict:
        return {
            "weights_bytes": self.weights,
            "trainable_bytes": self.trainable,
            "activations_bytes": self.activations,
            "logits_bytes": self.logits,
            "total_bytes": self.total,
            "lora_parameters": self.lora_parameters,
        }


def lora_parameter_count(model, config: TuneConfig) -> int:
    """Parameters the adapter adds: ``rank * (in + out)`` for every Linear whose name ends in a target."""
    import torch

    count = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in config.target_modules:
            count += config.rank * (module.in_features + module.out_features)
    return count


def estimate_memory(model, config: TuneConfig) -> MemoryEstimate:
    """The estimated peak bytes of training ``model`` (a transformers causal LM) with ``config``."""
    c = model.config
    h = int(getattr(c, "hidden_size", 0) or 0)
    inter = int(getattr(c, "intermediate_size", 0) or 4 * h)
    layers = int(getattr(c, "num_hidden_layers", 1) or 1)
    heads = int(getattr(c, "num_attention_heads", 1) or 1)
    vocab = int(getattr(c, "vocab_size", 0) or 0)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    width = next(model.parameters()).element_size()
    lora = lora_parameter_count(model, config)
    tokens = config.batch_size * config.seq_len
    per_layer = tokens * ((16 * h + 3 * inter) + heads * config.seq_len) * width
    if config.gradient_checkpointing:
        activations = per_layer + layers * tokens * h * width
    else:
        activations = layers * per_layer
    logits = 3 * tokens * vocab * 4  # the loss upcasts to float32
    return MemoryEstimate(weights, lora * 4 * width, activations, logits, lora)


def available_memory() -> int:
    """Bytes the kernel reports as available (MemAvailable in /proc/meminfo; physical pages elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(estimate: MemoryEstimate, config: TuneConfig, available: int | None = None) -> None:
    """Raises InsufficientMemoryError when ``estimate.total`` exceeds ``available`` bytes (default: what
    the machine has free), saying which settings to lower."""
    available = available_memory() if available is None else available
    if estimate.total <= available:
        return
    hints = []
    if estimate.logits + estimate.activations > estimate.weights // 4:
        hints.append(f"a shorter seq_len (now {config.seq_len})")
        if config.batch_size > 1:
            hints.append(
                f"batch_size 1 with a larger grad_accum (now {config.batch_size} x {config.grad_accum})"
            )
        if not config.gradient_checkpointing:
            hints.append("gradient_checkpointing: true")
    hints.append("a smaller base model")
    raise InsufficientMemoryError(
        f"this run needs about {estimate.total / GIB:.1f} GiB (weights {estimate.weights / GIB:.1f}, "
        f"activations {estimate.activations / GIB:.1f}, logits {estimate.logits / GIB:.1f}) but "
        f"{available / GIB:.1f} GiB is free: try " + ", or ".join(hints)
    )
