"""The llama.cpp backend (llama-cpp-python): fast CPU decoding of a GGUF file. An optional extra."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.models.backends.base import (
    Chunk,
    JsonOutput,
    SamplingParams,
    TextStream,
    ToolCallOutput,
    budget,
)
from clearlm.models.chat import EncodedPrompt, Prompt, encode_prompt, end_of_turn_ids
from clearlm.models.threads import cpu_threads


def import_llama():
    """The ``llama_cpp.Llama`` class.

    Raises:
        BackendUnavailableError: llama-cpp-python is not installed; the message says how to install it.
    """
    try:
        from llama_cpp import Llama
    except ImportError:
        raise BackendUnavailableError(
            "the llamacpp backend needs llama-cpp-python: pip install 'clearlm[llamacpp]' "
            "(it builds from source in a few minutes), or use --backend torch"
        ) from None
    return Llama


class LlamaCppBackend:
    """A GGUF model run by llama.cpp, with ``slots`` sequences decoded together by continuous batching
    (see ``llamacpp_engine``). Prompts are rendered with the transformers tokenizer's chat template
    (``tokenizer``), so both backends see the same prompt text; llama.cpp tokenizes and decodes.

    Args:
        gguf: path of the .gguf file. tokenizer: a transformers tokenizer for the chat template.
        n_ctx: context window of each sequence in tokens (default 8192, or 4096 with several slots, to
            bound the KV cache's memory). slots: sequences generated at once (default 1).
    """

    kind = "llamacpp"

    def __init__(
        self, gguf: Path, tokenizer, name: str, *, n_ctx: int | None = None, n_threads=None, slots: int = 1
    ) -> None:
        from clearlm.models.backends.llamacpp_engine import Engine

        Llama = import_llama()
        if slots < 1:
            raise InvalidInputError(f"slots must be >= 1, got {slots}")
        threads = n_threads or cpu_threads()
        # The Llama object loads the weights (and keeps a token-sized context of its own, unused).
        self.llm = Llama(model_path=str(gguf), n_ctx=64, n_batch=64, n_threads=threads, verbose=False)
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = n_ctx or (8192 if slots == 1 else 4096)
        self.eos = {self.llm.token_eos(), *end_of_turn_ids(self.tokenizer)}
        self.engine = Engine(
            self.llm._model, slots=slots, n_ctx_per_slot=self.context_length, n_threads=threads, eos=self.eos
        )
        self.lock = threading.Lock()
        self._threads = threads
        self._scorer = None
        self._scorer_made = threading.Lock()  # not self.lock: explainers call scoring while holding it

    @property
    def scorer(self):
        """The teacher-forced scorer (``llamacpp_scoring.Scorer``), made on first use: a llama.cpp context
        of its own over the same weights, so scoring runs beside generation."""
        with self._scorer_made:
            if self._scorer is None:
                from clearlm.models.backends.llamacpp_scoring import Scorer

                self._scorer = Scorer(self.llm._model, n_threads=self._threads)
            return self._scorer

    def response_logprobs(self, prompts, response) -> np.ndarray:
        """log p(response_t | prompt, response_<t) for every prompt, teacher-forced on llama.cpp, each shared
        prefix decoded once (see ``llamacpp_scoring``).

        Args:
            prompts: token ids of each prompt (n, each at least one token). response: T >= 1 token ids.

        Returns:
            float64[n, T] natural-log probabilities.

        Raises:
            InvalidInputError: an empty prompt or response, a token outside the vocabulary, or prompt plus
                response longer than the context.
        """
        self._check_length(max((len(p) for p in prompts), default=0) + len(response))
        return self.scorer.response_logprobs(prompts, response)

    def sequence_logprobs(self, seqs, starts) -> list[np.ndarray]:
        """log p(seq[j] | seq[:j]) for j from ``starts[i]`` to the end of each sequence i: a list of
        float64[len - start] arrays, nats (see ``llamacpp_scoring.Scorer.sequence_logprobs``)."""
        self._check_length(max((len(s) for s in seqs), default=0))
        return self.scorer.sequence_logprobs(seqs, starts)

    def _check_length(self, n: int) -> None:
        if n > self.context_length:
            raise InvalidInputError(
                f"a sequence to score is {n:,} tokens but the model's context holds "
                f"{self.context_length:,}: shorten it"
            )

    def encode(self, prompt: Prompt) -> EncodedPrompt:
        return encode_prompt(self.tokenizer, prompt)

    def decode(self, ids) -> str:
        return self.llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[Chunk]:
        """Stream a generation; it shares decode steps with the other sequences in flight. Closing the
        iterator early stops it at the next step."""
        from clearlm.models.backends.llamacpp_engine import Sequence

        encoded = self.encode(prompt)
        max_new = budget(len(encoded.token_ids), params, self.context_length)
        grammar = _grammar(params.json_output) if params.json_output else None
        if params.tool_calls is not None:
            grammar = _tool_grammar(params.tool_calls)
        seq = self.engine.submit(Sequence(list(encoded.token_ids), params, max_new, grammar))
        text = TextStream(self.decode, params.stop)
        try:
            while (item := seq.out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                token, lp = item
                if token in self.eos:
                    yield Chunk(text.finish(), (), "stop")
                    return
                lps = (lp,) if lp is not None else ()
                piece = text.push([token])
                if text.stopped:
                    yield Chunk(piece, (token,), "stop", lps)
                    return
                yield Chunk(piece, (token,), logprobs=lps)
            yield Chunk(text.finish(), (), "length")
        finally:
            seq.cancel.set()
            self.engine.wake()


def _grammar(spec: JsonOutput):
    """A llama.cpp GBNF grammar for JSON (any value, or valid against the schema).

    Raises:
        InvalidInputError: a schema llama.cpp cannot turn into a grammar.
    """
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import JSON_GBNF

    try:
        if spec.schema is None:
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        return LlamaGrammar.from_json_schema(spec.schema, verbose=False)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"cannot use the JSON schema: {exc}") from None


class LazyGrammar:
    """A grammar that applies once the output matches one of ``patterns`` (full-match regexes whose
    first group starts the constrained text), as llama.cpp's lazy grammar sampler takes it."""

    def __init__(self, grammar, patterns: list[str]) -> None:
        self.grammar = grammar
        self.patterns = patterns


def _tool_grammar(spec: ToolCallOutput):
    """The tool-call constraint (see ``clearlm.models.tools``) as a llama.cpp GBNF grammar: each call's
    arguments by llama.cpp's own JSON-Schema converter; required, a grammar from the first token;
    auto, a lazy one that starts at ``<tool_call>`` or a fenced JSON block.

    Raises:
        InvalidInputError: a parameters schema llama.cpp cannot turn into a grammar.
    """
    import json
    import re

    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import SchemaConverter

    from clearlm.models import tools as t

    conv = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)

    def lit(text: str) -> str:
        return conv._format_literal(text)

    forms = (
        [(t.CALL_HEAD, t.CALL_END)]
        if spec.required
        else [(t.CALL_HEAD, t.CALL_END), (t.FENCE_HEAD, t.FENCE_CALL_END)]
    )
    try:
        args = []
        for i, (_, schema) in enumerate(spec.tools):
            args.append(conv.visit(conv.resolve_refs(json.loads(schema), "stdin"), f"args{i}"))
    except (ValueError, RuntimeError, KeyError, TypeError, AssertionError) as exc:
        raise InvalidInputError(f"cannot use the tools' parameters: {exc}") from None
    calls = [
        f"{lit(head + name + t.ARGS_HEAD)} {rule} {lit(end)}"
        for head, end in forms
        for (name, _), rule in zip(spec.tools, args, strict=True)
    ]
    conv._add_rule("call", " | ".join(f"( {c} )" for c in calls))
    sep = lit(t.SEPARATOR)
    conv._add_rule("root", f"call ( {sep} call )*" if spec.parallel else "call")
    try:
        grammar = LlamaGrammar.from_string(conv.format_grammar(), verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"cannot use the tools' parameters: {exc}") from None
    if spec.required:
        return grammar
    begins = "|".join(re.escape(b) for b in (t.BEGIN, t.FENCE_BEGIN))
    return LazyGrammar(grammar, [f"[\\s\\S]*?({begins})[\\s\\S]*"])
