"""The LoRA training loop: AdamW on the adapter's parameters, token-weighted loss, checkpoints, resumption.

Repeatable: the data order of micro-batch ``k`` is a pure function of the seed and ``k`` (one
``torch.randperm`` per epoch), the LoRA initialisation and dropout draw from torch's global generator,
seeded before the adapter is made and saved in every checkpoint; so a run resumed from a checkpoint takes
the same steps as one that was never interrupted.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from clearlm.errors import InvalidInputError
from clearlm.tune.config import TuneConfig
from clearlm.tune.data import IGNORE, Example

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Reported after each optimiser step: step (1-based) of steps, the step's mean token loss (nats),
    target tokens so far, tokens/s (all input tokens, this run's wall time), learning rate, seconds."""

    step: int
    steps: int
    loss: float
    tokens: int
    tokens_per_s: float
    learning_rate: float
    seconds: float


@dataclass
class TrainResult:
    """losses: one mean token loss per step (nats), from step 1 (resumed steps included); tokens: input
    tokens processed; seconds: wall time of the training (resumed runs add up); resumed_from: the step a
    checkpoint restored (0 = fresh)."""

    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    resumed_from: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def learning_rate(config: TuneConfig, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then linear decay to 0 at ``steps`` (step is 0-based)."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / (config.warmup_steps + 1)
    left = config.steps - step
    return config.learning_rate * left / max(1, config.steps - config.warmup_steps)


def micro_batch(examples: list[Example], config: TuneConfig, k: int) -> list[Example]:
    """The examples of global micro-batch ``k``: a fresh permutation (seeded by seed and epoch) per epoch."""
    n, b = len(examples), config.batch_size
    out = []
    for j in range(k * b, k * b + b):
        epoch, i = divmod(j, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch))
        out.append(examples[int(order[i])])
    return out


def collate(batch: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (input_ids, attention_mask, labels), each int64[batch, longest]."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for r, e in enumerate(batch):
        ids[r, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[r, : len(e.input_ids)] = 1
        labels[r, : len(e.labels)] = torch.tensor(e.labels)
    return ids, mask, labels


def token_nll(model, ids, mask, labels) -> tuple[torch.Tensor, int]:
    """Sum of next-token negative log-likelihoods (nats) over the target positions, and their count."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return nll, int((targets != IGNORE).sum())


def train(
    model,
    examples: list[Example],
    config: TuneConfig,
    pad_id: int,
    checkpoint_dir: Path | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train the trainable (LoRA) parameters of ``model`` (a PEFT model) for ``config.steps`` steps.

    With ``checkpoint_dir``, a checkpoint (adapter weights, AdamW state, torch's generator, losses) is
    written there every ``checkpoint_every`` steps, atomically, and one found there at the start is
    resumed. ``on_step`` is called after every step.

    Raises:
        InvalidInputError: no example has a target token.
    """
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    if not any(e.target_tokens > 1 for e in examples):
        raise InvalidInputError("no training sequence has anything to learn (too short after masking)")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    result = TrainResult()
    path = checkpoint_dir / CHECKPOINT if checkpoint_dir else None
    if path is not None and path.exists():
        state = torch.load(path, weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        result = TrainResult(state["losses"], state["tokens"], state["seconds"], len(state["losses"]))
    model.train()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    started, done_before = time.perf_counter(), result.seconds
    tokens_run = 0
    for step in range(len(result.losses), config.steps):
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batches = [
            collate(micro_batch(examples, config, step * config.grad_accum + a), pad_id)
            for a in range(config.grad_accum)
        ]
        n_targets = sum(int((lab[:, 1:] != IGNORE).sum()) for _, _, lab in batches)
        total = 0.0
        for ids, mask, labels in batches:
            nll, _ = token_nll(model, ids, mask, labels)
            (nll / max(1, n_targets)).backward()
            total += float(nll.detach())
            tokens_run += int(mask.sum())
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = total / max(1, n_targets)
        if not math.isfinite(loss):
            raise InvalidInputError(f"the loss became {loss} at step {step + 1}: lower learning_rate")
        result.losses.append(loss)
        elapsed = time.perf_counter() - started
        result.seconds = done_before + elapsed
        if on_step:
            on_step(StepInfo(step + 1, config.steps, loss, tokens_run, tokens_run / elapsed, lr, elapsed))
        if path is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            _save(path, model, optimizer, result, tokens_run, get_peft_model_state_dict)
    result.tokens += tokens_run
    model.eval()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    return result


def _save(path: Path, model, optimizer, result: TrainResult, tokens_run: int, state_dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    state = {
        "adapter": state_dict(model),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "losses": list(result.losses),
        "tokens": result.tokens + tokens_run,
        "seconds": result.seconds,
    }
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
