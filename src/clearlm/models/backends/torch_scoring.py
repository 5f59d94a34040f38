"""Teacher-forced log-probabilities of one response after many prompts, batched and sharing prefixes (the
torch backend's ``response_logprobs``; ``llamacpp_scoring`` is llama.cpp's).

Context attribution by ablation scores the same response after many variants of one prompt (each with some
sources left out). The variants share long token prefixes: the system message, and every source up to the
first one a variant leaves out. ``response_logprobs`` arranges the variants in a prefix tree (a radix tree
over token ids, as vLLM's and SGLang's prefix caches do), runs each shared prefix once into a key/value
cache, and runs only what follows it for each variant, several variants per forward pass (right-padded, so
no real token ever attends to padding and every score equals the unbatched one). Only the positions that
predict response tokens are projected onto the vocabulary.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch

# Shared prefixes shorter than this are recomputed for each variant rather than given a forward pass of
# their own (a forward pass has a fixed cost; a few tokens do not pay for it).
MIN_SHARED_TOKENS = 4

_Cache = tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per layer: keys, values [1, heads, length, dim]


def response_logprobs(
    model,
    prompts: Sequence[Sequence[int]],
    response: Sequence[int],
    *,
    batch_size: int = 4,
    share_prefixes: bool = True,
    stats: dict | None = None,
) -> np.ndarray:
    """log p(response_t | prompt, response_<t) for every prompt, teacher-forced.

    Args:
        model: a transformers causal LM (its dtype sets the precision).
        prompts: token ids of each prompt (n prompts, each at least one token).
        response: token ids of the response (T >= 1 tokens), appended to every prompt.
        batch_size: variants per forward pass.
        share_prefixes: compute each shared token prefix once into a key/value cache (models whose layers all
            use full attention; others fall back to plain batched forward passes).
        stats: a dict to receive the work done: "forward_passes" and "tokens" (token positions run,
            padding included).

    Returns:
        float64[n, T] natural-log probabilities, each equal to a single-sequence forward pass of
        ``prompt + response`` up to floating-point rounding.
    """
    response = [int(i) for i in response]
    seqs = [[int(i) for i in p] + response for p in prompts]
    need = [len(p) - 1 for p in prompts]  # first position whose output predicts response[0]
    if any(n < 0 for n in need):
        raise ValueError("every prompt needs at least one token")
    runner = _Runner(model, seqs, need, len(response), max(1, batch_size))
    with torch.inference_mode():
        if share_prefixes and _caches_supported(model):
            runner.tree(None, 0, list(range(len(seqs))))
        else:
            runner.leaves(None, 0, list(range(len(seqs))))
    if stats is not None:
        stats.update(forward_passes=runner.passes, tokens=runner.tokens)
    return runner.out


def _caches_supported(model) -> bool:
    """Prefix caching assumes every layer attends to every earlier token (no sliding windows)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        return all(t == "full_attention" for t in layer_types)
    return not getattr(config, "use_sliding_window", False) and not getattr(
        config, "sliding_window_pattern", 0
    )


class _Runner:
    """Walks the prefix tree of ``seqs``; fills ``out[i]`` with sequence i's response log-probabilities."""

    def __init__(self, model, seqs: list[list[int]], need: list[int], n_response: int, batch_size: int):
        self.model, self.seqs, self.need, self.T, self.batch_size = model, seqs, need, n_response, batch_size
        self.base = model.base_model
        self.head = model.get_output_embeddings()
        self.cap = getattr(model.config, "final_logit_softcapping", None)
        self.device = next(model.parameters()).device
        params = inspect.signature(self.base.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.out = np.zeros((len(seqs), n_response), dtype=np.float64)
        self.passes = self.tokens = 0

    def tree(self, cache: _Cache | None, start: int, members: list[int]) -> None:
        """Members share ``seqs[m][:start]`` (held in ``cache``); extend the common prefix, then split."""
        if len(members) > 1:
            common = _common_prefix([self.seqs[m] for m in members])
            # Never cache a position whose output is needed: those run in the members' own passes.
            q = min(common, min(self.need[m] for m in members))
            if q - start >= MIN_SHARED_TOKENS:
                cache = self._extend(cache, members[0], start, q)
                start = q
            if q == common:  # the members part at token q: one subtree per distinct token
                groups: dict[int, list[int]] = {}
                for m in members:
                    groups.setdefault(self.seqs[m][q], []).append(m)
                for group in groups.values():
                    self.tree(cache, start, group)
                return
        self.leaves(cache, start, members)

    def leaves(self, cache: _Cache | None, start: int, members: list[int]) -> None:
        """Run ``seqs[m][start:]`` of every member after ``cache``, batched by length, right-padded."""
        members = sorted(members, key=lambda m: len(self.seqs[m]))
        for lo in range(0, len(members), self.batch_size):
            batch = members[lo : lo + self.batch_size]
            width = max(len(self.seqs[m]) - start for m in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            for row, m in enumerate(batch):
                tail = self.seqs[m][start:]
                ids[row, : len(tail)] = torch.tensor(tail)
                # padding repeats the last token: any id works, as nothing real attends to it
                ids[row, len(tail) :] = tail[-1]
            hidden = self._forward(ids, cache, len(batch))[0]  # [B, width, D]
            steps = torch.arange(self.T)
            pos = torch.stack([self.need[m] - start + steps for m in batch]).to(self.device)
            picked = hidden.gather(1, pos[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, T, D]
            logits = self.head(picked)
            if self.cap:
                logits = torch.tanh(logits / self.cap) * self.cap
            logp = torch.log_softmax(logits.to(hidden.dtype), dim=-1)
            targets = torch.tensor([self.seqs[m][self.need[m] + 1 :] for m in batch], device=self.device)
            picked_lp = logp.gather(-1, targets[..., None])[..., 0]
            self.out[batch] = picked_lp.double().cpu().numpy()

    def _extend(self, cache: _Cache | None, owner: int, start: int, stop: int) -> _Cache:
        """The cache of ``seqs[owner][:stop]`` from that of ``[:start]``."""
        ids = torch.tensor([self.seqs[owner][start:stop]])
        return self._forward(ids, cache, 1, keep_cache=True)[1]

    def _forward(self, ids: torch.Tensor, cache: _Cache | None, batch: int, keep_cache: bool = False):
        self.passes += 1
        self.tokens += ids.numel()
        kwargs = {}
        if cache is not None:
            from transformers import DynamicCache

            expanded = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in cache]
            kwargs[self.cache_kw] = DynamicCache(expanded)
        out = self.base(input_ids=ids.to(self.device), use_cache=cache is not None or keep_cache, **kwargs)
        new_cache = None
        if keep_cache:
            returned = getattr(out, "cache", None)
            returned = returned if returned is not None else out.past_key_values
            new_cache = tuple((layer.keys, layer.values) for layer in returned.layers)
        return out.last_hidden_state, new_cache


def _common_prefix(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix of the sequences."""
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        token = first[i]
        if any(s[i] != token for s in seqs[1:]):
            return i
    return n
