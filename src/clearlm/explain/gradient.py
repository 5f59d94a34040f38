"""Gradient attribution around one teacher-forced forward pass over prompt plus target.

Causal masking makes the logits of every target step available from one forward pass; each target token's
attribution row then needs one vector-Jacobian product (backward pass) through that shared graph, instead
of one forward and one backward over its own prefix per target token (as inseq and Captum do). Several
rows are computed per backward call with ``torch.autograd.grad(..., is_grads_batched=True)`` where the model
supports it, falling back to one backward per row.

Methods (all reduce the per-dimension gradient over the embedding dimension D):
    saliency: ||grad||_2 (Simonyan et al. 2014, "Deep inside convolutional networks").
    input_x_gradient: sum_d x_d * grad_d (Shrikumar et al. 2016; Captum ``InputXGradient``).
    integrated_gradients: sum_d (x - x')_d * integral_0^1 grad_d(x' + a (x - x')) da
        (Sundararajan et al. 2017; Captum ``IntegratedGradients``), with quadrature as below.
The attributed function of target step t is f_t = log p(target_t | earlier tokens), or for contrastive
explanations f_t = log p(target_t) - log p(contrast_t) (Yin and Neubig 2022, "Interpreting language models
with contrastive explanations").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from clearlm.errors import InvalidInputError
from clearlm.explain.sequence import TeacherForced, causal_mask

GRADIENT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients")
BASELINES = ("zero", "pad", "mean")
PLACEMENTS = ("gauss-legendre", "riemann")


@dataclass(frozen=True, slots=True)
class GradientOutput:
    """scores: float64[n_targets, n_sources] (NaN outside the causal mask); target_logprobs and
    contrast_logprobs: float64[n_targets] at the input; completeness_gap: float64[n_targets] or None."""

    scores: np.ndarray
    target_logprobs: np.ndarray
    contrast_logprobs: np.ndarray | None
    completeness_gap: np.ndarray | None


def step_logprobs(model, embeds: torch.Tensor, seq: TeacherForced, contrast_ids: torch.Tensor | None = None):
    """Log-probabilities of every target token from one forward pass.

    Args:
        embeds: float[B, N, D], input embeddings of the whole sequence (B copies, e.g. interpolation steps).
        contrast_ids: int64[n_targets] or None.

    Returns:
        (target, contrast): float[B, n_targets] each (contrast None without contrast_ids).
    """
    n_targets = seq.n_targets
    # Only the positions that predict target tokens need logits: N-T-1 .. N-2.
    logits = model(inputs_embeds=embeds, logits_to_keep=n_targets + 1, use_cache=False).logits[:, :-1]
    logp = torch.log_softmax(logits.to(embeds.dtype), dim=-1)
    target = logp.gather(-1, seq.target_ids.to(logp.device)[None, :, None].expand(len(embeds), -1, 1))[..., 0]
    if contrast_ids is None:
        return target, None
    contrast = logp.gather(-1, contrast_ids.to(logp.device)[None, :, None].expand(len(embeds), -1, 1))[..., 0]
    return target, contrast


def integration_points(steps: int, placement: str = "gauss-legendre"):
    """Quadrature nodes and weights for integral_0^1 g(a) da: float64[steps] each.

    ``placement``: "gauss-legendre" (Captum's default) or "riemann" (trapezoid rule, uniform nodes).

    Raises:
        InvalidInputError: steps < 1, unknown placement.
    """
    if steps < 1:
        raise InvalidInputError(f"integrated gradients needs at least 1 step, got {steps}")
    if placement not in PLACEMENTS:
        raise InvalidInputError(
            f"unknown step placement {placement!r}: choose one of {', '.join(PLACEMENTS)}"
        )
    if placement == "gauss-legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        u, w = 0.5 * (nodes + 1), 0.5 * weights
    elif steps == 1:
        u, w = np.array([1.0]), np.array([1.0])
    else:
        u = np.linspace(0, 1, steps)
        w = np.full(steps, 1.0 / (steps - 1))
        w[[0, -1]] /= 2
    return u, w


@torch.no_grad()
def baseline_embeddings(model, seq: TeacherForced, baseline: str, like: torch.Tensor) -> torch.Tensor:
    """float[1, N, D]: "zero" (all zeros), "pad" (the pad, else end-of-text, token's embedding at every
    position) or "mean" (the mean input embedding over the vocabulary at every position)."""
    if baseline == "zero":
        return torch.zeros_like(like)
    table = model.get_input_embeddings()
    if baseline == "mean":
        return table.weight.mean(0).to(like.dtype).expand_as(like).clone()
    if baseline == "pad":
        cfg = model.config
        pad = cfg.pad_token_id if getattr(cfg, "pad_token_id", None) is not None else cfg.eos_token_id
        pad = pad[0] if isinstance(pad, list | tuple) else pad
        return table(torch.full(like.shape[:2], int(pad), device=like.device)).to(like.dtype)
    raise InvalidInputError(f"unknown baseline {baseline!r}: choose one of {', '.join(BASELINES)}")


class _RowGradients:
    """Gradients of several scalar outputs w.r.t. one input, many rows per backward call when possible."""

    batched: bool | None = None  # learned on first use: does this model's backward support vmap?

    def __init__(self, rows_per_call: int) -> None:
        self.rows_per_call = max(1, rows_per_call)

    def __call__(self, outputs: torch.Tensor, inputs: torch.Tensor, cotangents: torch.Tensor) -> torch.Tensor:
        """outputs: float[...]; cotangents: float[k, *outputs.shape] -> grads float[k, *inputs.shape]."""
        if _RowGradients.batched is not False and len(cotangents) > 1:
            try:
                (g,) = torch.autograd.grad(
                    outputs, inputs, cotangents, retain_graph=True, is_grads_batched=True
                )
                _RowGradients.batched = True
                return g
            except RuntimeError:
                _RowGradients.batched = False
        return torch.stack(
            [torch.autograd.grad(outputs, inputs, c, retain_graph=True)[0] for c in cotangents]
        )


def gradient_attribution(
    model,
    seq: TeacherForced,
    method: str,
    *,
    contrast_ids: torch.Tensor | None = None,
    steps: int = 64,
    baseline: str = "zero",
    placement: str = "gauss-legendre",
    internal_batch_size: int = 8,
    rows_per_call: int = 8,
) -> GradientOutput:
    """Token-level gradient attribution of every target step to every earlier token.

    Args:
        model: a transformers causal LM (its dtype sets the precision).
        seq: the teacher-forced sequence (N tokens, T targets).
        method: one of GRADIENT_METHODS.
        contrast_ids: int64[T] or None; when given, f_t = log p(target_t) - log p(contrast_t).
        steps, baseline, placement: integrated gradients' quadrature and baseline.
        internal_batch_size: interpolation steps per forward pass (integrated gradients).
        rows_per_call: target rows per batched backward call.

    Returns:
        GradientOutput with scores float64[T, N-1] (summed in float64 whatever the model's dtype).

    Raises:
        InvalidInputError: unknown method, baseline or placement; steps < 1.
    """
    if method not in GRADIENT_METHODS:
        raise InvalidInputError(
            f"unknown gradient method {method!r}: choose one of {', '.join(GRADIENT_METHODS)}"
        )
    device = next(model.parameters()).device
    with torch.no_grad():
        x = model.get_input_embeddings()(seq.ids[None].to(device))  # [1, N, D]
    n_t = seq.n_targets
    row_grads = _RowGradients(rows_per_call)
    raw = torch.zeros(n_t, x.shape[1], dtype=torch.float64, device=device)  # float64 sums per source

    def objective(embeds):
        target, contrast = step_logprobs(model, embeds, seq, contrast_ids)
        return (target - contrast if contrast is not None else target), target, contrast

    if method == "integrated_gradients":
        alphas, weights = integration_points(steps, placement)
        base = baseline_embeddings(model, seq, baseline, x)
        delta = (x - base)[0]  # [N, D]
        for lo in range(0, steps, internal_batch_size):
            a = torch.as_tensor(alphas[lo : lo + internal_batch_size], dtype=x.dtype, device=device)
            w = torch.as_tensor(weights[lo : lo + internal_batch_size], dtype=x.dtype, device=device)
            xb = (base + a[:, None, None] * delta).detach().requires_grad_(True)
            f = objective(xb)[0]  # [B, T]
            _accumulate(raw, f, xb, w, row_grads, lambda g: (g * delta).sum(-1))
        with torch.no_grad():
            f_x, target, contrast = objective(x)
            f_base = objective(base)[0]
        expected = (f_x - f_base)[0].double()
        gap = ((raw.sum(1) - expected).abs() / expected.abs()).detach().cpu().numpy()
    else:
        xr = x.detach().requires_grad_(True)
        f_x, target, contrast = objective(xr)
        if method == "saliency":
            reduce: Callable = lambda g: g.norm(dim=-1)  # noqa: E731
        else:
            reduce = lambda g: (g * x[0]).sum(-1)  # noqa: E731
        _accumulate(raw, f_x, xr, torch.ones(1, dtype=x.dtype, device=device), row_grads, reduce)
        gap = None
    scores = raw[:, :-1].cpu().numpy()
    scores[~causal_mask(seq).numpy()] = np.nan
    return GradientOutput(
        scores=scores,
        target_logprobs=target[0].detach().double().cpu().numpy(),
        contrast_logprobs=None if contrast is None else contrast[0].detach().double().cpu().numpy(),
        completeness_gap=gap,
    )


def _accumulate(out, f, inputs, weights, row_grads: _RowGradients, reduce) -> None:
    """out[t] += reduce(sum_b weights[b] * d f[b, t] / d inputs[b]) for every target t.

    f: float[B, T]; inputs: float[B, N, D]; weights: float[B]; reduce maps float[k, N, D] -> float[k, N].
    The weights multiply the gradients after the backward pass, as Captum does: models that run parts of
    the network in float32 whatever their dtype (Qwen2's RMSNorm) would otherwise round differently.
    """
    n_t = f.shape[1]
    for lo in range(0, n_t, row_grads.rows_per_call):
        rows = range(lo, min(n_t, lo + row_grads.rows_per_call))
        cot = torch.zeros(len(rows), *f.shape, dtype=f.dtype, device=f.device)
        for k, t in enumerate(rows):
            cot[k, :, t] = 1
        g = (row_grads(f, inputs, cot) * weights[None, :, None, None]).sum(1)  # [k, N, D]
        out[lo : lo + len(rows)] += reduce(g).double()
