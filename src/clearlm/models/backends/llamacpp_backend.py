"""The llama.cpp backend (llama-cpp-python): fast CPU decoding of a GGUF file. An optional extra."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.models.backends.base import Chunk, JsonOutput, SamplingParams, TextStream, budget, token_logprob
from clearlm.models.chat import EncodedPrompt, Prompt, encode_prompt, end_of_turn_ids


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
    """A GGUF model run by llama.cpp. Prompts are rendered with the transformers tokenizer's chat template
    (``tokenizer``), so both backends see the same prompt text; llama.cpp tokenizes and decodes.

    Args:
        gguf: path of the .gguf file. tokenizer: a transformers tokenizer for the chat template.
        n_ctx: context window in tokens (default 8192, to bound the KV cache's memory).
    """

    kind = "llamacpp"

    def __init__(self, gguf: Path, tokenizer, name: str, *, n_ctx: int | None = None, n_threads=None) -> None:
        Llama = import_llama()
        self.llm = Llama(
            model_path=str(gguf), n_ctx=n_ctx or 8192, n_threads=n_threads or os.cpu_count(), verbose=False
        )
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = self.llm.n_ctx()
        self.lock = threading.Lock()

    def encode(self, prompt: Prompt) -> EncodedPrompt:
        return encode_prompt(self.tokenizer, prompt)

    def decode(self, ids) -> str:
        return self.llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[Chunk]:
        encoded = self.encode(prompt)
        max_new = budget(len(encoded.token_ids), params, self.context_length)
        text = TextStream(self.decode, params.stop)
        eos = {self.llm.token_eos(), *end_of_turn_ids(self.tokenizer)}
        grammar = _grammar(params.json_output) if params.json_output else None
        with self.lock:
            if params.seed is not None:
                self.llm.set_seed(params.seed)
            for n, token in enumerate(
                self.llm.generate(
                    encoded.token_ids,
                    temp=params.temperature,
                    top_p=params.top_p,
                    top_k=params.top_k if not params.greedy else 1,
                    reset=True,
                    grammar=grammar,
                ),
                start=1,
            ):
                if token in eos:
                    yield Chunk(text.finish(), (), "stop")
                    return
                lp = (self._logprob(token, params.logprobs),) if params.logprobs is not None else ()
                piece = text.push([token])
                if text.stopped:
                    yield Chunk(piece, (token,), "stop", lp)
                    return
                yield Chunk(piece, (token,), logprobs=lp)
                if n >= max_new:
                    break
            yield Chunk(text.finish(), (), "length")

    def _logprob(self, token: int, top: int):
        """The log-probability of the token just sampled, from the logits llama.cpp still holds for it."""
        import llama_cpp
        import numpy as np

        row = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return token_logprob(np.ctypeslib.as_array(row, shape=(self.llm.n_vocab(),)), token, top)


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
