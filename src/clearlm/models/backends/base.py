"""The protocol every backend follows, and the request/response types of generation."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from clearlm.errors import InvalidInputError
from clearlm.models.chat import EncodedPrompt, Prompt

MAX_NEW_TOKENS_LIMIT = 32_768
MAX_TOP_LOGPROBS = 20


@dataclass(frozen=True, slots=True)
class JsonOutput:
    """Constrain the output to JSON: any JSON object (``schema`` None, OpenAI's ``json_object``) or one
    valid against ``schema`` (a JSON Schema, as JSON text). Enforced while decoding (xgrammar for torch, a
    GBNF grammar for llama.cpp, both with bounded runs of whitespace), so the text parses whenever
    generation ends by itself rather than at the token limit."""

    schema: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallOutput:
    """Constrain the output to tool calls, each written as the Qwen/Hermes chat templates expect it::

        <tool_call>\n{"name": "<name>", "arguments": <arguments>}\n</tool_call>

    with ``<arguments>`` valid against that tool's parameters schema. Enforced while decoding, as
    :mod:`clearlm.models.tools` builds it for each engine (an xgrammar structural tag for torch and vLLM,
    a lazy GBNF grammar for llama.cpp).

    Fields: tools: ``(name, parameters)`` pairs, the parameters a JSON Schema as JSON text; required:
    True: the output is tool calls only, from its first token (tool_choice "required" or a named
    function); False: free text, and once the model writes ``<tool_call>`` the call that follows is
    constrained (tool_choice "auto"); parallel: more than one call may follow (each on its own line).
    """

    tools: tuple[tuple[str, str], ...]
    required: bool = False
    parallel: bool = True


MIN_TEMPERATURE = 1e-5  # below it, decoding is greedy (logits / temperature would overflow float32)
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.manual_seed accepts


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to decode. ``temperature == 0`` (or below ``MIN_TEMPERATURE``) means greedy decoding (then
    top_p, top_k and seed are unused).

    Fields: max_new_tokens (tokens, >= 1); temperature (>= 0); top_p in (0, 1]; top_k (0 = off);
    seed (None = nondeterministic); stop: strings (or one string) that end generation, not included in
    the output; logprobs: None, or how many likeliest alternatives (0 to 20) to report with each
    generated token's log-probability; json_output: constrain the output to JSON; tool_calls: constrain
    it to tool calls (see :class:`ToolCallOutput`; not with json_output).
    """

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] | str = ()
    logprobs: int | None = None
    json_output: JsonOutput | None = None
    tool_calls: ToolCallOutput | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):  # one stop string, as the OpenAI API also accepts
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise InvalidInputError(
                f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}, got {self.max_new_tokens}"
            )
        if self.temperature < 0:
            raise InvalidInputError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.seed is not None and not SEED_MIN <= self.seed <= SEED_MAX:
            raise InvalidInputError(
                f"seed must be a 64-bit integer ({SEED_MIN} to {SEED_MAX}), got {self.seed}"
            )
        if not 0 < self.top_p <= 1:
            raise InvalidInputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise InvalidInputError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if any(not s for s in self.stop):
            raise InvalidInputError("stop strings must not be empty")
        if self.json_output is not None and self.tool_calls is not None:
            raise InvalidInputError(
                "the output is either JSON (response_format) or tool calls (tools), not both"
            )
        if self.logprobs is not None and not 0 <= self.logprobs <= MAX_TOP_LOGPROBS:
            raise InvalidInputError(
                f"top logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {self.logprobs}"
            )

    @property
    def greedy(self) -> bool:
        """Temperature 0, or one so small that dividing the logits by it would overflow them."""
        return self.temperature < MIN_TEMPERATURE


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token's natural-log probability under the model (before temperature and top-p), and
    the ``top`` likeliest tokens at that step as (id, logprob), likeliest first."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


def token_logprob(logits: np.ndarray, token_id: int, top: int) -> TokenLogprob:
    """The :class:`TokenLogprob` of ``token_id`` from one step's raw logits (float[vocab])."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max()
    logprobs = shifted - np.log(np.exp(shifted).sum())
    best = np.argpartition(-logprobs, top)[:top] if top else np.empty(0, dtype=int)
    best = best[np.argsort(-logprobs[best], kind="stable")]
    return TokenLogprob(
        int(token_id), float(logprobs[token_id]), tuple((int(i), float(logprobs[i])) for i in best)
    )


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of streamed output: new text, the token ids that produced it (and their log-probabilities
    when asked for), and on the last chunk why generation ended ("stop": end of sequence or a stop
    string; "length": max_new_tokens reached)."""

    text: str
    token_ids: tuple[int, ...] = ()
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]  # generated ids, without a final end-of-sequence token
    finish_reason: str
    prompt_tokens: int
    logprobs: tuple[TokenLogprob, ...] = ()

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


class Backend(Protocol):
    """What every backend offers: encode a prompt, decode ids, stream a generation, report its context
    length, and a lock held while the model computes (generation or explanation)."""

    kind: str  # "torch" or "llamacpp"
    name: str  # the model's name (catalog name, path or hub id)
    context_length: int  # tokens
    lock: threading.Lock

    def encode(self, prompt: Prompt) -> EncodedPrompt: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[Chunk]: ...


def generate(backend: Backend, prompt: Prompt, params: SamplingParams) -> Completion:
    """Run a generation to the end and collect it (any backend)."""
    texts, ids, logprobs, reason = [], [], [], "length"
    prompt_tokens = len(backend.encode(prompt).token_ids)
    for chunk in backend.stream(prompt, params):
        texts.append(chunk.text)
        ids.extend(chunk.token_ids)
        logprobs.extend(chunk.logprobs)
        reason = chunk.finish_reason or reason
    return Completion("".join(texts), tuple(ids), reason, prompt_tokens, tuple(logprobs))


def budget(prompt_tokens: int, params: SamplingParams, context_length: int) -> int:
    """How many new tokens fit: ``max_new_tokens`` capped by what is left of the context.

    Raises:
        InvalidInputError: the prompt alone fills the context.
    """
    left = context_length - prompt_tokens
    if left <= 0:
        raise InvalidInputError(
            f"the prompt is {prompt_tokens:,} tokens but the model's context holds {context_length:,}: "
            "shorten the prompt"
        )
    return min(params.max_new_tokens, left)


class TextStream:
    """Turns a growing list of token ids into released text: holds back an incomplete UTF-8 sequence and
    any tail that could be the start of a stop string, and cuts the text at the first stop string.

    ``decode`` maps token ids to text (the tokenizer's decode without special tokens).
    """

    def __init__(self, decode, stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self._stop = tuple(stop)
        self._ids: list[int] = []
        self._released = 0
        self.stopped = False

    def push(self, ids: Sequence[int]) -> str:
        """Add ids; return the text that can now be shown."""
        if self.stopped:
            return ""
        self._ids.extend(ids)
        text = self._decode(self._ids)
        hit = min(
            (i for s in self._stop if (i := text.find(s, max(0, self._released - len(s)))) >= 0), default=-1
        )
        if hit >= 0:
            self.stopped = True
            return self._release(text, hit)
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for the rest
            return ""
        hold = max((k for s in self._stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        return self._release(text, len(text) - hold)

    def finish(self) -> str:
        """Release what is held back (no stop string followed it)."""
        if self.stopped:
            return ""
        text = self._decode(self._ids)
        return self._release(text, len(text))

    def _release(self, text: str, end: int) -> str:
        out = text[self._released : end] if end > self._released else ""
        self._released = max(self._released, end)
        return out
