"""Continuous batching over one llama.cpp context: several sequences decode together, one token each per
``llama_decode`` call, while new prompts are prefilled in the same batches (as llama.cpp's own server does
with its parallel slots). On a CPU, one decode of 8 tokens costs far less than 8 decodes of one, since the
weights are read from memory once per call.

This uses llama-cpp-python's ``_internals`` wrappers (context, batch, sampler chain), as its own server does.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import random
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import SamplingParams, token_logprob
from clearlm.models.backends.llamacpp_prompt_cache import PromptCache, SavedSequence, common_prefix

log = logging.getLogger(__name__)

MIN_SAVED_TOKENS = 16  # shorter sequences are cheaper to decode again than to keep


class EngineError(RuntimeError):
    """A generation the llama.cpp engine could not finish (a fault in llama.cpp or in clearlm, not in the
    request). Only that generation ends; the engine goes on with the others."""


@dataclass(eq=False)
class Sequence:
    """One generation in the engine. ``out`` receives ``(token id, TokenLogprob | None)`` per new token,
    then None at the end, or an :class:`EngineError` (the last item) when it fails. Set ``cancel`` to stop it
    at the next step."""

    prompt: list[int]
    params: SamplingParams
    max_new: int
    grammar: object | None
    out: queue.Queue = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    slot: int = -1
    pos: int = 0
    fed: list[int] = field(default_factory=list)  # the tokens decoded into the slot, in order
    n_new: int = 0
    next_token: int | None = None
    sampler: object | None = None


class Engine:
    """A scheduler thread over a llama.cpp context with ``slots`` sequences of ``n_ctx_per_slot`` tokens.

    A fault while serving one sequence (its sampler, its logits, freeing its slot) ends that sequence with
    an :class:`EngineError` and the thread goes on; a failed decode ends the sequences in that batch.

    Args:
        model: ``llama_cpp._internals.LlamaModel``; eos: ids that end a sequence; n_threads: CPU threads;
        host_cache_bytes: host memory for finished sequences' keys and values (see ``llamacpp_prompt_cache``).
    """

    def __init__(
        self,
        model,
        *,
        slots: int,
        n_ctx_per_slot: int,
        n_threads: int,
        eos: set[int],
        n_batch: int = 512,
        host_cache_bytes: int = 1 << 30,
    ):
        import llama_cpp
        from llama_cpp import _internals

        self._internals = _internals
        self._llama_cpp = llama_cpp
        self.model = model
        self.eos = eos
        self.slots = slots
        self.n_batch = max(n_batch, slots)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = slots * n_ctx_per_slot
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = slots
        params.kv_unified = True
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        self.ctx = _internals.LlamaContext(model=model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.n_vocab = model.n_vocab()
        self._cv = threading.Condition()
        self._waiting: deque[Sequence] = deque()
        self._active: list[Sequence] = []
        self._free = list(range(slots))
        self._dirty: list[int] = []  # slots whose cache could not be cleared yet
        # the tokens whose keys and values each slot holds (kept after a sequence ends, for prefix reuse)
        self._cached: list[list[int]] = [[] for _ in range(slots)]
        self.prompt_cache = PromptCache(host_cache_bytes)  # finished sequences moved out of the KV cache
        self.reused_tokens = 0  # prompt tokens taken from the cache instead of decoded, since the start
        self._dead: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="llamacpp-engine", daemon=True)
        self._thread.start()

    def submit(self, seq: Sequence) -> Sequence:
        """Queue ``seq``.

        Raises:
            InvalidInputError: a prompt token id outside the model's vocabulary.
            EngineError: the engine thread has stopped.
        """
        bad = next((t for t in seq.prompt if not 0 <= t < self.n_vocab), None)
        if bad is not None:
            raise InvalidInputError(
                f"token id {bad} is not in the model's vocabulary (0 to {self.n_vocab - 1})"
            )
        with self._cv:
            if self._dead is not None:
                raise EngineError(f"the llama.cpp engine has stopped ({self._dead!r}): reload the model")
            self._waiting.append(seq)
            self._cv.notify()
        return seq

    def wake(self) -> None:
        with self._cv:
            self._cv.notify()

    def _sampler(self, seq: Sequence):
        s = self._internals.LlamaSampler()
        p = seq.params
        if getattr(seq.grammar, "patterns", None):  # lazy: applies once the output matches a pattern
            s.add_grammar_lazy_patterns(self.model, seq.grammar.grammar, seq.grammar.patterns, [])
        elif seq.grammar is not None:
            s.add_grammar(self.model, seq.grammar)
        if p.greedy:
            s.add_greedy()
        else:
            if p.top_k:
                s.add_top_k(p.top_k)
            if p.top_p < 1:
                s.add_top_p(p.top_p, 1)
            s.add_temp(p.temperature)
            s.add_dist(p.seed if p.seed is not None else random.getrandbits(32))
        return s

    def _run(self) -> None:
        try:
            while True:
                try:
                    self._admit()
                    for seq in [s for s in self._active if s.cancel.is_set()]:
                        self._finish(seq)
                    if self._active:
                        self._step()
                except Exception as exc:  # outside any one sequence's work: end those in flight, go on
                    log.exception("llama.cpp engine step failed")
                    for seq in list(self._active):
                        self._fail(seq, exc)
        except BaseException as exc:  # the thread itself is ending: no stream may wait for it
            with self._cv:
                self._dead = exc
                stranded = [*self._active, *self._waiting]
                self._waiting.clear()
            for seq in stranded:
                seq.out.put(EngineError(f"the llama.cpp engine stopped: {exc!r}"))
            raise

    def _admit(self) -> None:
        """Wait for work, then move waiting sequences into free slots."""
        with self._cv:
            while not self._waiting and not self._active:
                self._cv.wait()
            for slot in list(self._dirty):
                if self._clear(slot):
                    self._dirty.remove(slot)
                    self._free.append(slot)
            while self._waiting and self._free:
                seq = self._waiting.popleft()
                try:
                    seq.sampler = self._sampler(seq)
                except Exception as exc:
                    log.exception("llama.cpp sampler setup failed")
                    seq.out.put(EngineError(f"llama.cpp could not set up this generation: {exc!r}"))
                    continue
                if self._place(seq):
                    self._active.append(seq)
                else:
                    seq.sampler.close()
                    self._waiting.appendleft(seq)
            if self._active:  # finished sequences' cells would slow every decode step: move them out
                for slot in [k for k in self._free if self._cached[k]]:
                    self._park(slot)
                    if not self._clear(slot):
                        self._free.remove(slot)
                        self._dirty.append(slot)

    def _place(self, seq: Sequence) -> bool:
        """Put ``seq`` in a free slot, reusing the longest cached prefix of its prompt (prefix caching, as
        llama.cpp's server and vLLM do): a free slot that already holds it is taken as is, past the
        prefix; a prefix in another slot is shared from it (``llama_memory_seq_cp``: the unified cache
        stores the cells once); one saved in host memory is copied back (``llama_state_seq_set_data``).
        What the chosen slot held past the kept prefix goes to host memory. Always leaves at least the prompt's last
        token to decode, for its logits. False (and the slot set aside) when llama.cpp cannot clear the
        slot."""
        limit = len(seq.prompt) - 1
        best, src = 0, -1
        for k, tokens in enumerate(self._cached):
            n = common_prefix(tokens, seq.prompt, limit)
            if n > best or (n == best and n > 0 and k in self._free and src not in self._free):
                best, src = n, k
        saved_n, saved = self.prompt_cache.best(seq.prompt, limit)
        in_place = src in self._free and best >= saved_n
        # the slot that holds the prefix if it is free, else the free slot with the least cached
        slot = src if in_place else min(self._free, key=lambda k: len(self._cached[k]))
        self._free.remove(slot)
        keep = best if in_place else 0
        if len(self._cached[slot]) - keep >= MIN_SAVED_TOKENS:  # what would be dropped goes to host memory
            self._park(slot)
        kept = self._trim(slot, keep)
        if kept is not None and saved_n > best:
            kept = self._restore(saved, slot, saved_n)
        elif kept == 0 and best > 0:
            self.ctx.kv_cache_seq_cp(src, slot, 0, best)
            kept = best
        if kept is None:
            self._dirty.append(slot)
            return False
        seq.slot, seq.pos, seq.fed = slot, kept, list(seq.prompt[:kept])
        self._cached[slot] = seq.fed  # grows as the sequence decodes
        self.reused_tokens += kept
        return True

    def _park(self, slot: int) -> None:
        """Save what ``slot`` holds to host memory (it stays in the slot until cleared). A failure only
        loses the saved copy."""
        tokens = self._cached[slot]
        if len(tokens) < MIN_SAVED_TOKENS:
            return
        try:
            size = self._llama_cpp.llama_state_seq_get_size(self.ctx.ctx, slot)
            state = (ctypes.c_uint8 * size)()
            n = self._llama_cpp.llama_state_seq_get_data(self.ctx.ctx, state, size, slot)
        except Exception:
            log.exception("llama.cpp could not save slot %d", slot)
            return
        if n:
            self.prompt_cache.put(SavedSequence(list(tokens), state, n))

    def _restore(self, saved: SavedSequence, slot: int, keep: int) -> int | None:
        """Copy ``saved`` into the empty ``slot`` and keep its first ``keep`` tokens. Returns the tokens
        kept (0 when llama.cpp could not restore it: the prompt is then decoded), or None when the slot
        could not be cleared after a failure."""
        try:
            ok = self._llama_cpp.llama_state_seq_set_data(self.ctx.ctx, saved.state, saved.nbytes, slot)
        except Exception:
            log.exception("llama.cpp could not restore a saved sequence into slot %d", slot)
            ok = 0
        if not ok:
            return self._trim(slot, 0)
        self._cached[slot] = list(saved.tokens)
        return self._trim(slot, keep)

    def _step(self) -> None:
        b = self.batch.batch
        b.n_tokens = 0
        rows: list[tuple[Sequence, int]] = []
        in_batch: list[Sequence] = []

        def add(seq: Sequence, token: int, logits: bool) -> None:
            seq.fed.append(token)
            j = b.n_tokens
            b.token[j], b.pos[j], b.seq_id[j][0], b.n_seq_id[j], b.logits[j] = (
                token,
                seq.pos,
                seq.slot,
                1,
                logits,
            )
            b.n_tokens, seq.pos = j + 1, seq.pos + 1
            if not in_batch or in_batch[-1] is not seq:
                in_batch.append(seq)
            if logits:
                rows.append((seq, j))

        for seq in self._active:  # sequences already decoding: one token each
            if seq.next_token is not None:
                add(seq, seq.next_token, True)
        for seq in self._active:  # prompts still being read, in chunks that fill the rest of the batch
            while seq.next_token is None and seq.pos < len(seq.prompt) and b.n_tokens < self.n_batch:
                add(seq, seq.prompt[seq.pos], seq.pos == len(seq.prompt) - 1)
        try:
            self.ctx.decode(self.batch)
        except Exception as exc:  # e.g. the KV cache is full: fail this batch's sequences, keep serving
            for seq in dict.fromkeys(in_batch):
                self._fail(seq, exc, "llama.cpp could not decode")
            return
        for seq, j in rows:
            try:
                token = seq.sampler.sample(self.ctx, j)
                lp = None
                if seq.params.logprobs is not None:
                    row = self._llama_cpp.llama_get_logits_ith(self.ctx.ctx, j)
                    lp = token_logprob(
                        np.ctypeslib.as_array(row, shape=(self.n_vocab,)), token, seq.params.logprobs
                    )
            except Exception as exc:
                self._fail(seq, exc, "llama.cpp could not sample the next token")
                continue
            seq.n_new += 1
            seq.out.put((token, lp))
            if token in self.eos or seq.n_new >= seq.max_new:
                self._finish(seq)
            else:
                seq.next_token = token

    def _finish(self, seq: Sequence, signal: bool = True) -> None:
        """Take ``seq`` out of the engine and free its slot (and end its stream when ``signal``)."""
        try:
            seq.sampler.close()
        except Exception:
            log.exception("llama.cpp sampler close failed")
        with self._cv:
            if seq in self._active:
                self._active.remove(seq)
                self._cached[seq.slot] = seq.fed  # kept for a later prompt that starts the same way
                self._free.append(seq.slot)
        if signal:
            seq.out.put(None)

    def _fail(self, seq: Sequence, exc: BaseException, what: str = "the llama.cpp engine failed") -> None:
        """End ``seq``'s stream with an :class:`EngineError` and free its slot."""
        if not isinstance(exc, EngineError):
            log.error("%s (slot %d): %r", what, seq.slot, exc)
        self._finish(seq, signal=False)
        with self._cv:  # what the slot holds after a failure is unknown: clear it before reuse
            if seq.slot in self._free:
                self._free.remove(seq.slot)
                (self._free if self._clear(seq.slot) else self._dirty).append(seq.slot)
        seq.out.put(EngineError(f"{what}: {exc!r}; other generations go on, so the request can be retried"))

    def _clear(self, slot: int) -> bool:
        """Drop ``slot``'s cached keys and values; False if llama.cpp refused (the slot stays out of use)."""
        return self._trim(slot, 0) is not None

    def _trim(self, slot: int, keep: int) -> int | None:
        """Drop ``slot``'s cached keys and values past its first ``keep`` tokens. Returns the tokens kept:
        ``keep``, or 0 when only clearing it all worked, or None when llama.cpp refused even that."""
        try:
            if self.ctx.kv_cache_seq_rm(slot, keep, -1):
                self._cached[slot] = self._cached[slot][:keep]
                return keep
            if keep and self.ctx.kv_cache_seq_rm(slot, -1, -1):
                self._cached[slot] = []
                return 0
        except Exception:
            log.exception("llama.cpp could not clear slot %d", slot)
        self._cached[slot] = []
        return None
