"""Faithfulness of an attribution: does the model's prediction depend on the sources it ranks highest?

For every target token t (its sources are the tokens before it), adapted to generation:

- comprehensiveness and sufficiency (DeYoung et al. 2020, ERASER): remove the top-k% attributed sources,
  or keep only them, and measure the drop in p(target_t); averaged over k in ``FRACTIONS`` this is the area
  over the perturbation curve (AOPC). Comprehensiveness: higher is more faithful; sufficiency: lower is.
- Soft-NC and Soft-NS (Zhao and Aletras 2023, "Incorporating attribution importance for improving
  faithfulness metrics", as used by ReAGent): instead of removing whole tokens, every embedding dimension of
  a source is kept with a probability given by its min-max normalised score (Soft-NS) or one minus it
  (Soft-NC), and the result is normalised by the zero-input prediction. Both: higher is more faithful.

Only displayed sources are perturbed (``Attribution.visible_sources``): chat-template markers stay, so the
input keeps its format. ``random_attribution`` gives the floor every method should beat.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from clearlm.errors import InvalidInputError
from clearlm.explain import progress
from clearlm.explain.result import Attribution

FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class Faithfulness:
    """Per-target faithfulness figures (float64[n_targets] each) and their means.

    comprehensiveness / sufficiency: AOPC over ``fractions`` of the drop in probability (probability units).
    soft_nc / soft_ns: Soft-NC and Soft-NS, averaged over ``samples`` random masks.
    """

    comprehensiveness: np.ndarray
    sufficiency: np.ndarray
    soft_nc: np.ndarray
    soft_ns: np.ndarray
    fractions: tuple[float, ...]

    def summary(self) -> dict[str, float]:
        return {
            "comprehensiveness": float(np.nanmean(self.comprehensiveness)),
            "sufficiency": float(np.nanmean(self.sufficiency)),
            "soft_nc": float(np.nanmean(self.soft_nc)),
            "soft_ns": float(np.nanmean(self.soft_ns)),
        }


def random_attribution(result: Attribution, seed: int = 0) -> Attribution:
    """The same result with uniform random scores (NaN kept): the floor of every faithfulness figure."""
    rng = np.random.default_rng(seed)
    scores = rng.random(result.scores.shape).astype(np.float32)
    scores[np.isnan(result.scores)] = np.nan
    return result.with_scores(scores, method="random")


def evaluate(
    backend,
    result: Attribution,
    *,
    fractions: tuple[float, ...] = FRACTIONS,
    samples: int = 4,
    seed: int = 0,
    batch_size: int = 16,
    cache: dict | None = None,
) -> Faithfulness:
    """Faithfulness of a token-level ``result`` on the model that produced it (its ``token_ids``).

    Cost: one forward pass per distinct (target, fraction) pair for comprehensiveness and sufficiency each,
    batched by length; 2 x ``samples`` + 1 batched forward passes (one row per target) for Soft-NC and
    Soft-NS. Only the needed positions are projected onto the vocabulary. Pass the same ``cache`` (a dict)
    to evaluate several results of one sequence, as when comparing methods with the random floor: forward
    passes already made for an identical input are reused (the values do not change).

    Raises:
        InvalidInputError: a word-level result, or one saved without its token ids.
    """
    if result.granularity != "token":
        raise InvalidInputError("faithfulness is measured on the token-level result, not the word-level one")
    token_ids = result.token_ids
    if len(token_ids) != result.n_sources + 1:
        raise InvalidInputError("the result carries no token ids matching its sources: explain it again")
    model = backend.model
    device = next(model.parameters()).device
    ids = torch.tensor(token_ids, device=device)
    n_p, n_t = result.n_prompt, result.n_targets
    visible = set(result.visible_sources().tolist())
    full = np.log(result.target_probs.astype(np.float64))

    rows, keep_lists = [], []
    for t in range(n_t):
        candidates = [s for s in range(n_p + t) if s in visible]
        order = sorted(candidates, key=lambda s: -float(result.scores[t, s]))
        for k in fractions:
            top = set(order[: max(1, math.ceil(k * len(order)))]) if order else set()
            everything = range(n_p + t)
            keep_lists.append([s for s in everything if s not in top])  # comprehensiveness
            keep_lists.append([s for s in everything if s not in visible or s in top])  # sufficiency
            rows.append(t)
    targets = [int(ids[n_p + t]) for t in rows for _ in (0, 1)]
    logp = _last_logprobs(model, ids, keep_lists, targets, batch_size, cache)
    logp = logp.reshape(n_t, len(fractions), 2)
    p_full = np.exp(full)[:, None]
    comp = _nanmean(p_full - np.exp(logp[..., 0]), 1)
    suff = _nanmean(p_full - np.exp(logp[..., 1]), 1)
    soft_nc, soft_ns = _soft(model, ids, result, visible, samples, seed, {} if cache is None else cache)
    return Faithfulness(comp, suff, soft_nc, soft_ns, tuple(fractions))


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without its warning for an all-NaN row (a target with nothing left to predict from
    at every fraction): that row's mean is NaN, reported as null."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis)


def _last_logprobs(model, ids: torch.Tensor, keep_lists, targets, batch_size: int, cache=None) -> np.ndarray:
    """log p(target_i | ids[keep_lists[i]]) for every i, right-padded batches (causal: padding after the
    last kept token cannot change its logits).

    Each distinct (kept token ids, target) pair is computed once (the top 1% and 5% are often the same single
    token; with a shared ``cache``, other results of the same sequence often remove the same tokens), rows
    are batched by length so little padding is computed, and the vocabulary projection is applied at each
    row's last kept position only.
    """
    cache = {} if cache is None else cache
    out = np.full(len(keep_lists), np.nan)  # NaN where nothing is left to predict from
    unique: dict[tuple, list[int]] = {}
    for i, keep in enumerate(keep_lists):
        if keep:
            unique.setdefault(("logp", tuple(ids[keep].tolist()), int(targets[i])), []).append(i)
    todo = sorted((k for k in unique if k not in cache), key=lambda k: len(k[1]))
    progress.grow(len(todo))
    for lo in range(0, len(todo), batch_size):
        chunk = todo[lo : lo + batch_size]
        width = max(len(k[1]) for k in chunk)
        batch = torch.zeros(len(chunk), width, dtype=torch.long, device=ids.device)
        for r, (_, kept, _) in enumerate(chunk):
            batch[r, : len(kept)] = torch.tensor(kept)
        last = torch.tensor([[len(k[1]) - 1] for k in chunk], device=ids.device)
        logp = torch.log_softmax(_logits_at(model, last, input_ids=batch).double(), -1)
        tgt = torch.tensor([k[2] for k in chunk], device=ids.device)
        for key, value in zip(chunk, logp.gather(-1, tgt[:, None])[:, 0].tolist(), strict=True):
            cache[key] = value
        progress.advance(len(chunk))
    for key, index in unique.items():
        out[index] = cache[key]
    return out


def _logits_at(model, positions: torch.Tensor, **inputs) -> torch.Tensor:
    """Logits [B, V] of row b at ``positions[b, 0]`` only (no projection of the other positions onto the
    vocabulary, about a quarter of a small model's work)."""
    with torch.no_grad():
        logits = model(**inputs, use_cache=False, logits_to_keep=positions).logits
        if logits.dim() == 3 and logits.shape[:2] == (len(positions), 1):
            return logits[:, 0]
        # A model or transformers version without per-row positions: project everything, then pick.
        logits = model(**inputs, use_cache=False).logits
    return logits[torch.arange(len(positions)), positions[:, 0]]


def _soft(model, ids, result: Attribution, visible: set[int], samples: int, seed: int, cache: dict):
    """Soft-NC and Soft-NS per target: one batched forward per sample, one row per target."""
    gen = torch.Generator().manual_seed(seed)
    n_p, n_t = result.n_prompt, result.n_targets
    with torch.no_grad():
        x = model.get_input_embeddings()(ids[None])[0]  # [N, D]
    pos = torch.arange(n_t) + n_p - 1  # position predicting each target
    tgt = ids[n_p:]
    importance = np.zeros((n_t, x.shape[0]))
    for t in range(n_t):
        cand = [s for s in range(n_p + t) if s in visible]
        if cand:
            v = result.scores[t, cand].astype(np.float64)
            span = v.max() - v.min()
            importance[t, cand] = (v - v.min()) / span if span > 0 else 1.0
    importance = torch.as_tensor(importance, dtype=x.dtype)
    perturbable = torch.zeros(x.shape[0], dtype=torch.bool)
    perturbable[list(visible)] = True

    def prob(embeds):  # embeds [T, N, D] -> p(target_t) at row t
        # The last target token is no one's source: causal, so leaving it out changes no prediction.
        logits = _logits_at(model, pos[:, None], inputs_embeds=embeds[:, :-1])
        logp = torch.log_softmax(logits.double(), -1)
        return logp.gather(-1, tgt[:, None])[:, 0].exp().cpu().numpy()

    base = x.expand(n_t, -1, -1)
    p_full = result.target_probs.astype(np.float64)  # the unperturbed prediction, as the method saw it
    zero = torch.where(perturbable[None, :, None], torch.zeros_like(base), base)
    key = ("zero", tuple(ids.tolist()), tuple(sorted(visible)))
    progress.grow(2 * samples + (key not in cache))  # batched forward passes
    if key not in cache:
        cache[key] = prob(zero)  # every perturbable source zeroed: the same for every result of the sequence
        progress.advance()
    p_zero = cache[key]
    soft_s_zero = 1 - np.maximum(0, p_full - p_zero)
    # Undefined (NaN) where zeroing every source does not lower the prediction: nothing to normalise by.
    denom = np.where(1 - soft_s_zero > 1e-6, 1 - soft_s_zero, np.nan)
    nc, ns = np.zeros(n_t), np.zeros(n_t)
    for _ in range(samples):
        for keep_p, acc, kind in ((1 - importance, nc, "nc"), (importance, ns, "ns")):
            mask = torch.bernoulli(keep_p[:, :, None].expand(-1, -1, x.shape[1]), generator=gen)
            mask = torch.where(perturbable[None, :, None], mask, torch.ones_like(mask))
            p = prob(base * mask)
            progress.advance()
            if kind == "nc":
                acc += np.maximum(0, p_full - p) / denom
            else:
                acc += ((1 - np.maximum(0, p_full - p)) - soft_s_zero) / denom
    return nc / samples, ns / samples
