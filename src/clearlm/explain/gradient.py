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
        (Sundararajan et al. 2017; Captum ``IntegratedGradients``), with the quadrature of
        ``clearlm.explain.quadrature`` (adaptive by default; Gauss-Legendre as Captum).
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
from clearlm.explain import progress
from clearlm.explain.quadrature import adaptive_integral, check_placement, integration_points
from clearlm.explain.sequence import TeacherForced, causal_mask

GRADIENT_METHODS = ("saliency", "input_x_gradient", "integrated_gradients")
BASELINES = ("zero", "pad", "mean")


@dataclass(frozen=True, slots=True)
class GradientOutput:
    """scores: float64[n_targets, n_sources] (NaN outside the causal mask); target_logprobs and
    contrast_logprobs: float64[n_targets] at the input; completeness_gap: float64[n_targets] or None;
    gradient_evaluations: points on the path where gradients were taken (all targets together; 1 for
    saliency and input x gradient)."""

    scores: np.ndarray
    target_logprobs: np.ndarray
    contrast_logprobs: np.ndarray | None
    completeness_gap: np.ndarray | None
    gradient_evaluations: int = 1


def step_logprobs(model, embeds: torch.Tensor, seq: TeacherForced, contrast_ids: torch.Tensor | None = None):
    """Log-probabilities of every target token from one forward pass.

    Args:
        embeds: float[B, N, D], input embeddings of the whole sequence (B copies, e.g. interpolation steps).
        contrast_ids: int64[n_targets] or None.

    Returns:
        (target, contrast): float[B, n_targets] each (contrast None without contrast_ids).
    """
    n_targets = seq.n_targets
    head = _plain_head(model) if torch.is_grad_enabled() else None
    if head is None:  # no gradient wanted, or a head with a bias or soft-capping: the model's own head
        # Only the positions that predict target tokens need logits: N-T-1 .. N-2.
        logits = model(inputs_embeds=embeds, logits_to_keep=n_targets + 1, use_cache=False).logits[:, :-1]
        logp = torch.log_softmax(logits.to(embeds.dtype), dim=-1)

        def pick(ids):
            return logp.gather(-1, ids.to(logp.device)[None, :, None].expand(len(embeds), -1, 1))[..., 0]

    else:
        decoder = getattr(model, model.base_model_prefix)
        hidden = decoder(inputs_embeds=embeds, use_cache=False).last_hidden_state
        hidden = hidden[:, -n_targets - 1 : -1]  # [B, T, D], the positions that predict the targets

        def pick(ids):
            return _TokenLogprob.apply(hidden, head, ids.to(hidden.device))[0].to(embeds.dtype)

    target = pick(seq.target_ids)
    return target, None if contrast_ids is None else pick(contrast_ids)


def _plain_head(model) -> torch.Tensor | None:
    """The output projection's weight float[V, D] when logits are just hidden @ weight.T, else None."""
    head = model.get_output_embeddings()
    if (
        isinstance(head, torch.nn.Linear)
        and head.bias is None
        and getattr(model.config, "final_logit_softcapping", None) is None
        and hasattr(model, getattr(model, "base_model_prefix", ""))
    ):
        return head.weight
    return None


_HEAD_CHUNK = 2**21  # logits held at once by _TokenLogprob: 8 MB in float32


class _TokenLogprob(torch.autograd.Function):
    """log softmax(h W^T)[ids] per position, float[B, T], for hidden states h float[B, T, D] and the output
    projection W float[V, D].

    Its gradient, d/dh = W[ids] - softmax(h W^T) W, is computed in the forward pass (a [B, T, D] tensor) so
    that backward passes never hold a [B, T, V] tensor: batched backward passes (one row per target token)
    would otherwise hold one per row, hundreds of megabytes over a 150k-token vocabulary.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(hidden, weight, ids):
        # A few positions at a time, so that the [B, T, V] logits never exist whole.
        chunk = max(1, _HEAD_CHUNK // (len(hidden) * len(weight)))
        logp, direction = [], []
        for lo in range(0, hidden.shape[1], chunk):
            logits = hidden[:, lo : lo + chunk] @ weight.T  # [B, chunk, V]
            picked_ids = ids[lo : lo + chunk]
            picked = logits.gather(-1, picked_ids[None, :, None].expand(len(hidden), -1, 1))[..., 0]
            logp.append(picked - torch.logsumexp(logits, dim=-1))
            direction.append(weight[picked_ids] - torch.softmax(logits, dim=-1) @ weight)  # [B, chunk, D]
        return torch.cat(logp, 1), torch.cat(direction, 1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output[1])
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    def backward(ctx, grad_logp, _grad_direction):
        (direction,) = ctx.saved_tensors
        return grad_logp[..., None] * direction, None, None


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
    steps: int = 512,
    baseline: str = "zero",
    placement: str = "adaptive",
    tolerance: float = 0.01,
    internal_batch_size: int = 8,
    rows_per_call: int = 8,
    sequence: bool = False,
) -> GradientOutput:
    """Token-level gradient attribution of every target step to every earlier token.

    Args:
        model: a transformers causal LM (its dtype sets the precision).
        seq: the teacher-forced sequence (N tokens, T targets).
        method: one of GRADIENT_METHODS.
        contrast_ids: int64[T] or None; when given, f_t = log p(target_t) - log p(contrast_t).
        steps, baseline, placement, tolerance: integrated gradients' baseline and quadrature: "adaptive"
            placement integrates each target on its own, halving segments until its completeness gap is at
            most ``tolerance`` (relative) or ``steps`` gradient evaluations are spent on it; "gauss-legendre"
            and "riemann" use ``steps`` nodes shared by all targets.
        internal_batch_size: interpolation steps per forward pass (integrated gradients).
        rows_per_call: target rows per batched backward call.
        sequence: attribute the whole target's log-probability, f = sum_t f_t, with one row (Captum's
            ``seq_attr``): one backward pass (per integration step) instead of one per target token. For
            input x gradient and integrated gradients it equals the sum of the token-level rows.

    Returns:
        GradientOutput with scores float64[T, N-1] (T = 1 with ``sequence``), summed in float64 whatever the
        model's dtype.

    Raises:
        InvalidInputError: unknown method, baseline or placement; too few steps; tolerance outside (0, 1).
    """
    if method not in GRADIENT_METHODS:
        raise InvalidInputError(
            f"unknown gradient method {method!r}: choose one of {', '.join(GRADIENT_METHODS)}"
        )
    device = next(model.parameters()).device
    with torch.no_grad():
        x = model.get_input_embeddings()(seq.ids[None].to(device))  # [1, N, D]
    n_t = 1 if sequence else seq.n_targets
    row_grads = _RowGradients(rows_per_call)
    objective = _objective(model, seq, contrast_ids, sequence)

    if method == "integrated_gradients":
        check_placement(steps, placement, tolerance)
        base = baseline_embeddings(model, seq, baseline, x)
        raw, evaluations = _integrate(
            model,
            seq,
            x,
            base,
            contrast_ids,
            objective,
            sequence=sequence,
            steps=steps,
            placement=placement,
            tolerance=tolerance,
            batch=internal_batch_size,
            row_grads=row_grads,
        )
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
        raw = torch.zeros(1, n_t, x.shape[1], dtype=torch.float64, device=device)
        progress.grow(n_t)
        _accumulate(raw, f_x, xr, torch.ones(1, dtype=x.dtype, device=device), row_grads, reduce)
        raw, gap, evaluations = raw[0], None, 1
    scores = raw[:, :-1].cpu().numpy()
    if not sequence:
        scores[~causal_mask(seq).numpy()] = np.nan
    return GradientOutput(
        scores=scores,
        target_logprobs=target[0].detach().double().cpu().numpy(),
        contrast_logprobs=None if contrast is None else contrast[0].detach().double().cpu().numpy(),
        completeness_gap=gap,
        gradient_evaluations=evaluations,
    )


def _integrate(
    model, seq, x, base, contrast_ids, objective, *, sequence, steps, placement, tolerance, batch, row_grads
) -> tuple[torch.Tensor, int]:
    """Integrated gradients' integral for every target: (float64[T, N], gradient evaluations used).

    ``objective`` is the whole sequence's (``_objective``); adaptive token-level integration builds one per
    target over the sequence ending at it."""
    if placement != "adaptive":
        sums, _ = _path_integrand(objective, x, base, batch, row_grads)
        alphas, weights = integration_points(steps, placement)
        progress.grow(steps * (1 if sequence else seq.n_targets))
        integral = sums(alphas, weights, np.zeros(steps, dtype=np.int64))[0]
        return torch.as_tensor(integral, device=x.device), steps
    # Adaptive: one target at a time (each target's log-probability has its own steep stretches of the
    # path), or the whole target's at once at sequence level.
    jobs = (
        [(objective, x.shape[1])]
        if sequence
        else [
            (
                _objective(model, seq.upto(t), None if contrast_ids is None else contrast_ids[t : t + 1]),
                seq.n_prompt + t + 1,
            )
            for t in range(seq.n_targets)
        ]
    )
    raw = torch.zeros(len(jobs), x.shape[1], dtype=torch.float64, device=x.device)
    evaluations = 0
    progress.grow(len(jobs) * steps)  # each job's budget; what a job leaves unspent is skipped at its end
    for row, (f, end) in enumerate(jobs):
        sums, values = _path_integrand(f, x[:, :end], base[:, :end], batch, row_grads)
        integral, used = adaptive_integral(sums, values, budget=steps, tolerance=tolerance, batch=batch)
        raw[row, :end] = torch.as_tensor(integral[0], device=x.device)
        evaluations += used
        progress.advance(steps - used)
    return raw, evaluations


def _objective(model, seq: TeacherForced, contrast_ids: torch.Tensor | None = None, sequence: bool = False):
    """embeds float[B, N, D] -> (f, target, contrast), each float[B, T] (float[B, 1] summed over the targets
    with ``sequence``; contrast None without contrast_ids): f = target log-probability, minus the contrast's."""

    def objective(embeds):
        target, contrast = step_logprobs(model, embeds, seq, contrast_ids)
        if sequence:
            target = target.sum(-1, keepdim=True)
            contrast = None if contrast is None else contrast.sum(-1, keepdim=True)
        return (target - contrast if contrast is not None else target), target, contrast

    return objective


def _path_integrand(objective, x, base, batch: int, row_grads: _RowGradients):
    """Integrated gradients' integrand along the straight path base + a (x - base), for ``quadrature``.

    objective: as ``_objective`` returns; x, base: float[1, N, D]. Returns (gradient_sums, values):
        gradient_sums(alphas float64[k], weights float64[k], groups int64[k]) -> float64[S, T, N], per group
            the weighted sum of (grad f_t . (x - base)) per source position, ``batch`` nodes per pass;
        values(alphas float64[k]) -> float64[k, T], f_t along the path (forward passes only).
    """
    delta = (x - base)[0]  # [N, D]

    def f(embeds):
        return objective(embeds)[0]

    def gradient_sums(alphas: np.ndarray, weights: np.ndarray, groups: np.ndarray) -> np.ndarray:
        sums = None
        for lo in range(0, len(alphas), batch):
            a, w, g = (
                torch.as_tensor(v[lo : lo + batch], dtype=dt, device=x.device)
                for v, dt in ((alphas, x.dtype), (weights, x.dtype), (groups, torch.long))
            )
            xb = (base + a[:, None, None] * delta).detach().requires_grad_(True)
            fb = f(xb)  # [B, T]
            if sums is None:
                shape = (int(groups.max()) + 1, fb.shape[1], x.shape[1])
                sums = torch.zeros(shape, dtype=torch.float64, device=x.device)
            _accumulate(sums, fb, xb, w, row_grads, lambda grad: (grad * delta).sum(-1), groups=g)
        return sums.cpu().numpy()

    @torch.no_grad()
    def values(alphas: np.ndarray) -> np.ndarray:
        a = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
        return torch.cat([f(base + c[:, None, None] * delta) for c in a.split(batch)]).double().cpu().numpy()

    return gradient_sums, values


def _accumulate(out, f, inputs, weights, row_grads: _RowGradients, reduce, groups=None) -> None:
    """out[groups[b], t] += reduce(sum_b weights[b] * d f[b, t] / d inputs[b]) for every target t.

    out: float64[S, T, N]; f: float[B, T]; inputs: float[B, N, D]; weights: float[B]; groups: int64[B] in
    [0, S) (None: all in group 0); reduce maps float[k, S, N, D] -> float[k, S, N].
    The weights multiply the gradients after the backward pass, as Captum does: models that run parts of
    the network in float32 whatever their dtype (Qwen2's RMSNorm) would otherwise round differently.
    """
    n_t = f.shape[1]
    for lo in range(0, n_t, row_grads.rows_per_call):
        rows = range(lo, min(n_t, lo + row_grads.rows_per_call))
        cot = torch.zeros(len(rows), *f.shape, dtype=f.dtype, device=f.device)
        for k, t in enumerate(rows):
            cot[k, :, t] = 1
        g = row_grads(f, inputs, cot) * weights[None, :, None, None]  # [k, B, N, D]
        if groups is None:
            summed = g.sum(1, keepdim=True)
        else:
            summed = g.new_zeros(len(rows), out.shape[0], *g.shape[2:]).index_add_(1, groups, g)
        out[:, lo : lo + len(rows)] += reduce(summed).double().transpose(0, 1)
        progress.advance(len(rows) * f.shape[0])  # gradient rows: target rows x points on the path
