"""Teacher-forced scoring on llama.cpp: the log-probability of given tokens after many sequences that
share prefixes (context attribution's ablations, occlusion), computing each shared prefix once.

The sequences are scored in lexicographic order of their token ids. In that order the longest prefix a
sequence shares with any earlier one is the one it shares with the sequence just before it, so each
sequence copies that prefix's keys and values from its predecessor (``llama_memory_seq_cp``: in a unified
KV cache the cells are shared, not copied) and decodes only the rest: every distinct prefix (every node of
the prefix tree) is decoded exactly once, and two sequence ids suffice. Only the positions that predict a
scored token ask for logits (the batch's ``logits`` flags), so llama.cpp projects nothing else onto the
vocabulary.

The scorer has a llama.cpp context of its own over the engine's model (llama.cpp shares one model between
contexts), so scoring never touches the generation engine's KV cache or batch and runs beside it; its
lock serializes scoring calls.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from clearlm.errors import InvalidInputError

SEQ_IDS = 2  # the sequence being scored and its predecessor in sorted order


class Scorer:
    """Teacher-forced log-probabilities over a llama.cpp model.

    Args:
        model: ``llama_cpp._internals.LlamaModel`` (shared with the engine, read-only).
        n_threads: CPU threads for its decodes. n_batch: tokens per ``llama_decode`` call.
    """

    def __init__(self, model, *, n_threads: int, n_batch: int = 512) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._llama_cpp, self._internals = llama_cpp, _internals
        self.model = model
        self.n_threads = n_threads
        self.n_batch = n_batch
        self.n_vocab = model.n_vocab()
        self.ctx = None
        self.n_ctx = 0
        self.batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self.lock = threading.Lock()
        self.decoded_tokens = 0  # token positions decoded since the start (the work done)

    def sequence_logprobs(self, seqs: Sequence[Sequence[int]], starts: Sequence[int]) -> list[np.ndarray]:
        """log p(seq[j] | seq[:j]) for j in ``starts[i]``..len(seq)-1, for every sequence i.

        Args:
            seqs: token ids of each sequence. starts: for each, the index of its first scored token
                (1 <= start < len(seq)).

        Returns:
            One float64[len(seq) - start] array of natural-log probabilities per sequence, in input order.

        Raises:
            InvalidInputError: a start outside 1..len(seq)-1, or a token id outside the vocabulary.
        """
        seqs = [[int(t) for t in s] for s in seqs]
        starts = [int(s) for s in starts]
        for s, start in zip(seqs, starts, strict=True):
            if not 1 <= start < len(s):
                raise InvalidInputError(f"scoring needs 1 <= start < length, got start {start} of {len(s)}")
            bad = next((t for t in s if not 0 <= t < self.n_vocab), None)
            if bad is not None:
                raise InvalidInputError(
                    f"token id {bad} is not in the model's vocabulary (0 to {self.n_vocab - 1})"
                )
        out: list[np.ndarray | None] = [None] * len(seqs)
        if not seqs:
            return []
        order = sorted(range(len(seqs)), key=lambda i: seqs[i])
        with self.lock:
            self._ensure_context(2 * max(len(s) for s in seqs))
            self.ctx.kv_cache_clear()
            prev: list[int] = []
            for k, i in enumerate(order):
                seq_id, prev_id = k % SEQ_IDS, (k - 1) % SEQ_IDS
                # reuse the predecessor's decoded prefix (all but its last token), but decode every
                # position whose logits are needed
                shared = min(_common_prefix(prev, seqs[i]), len(prev) - 1, starts[i] - 1)
                self.ctx.kv_cache_seq_rm(seq_id, -1, -1)
                if shared:
                    self.ctx.kv_cache_seq_cp(prev_id, seq_id, 0, shared)
                out[i] = self._decode(seqs[i], starts[i], shared, seq_id)
                prev = seqs[i]
        return out  # type: ignore[return-value]

    def response_logprobs(self, prompts: Sequence[Sequence[int]], response: Sequence[int]) -> np.ndarray:
        """log p(response_t | prompt, response_<t) for every prompt, teacher-forced (as
        ``clearlm.models.backends.torch_scoring.response_logprobs`` on torch).

        Args:
            prompts: token ids of each prompt (n prompts, each at least one token).
            response: token ids of the response (T >= 1 tokens), appended to every prompt.

        Returns:
            float64[n, T] natural-log probabilities.

        Raises:
            InvalidInputError: an empty prompt or response, or a token id outside the vocabulary.
        """
        response = [int(t) for t in response]
        if not response or any(len(p) == 0 for p in prompts):
            raise InvalidInputError("scoring needs a non-empty response and a non-empty prompt each")
        rows = self.sequence_logprobs([[*p, *response] for p in prompts], [len(p) for p in prompts])
        return np.stack(rows) if rows else np.zeros((0, len(response)))

    def _decode(self, seq: list[int], start: int, pos: int, seq_id: int) -> np.ndarray:
        """Decode ``seq[pos:-1]`` into ``seq_id`` (its cache holding ``seq[:pos]``); returns the
        log-probabilities of ``seq[start:]``, read from the positions start-1 .. len-2."""
        b = self.batch.batch
        parts = []
        end = len(seq) - 1  # the last token predicts nothing that is scored
        while pos < end:
            n = min(self.n_batch, end - pos)
            for j in range(n):
                p = pos + j
                b.token[j], b.pos[j], b.seq_id[j][0], b.n_seq_id[j], b.logits[j] = (
                    seq[p],
                    p,
                    seq_id,
                    1,
                    p >= start - 1,
                )
            b.n_tokens = n
            self.ctx.decode(self.batch)
            self.decoded_tokens += n
            first = max(start - 1, pos)  # first position of this batch with logits
            k = pos + n - first
            if k > 0:
                ptr = self._llama_cpp.llama_get_logits(self.ctx.ctx)
                logits = np.ctypeslib.as_array(ptr, shape=(k, self.n_vocab))
                parts.append(_token_logprobs(logits, seq[first + 1 : pos + n + 1]))
            pos += n
        return np.concatenate(parts)

    def _ensure_context(self, n_ctx: int) -> None:
        """A context of at least ``n_ctx`` cells (rounded up to 1,024), created or grown as needed."""
        if self.ctx is not None and self.n_ctx >= n_ctx:
            return
        n_ctx = -(-n_ctx // 1024) * 1024
        params = self._llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = SEQ_IDS
        params.kv_unified = True
        params.n_threads = params.n_threads_batch = self.n_threads
        params.no_perf = True
        if self.ctx is not None:
            self.ctx.close()
        self.ctx = None
        self.ctx = self._internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.n_ctx = n_ctx


def _token_logprobs(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """float64[k]: log_softmax(logits[r])[targets[r]] for each row of float32[k, vocab] logits."""
    top = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=1, dtype=np.float64)) + top[:, 0]
    picked = logits[np.arange(len(targets)), np.asarray(targets)].astype(np.float64)
    return picked - lse


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
