"""The sequence an explanation differentiates: prompt plus target, with per-token tags."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import SamplingParams, generate
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.models.chat import Prompt
from clearlm.models.tokens import encode_text


@dataclass(frozen=True, slots=True)
class TeacherForced:
    """Prompt and target as one sequence for a single teacher-forced forward pass.

    Fields (N = n_prompt + n_targets tokens):
        ids: int64[N]; n_prompt: prompt length in tokens; tokens: str[N], each token decoded on its own;
        roles / message_index / special: per token, as in ``EncodedPrompt`` (generated tokens have role
        "assistant" and message index n_messages).
    """

    ids: torch.Tensor
    n_prompt: int
    tokens: list[str]
    roles: list[str | None]
    message_index: list[int]
    special: list[bool]

    @property
    def n_targets(self) -> int:
        return len(self.ids) - self.n_prompt

    @property
    def target_ids(self) -> torch.Tensor:
        return self.ids[self.n_prompt :]

    @property
    def n_sources(self) -> int:
        return len(self.ids) - 1

    def upto(self, t: int) -> TeacherForced:
        """The sequence ending at target step t, with that step as its only target (earlier ones join the
        prompt)."""
        end = self.n_prompt + t + 1
        return TeacherForced(
            ids=self.ids[:end],
            n_prompt=end - 1,
            tokens=self.tokens[:end],
            roles=self.roles[:end],
            message_index=self.message_index[:end],
            special=self.special[:end],
        )


def build_sequence(
    backend: TorchBackend,
    prompt: Prompt,
    target: str | None = None,
    *,
    max_new_tokens: int = 32,
) -> TeacherForced:
    """Encode ``prompt`` and append ``target`` (forced) or the model's greedy continuation.

    The target is tokenized on its own (no special tokens), as the text that follows the prompt.

    Raises:
        InvalidInputError: empty prompt; a target that tokenizes to nothing; a generation that produced
            nothing; prompt plus target longer than the model's context.
    """
    encoded = backend.encode(prompt)
    n_prompt = len(encoded.token_ids)
    if n_prompt >= backend.context_length:
        raise InvalidInputError(
            f"the prompt is {n_prompt:,} tokens but the model's context holds {backend.context_length:,}: "
            "shorten the prompt"
        )
    if target is not None:
        target_ids = encode_text(backend.tokenizer, target)
        if not target_ids:
            raise InvalidInputError("the target tokenizes to nothing: give a non-empty target text")
    else:
        completion = generate(backend, prompt, SamplingParams(max_new_tokens=max_new_tokens))
        target_ids = list(completion.token_ids)
        if not target_ids:
            raise InvalidInputError(
                "the model generated nothing for this prompt (it ended its turn at once): "
                "give a target to explain with --target"
            )
    n = n_prompt + len(target_ids)
    if n > backend.context_length:
        raise InvalidInputError(
            f"prompt plus target is {n:,} tokens but the model's context holds {backend.context_length:,}: "
            "shorten the prompt or the target"
        )
    ids = list(encoded.token_ids) + list(target_ids)
    n_messages = max(encoded.message_index, default=-1) + 1
    special_ids = set(backend.tokenizer.all_special_ids)
    return TeacherForced(
        ids=torch.tensor(ids, dtype=torch.long),
        n_prompt=n_prompt,
        tokens=[backend.tokenizer.decode([i]) for i in ids],
        roles=list(encoded.roles) + ["assistant"] * len(target_ids),
        message_index=list(encoded.message_index) + [n_messages] * len(target_ids),
        special=list(encoded.special) + [i in special_ids for i in target_ids],
    )


def target_positions(seq: TeacherForced) -> torch.Tensor:
    """int64[n_targets]: the position whose logits predict each target token (one before it)."""
    return torch.arange(seq.n_prompt - 1, len(seq.ids) - 1)


def causal_mask(seq: TeacherForced) -> torch.Tensor:
    """bool[n_targets, n_sources]: True where source s comes before target t (s < n_prompt + t)."""
    t = torch.arange(seq.n_targets)[:, None]
    s = torch.arange(seq.n_sources)[None, :]
    return s < seq.n_prompt + t
