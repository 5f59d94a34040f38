"""Host-memory prompt cache for the llama.cpp engine: the keys and values of finished sequences, kept in RAM
so that they leave the KV cache (as llama.cpp's server does with ``--cache-ram`` and its idle slots).

In a unified KV cache every decode step attends over every cell in use, so the cells of finished sequences
slow the live ones (measured: one stream decoded 12% slower beside seven finished 260-token sequences).
Kept here instead, a returning prompt (the next turn of a chat, or the same system prompt) is copied back
in milliseconds rather than prefilled again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(eq=False)
class SavedSequence:
    """``tokens``: the token ids whose keys and values ``state`` holds (``llama_state_seq_get_data``'s
    bytes, a ctypes ``c_uint8`` array of ``nbytes``)."""

    tokens: list[int]
    state: object
    nbytes: int


class PromptCache:
    """Saved sequences, least recently used dropped first past ``budget_bytes`` in all."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.nbytes = 0
        self._entries: OrderedDict[int, SavedSequence] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def best(self, prompt: list[int], limit: int) -> tuple[int, SavedSequence | None]:
        """The saved sequence sharing the longest prefix with ``prompt`` (at most ``limit`` tokens), and
        that length; ``(0, None)`` when none shares a token. The one found counts as just used."""
        n, found = 0, None
        for entry in self._entries.values():
            k = common_prefix(entry.tokens, prompt, limit)
            if k > n:
                n, found = k, entry
        if found is not None:
            self._entries.move_to_end(id(found))
        return n, found

    def put(self, entry: SavedSequence) -> None:
        """Keep ``entry``; drop saved sequences it extends (it holds all they did), then the least
        recently used past the budget. An entry larger than the whole budget is not kept."""
        if entry.nbytes > self.budget_bytes:
            return
        for key, old in list(self._entries.items()):
            if len(old.tokens) <= len(entry.tokens) and entry.tokens[: len(old.tokens)] == old.tokens:
                self._drop(key)
        self._entries[id(entry)] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.budget_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: int) -> None:
        self.nbytes -= self._entries.pop(key).nbytes


def common_prefix(a: list[int], b: list[int], limit: int) -> int:
    """The length of the common prefix of ``a`` and ``b``, at most ``limit``."""
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
