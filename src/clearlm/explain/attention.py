"""Attention weights as attribution: raw attention (per layer and head, or averaged) and attention rollout.

Raw attention follows the common practice of reading the attention row of the position that predicts each
target token (see Jain and Wallace 2019 for its limits). Attention rollout follows Abnar and Zuidema 2020,
"Quantifying attention flow in transformers": per layer, the head-averaged attention plus the identity for
the residual stream (0.5 A + 0.5 I), rows renormalised, multiplied from the first layer to the last.
"""

from __future__ import annotations

import numpy as np
import torch

from clearlm.errors import InvalidInputError
from clearlm.explain.sequence import TeacherForced, causal_mask, target_positions


def attention_weights(model, seq: TeacherForced) -> torch.Tensor:
    """float64[n_layers, n_heads, N, N]: every layer's attention probabilities over the whole sequence.

    The model runs once with the eager attention implementation (fused kernels return no weights), and its
    previous implementation is restored afterwards.
    """
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            out = model(seq.ids[None].to(device), output_attentions=True, use_cache=False, logits_to_keep=1)
    finally:
        model.set_attn_implementation(previous)
    return torch.stack([a[0] for a in out.attentions]).double().cpu()


def attention_scores(
    weights: torch.Tensor, seq: TeacherForced, *, layer: int | None = None, head: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw attention of each target's predicting position over the sources.

    Args:
        weights: float[n_layers, n_heads, N, N] from ``attention_weights``.
        layer, head: select one layer / head (negative indices count from the end); None averages.

    Returns:
        (scores float32[n_targets, n_sources], per_layer_head float32[n_layers, n_heads, n_targets, n_sources]);
        NaN outside the causal mask.

    Raises:
        InvalidInputError: layer or head out of range.
    """
    n_layers, n_heads = weights.shape[:2]
    rows = weights[:, :, target_positions(seq), : seq.n_sources].float().numpy()  # [L, H, T, S]
    rows[..., ~causal_mask(seq).numpy()] = np.nan
    selected = rows
    if layer is not None:
        _check_index("layer", layer, n_layers)
        selected = selected[layer : layer + 1 or None]
    if head is not None:
        _check_index("head", head, n_heads)
        selected = selected[:, head : head + 1 or None]
    return selected.mean(axis=(0, 1)), rows


def rollout_scores(weights: torch.Tensor, seq: TeacherForced) -> np.ndarray:
    """Attention rollout: float32[n_targets, n_sources], NaN outside the causal mask."""
    n = weights.shape[-1]
    eye = torch.eye(n, dtype=weights.dtype)
    rollout = eye
    for layer in weights:  # first layer to last
        a = 0.5 * layer.mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        rollout = a @ rollout
    scores = rollout[target_positions(seq), : seq.n_sources].float().numpy()
    scores[~causal_mask(seq).numpy()] = np.nan
    return scores


def _check_index(name: str, index: int, size: int) -> None:
    if not -size <= index < size:
        raise InvalidInputError(f"{name} {index} is out of range: the model has {size} ({-size}..{size - 1})")
