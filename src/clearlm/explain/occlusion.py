"""Occlusion: how much each source (token or word) matters, by leaving it out.

score[t, g] = log p(target_t | sequence) - log p(target_t | sequence without group g), in nats (Zeiler and
Fergus 2014; for text, Li et al. 2016, "Understanding neural networks through representation erasure").
With ``baseline`` a token string, the group's tokens are replaced by that token instead of removed
(Captum's ``FeatureAblation`` with a baseline token).

One occluded sequence gives the log-probability of every later target token at once (teacher forcing), so
the cost is one forward pass per group, batched, not one per (group, target) pair.
"""

from __future__ import annotations

import numpy as np
import torch

from clearlm.errors import InvalidInputError
from clearlm.explain import progress
from clearlm.explain.gradient import step_logprobs
from clearlm.explain.sequence import TeacherForced


def occlusion_scores(
    model,
    seq: TeacherForced,
    groups: list[tuple[int, int]],
    *,
    baseline_id: int | None = None,
    batch_size: int = 8,
    scorer=None,
) -> tuple[np.ndarray, np.ndarray]:
    """The drop in each target's log-probability when a group is occluded.

    Returns:
        (scores float32[n_targets, len(groups)], target_logprobs float64[n_targets] of the whole sequence).

    Args:
        groups: [start, end) token spans over the sources (0 <= start < end <= N - 1).
        baseline_id: None removes the group's tokens; a token id replaces each of them.
        batch_size: occluded sequences per forward pass (torch).
        scorer: None scores on ``model`` (torch forward passes); or a backend with ``sequence_logprobs``
            (``LlamaCppBackend``: the occluded sequences scored by llama.cpp, each shared prefix decoded
            once; ``model`` is then unused).

    NaN where the group is not entirely before the target, or where removing it leaves nothing before the
    first target.
    """
    for a, b in groups:
        if not 0 <= a < b <= seq.n_sources:
            raise InvalidInputError(f"occlusion group {(a, b)} is outside the {seq.n_sources} sources")
    if scorer is not None:
        return _scored_by(scorer, seq, groups, baseline_id)
    device = next(model.parameters()).device
    n_t, n_p = seq.n_targets, seq.n_prompt
    with torch.no_grad():
        embed = model.get_input_embeddings()
        full = step_logprobs(model, embed(seq.ids[None].to(device)), seq)[0][0].double().cpu().numpy()
    scores = np.full((n_t, len(groups)), np.nan, dtype=np.float32)
    # Sequences of equal length batch together: group by the number of tokens removed.
    by_len: dict[int, list[int]] = {}
    for g, (a, b) in enumerate(groups):
        by_len.setdefault(0 if baseline_id is not None else b - a, []).append(g)
    progress.grow(len(groups))
    for removed, members in by_len.items():
        occluded = _shifted(seq, removed)
        lost = n_t - occluded.n_targets  # leading targets with nothing left before them
        for lo in range(0, len(members), batch_size):
            chunk = members[lo : lo + batch_size]
            ids = torch.stack([_occlude(seq.ids, groups[g], baseline_id) for g in chunk]).to(device)
            with torch.no_grad():
                logp = step_logprobs(model, embed(ids), occluded)[0].double().cpu().numpy()  # [B, T - lost]
            for row, g in zip(logp, chunk, strict=True):
                # the group must lie wholly before the target: end <= n_prompt + t
                t = np.arange(max(groups[g][1] - n_p, lost), n_t)
                scores[t, g] = full[t] - row[t - lost]
            progress.advance(len(chunk))
    return scores, full


def _scored_by(scorer, seq: TeacherForced, groups, baseline_id: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``occlusion_scores`` with every sequence scored by ``scorer.sequence_logprobs`` in one call."""
    n_t, n_p = seq.n_targets, seq.n_prompt
    ids = seq.ids.tolist()
    seqs, starts, kept = [ids], [n_p], []
    for g, group in enumerate(groups):
        occluded = _occlude(seq.ids, group, baseline_id).tolist()
        start = max(n_p - (len(ids) - len(occluded)), 1)  # as ``_shifted``: the first target left
        if start < len(occluded):
            seqs.append(occluded)
            starts.append(start)
            kept.append(g)
    progress.grow(len(groups))
    rows = scorer.sequence_logprobs(seqs, starts)
    full = rows[0]
    scores = np.full((n_t, len(groups)), np.nan, dtype=np.float32)
    for g, row in zip(kept, rows[1:], strict=True):
        lost = n_t - len(row)  # leading targets with nothing left before them
        t = np.arange(max(groups[g][1] - n_p, lost), n_t)
        scores[t, g] = full[t] - row[t - lost]
    progress.advance(len(groups))
    return scores, full


def _occlude(ids: torch.Tensor, group: tuple[int, int], baseline_id: int | None) -> torch.Tensor:
    a, b = group
    if baseline_id is None:
        return torch.cat([ids[:a], ids[b:]])
    out = ids.clone()
    out[a:b] = baseline_id
    return out


def _shifted(seq: TeacherForced, removed: int) -> TeacherForced:
    """The targets of ``seq`` over a sequence ``removed`` tokens shorter (only ids and n_prompt are used).

    Targets are the tokens after the first ``n_prompt - removed`` positions; when that leaves no context
    for the first targets, they are dropped from the front.
    """
    return TeacherForced(
        ids=seq.ids[removed:],
        n_prompt=max(seq.n_prompt - removed, 1),
        tokens=[],
        roles=[],
        message_index=[],
        special=[],
    )
