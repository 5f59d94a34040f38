"""The transformers backend: generation on CPU or GPU, and the model that explanations differentiate."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator

import torch

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import (
    Chunk,
    JsonOutput,
    SamplingParams,
    TextStream,
    ToolCallOutput,
    budget,
    token_logprob,
)
from clearlm.models.chat import EncodedPrompt, Prompt, encode_prompt, end_of_turn_ids


class TorchBackend:
    """A transformers causal LM with its tokenizer.

    Attributes: model (``PreTrainedModel``, eval mode), tokenizer (fast tokenizer), name, context_length
    (tokens), eos_token_ids (ids that end a generation).
    """

    kind = "torch"

    def __init__(self, model, tokenizer, name: str) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = int(getattr(model.config, "max_position_embeddings", None) or 2048)
        self.eos_token_ids = _eos_ids(model, tokenizer)
        self.lock = threading.Lock()
        self._grammar_compiler = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    def response_logprobs(self, prompts, response, **options):
        """log p(response_t | prompt, response_<t) for every prompt, teacher-forced: float64[n, T] natural-log
        probabilities (``clearlm.models.backends.torch_scoring.response_logprobs``, which takes ``options``)."""
        from clearlm.models.backends.torch_scoring import response_logprobs

        return response_logprobs(self.model, prompts, response, **options)

    def encode(self, prompt: Prompt) -> EncodedPrompt:
        return encode_prompt(self.tokenizer, prompt)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[Chunk]:
        """Stream a generation (transformers ``generate`` in a worker thread; the consumer gets chunks).

        Closing the iterator early stops the generation at the next token.

        Raises:
            InvalidInputError: empty prompt, or a prompt that fills the context.
        """
        encoded = self.encode(prompt)
        max_new = budget(len(encoded.token_ids), params, self.context_length)
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        ids_q: queue.Queue = queue.Queue()
        cancel = threading.Event()
        text = TextStream(self.decode, params.stop)

        last_logits: list[torch.Tensor] = []  # the latest forward's last-position logits (for logprobs)

        class _Streamer:
            first = True

            def put(self, value):  # the prompt first, then one tensor per new token
                if self.first:
                    self.first = False
                    return
                ids = value.reshape(-1).tolist()
                logprobs = (
                    [token_logprob(last_logits[-1].numpy(), i, params.logprobs) for i in ids]
                    if last_logits
                    else []
                )
                ids_q.put((ids, logprobs))

            def end(self):
                ids_q.put(None)

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool)

        config = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=not params.greedy,
            temperature=params.temperature if not params.greedy else None,
            top_p=params.top_p if not params.greedy else None,
            top_k=params.top_k if not params.greedy and params.top_k else None,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else min(self.eos_token_ids),
        )
        input_ids = torch.tensor([encoded.token_ids], device=self.device)
        processors = [self._json_processor(params.json_output)] if params.json_output else []
        if params.tool_calls is not None:
            processors.append(self._tool_processor(params.tool_calls))
        errors: list[BaseException] = []

        def keep_logits(module, args, output):
            last_logits[:] = [output.logits[0, -1].float().cpu()]

        def work():
            hook = None
            try:
                with self.lock, torch.inference_mode():
                    if params.logprobs is not None:
                        hook = self.model.register_forward_hook(keep_logits)
                    if params.seed is not None and not params.greedy:
                        torch.manual_seed(params.seed)
                    self.model.generate(
                        input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        generation_config=config,
                        streamer=_Streamer(),
                        logits_processor=processors,
                        stopping_criteria=StoppingCriteriaList([_Cancel()]),
                    )
            except BaseException as exc:  # re-raised in the consumer
                errors.append(exc)
                ids_q.put(None)
            finally:
                if hook is not None:
                    hook.remove()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        n_new, reason = 0, "length"
        try:
            while (item := ids_q.get()) is not None:
                ids, logprobs = item
                n_new += len(ids)
                if any(i in self.eos_token_ids for i in ids):
                    reason = "stop"
                    logprobs = [lp for lp in logprobs if lp.token_id not in self.eos_token_ids]
                    ids = [i for i in ids if i not in self.eos_token_ids]
                piece = text.push(ids)
                if text.stopped:
                    cancel.set()
                    reason = "stop"
                    yield Chunk(piece, tuple(ids), reason, tuple(logprobs))
                    return
                if piece or ids:
                    yield Chunk(piece, tuple(ids), logprobs=tuple(logprobs))
            if errors:
                raise errors[0]
            yield Chunk(text.finish(), (), reason)
        finally:
            cancel.set()
            worker.join()

    def _compiler(self):
        import xgrammar as xgr

        if self._grammar_compiler is None:
            info = xgr.TokenizerInfo.from_huggingface(
                self.tokenizer,
                vocab_size=self.model.config.vocab_size,
                stop_token_ids=sorted(self.eos_token_ids),
            )
            self._grammar_compiler = xgr.GrammarCompiler(info)
        return self._grammar_compiler

    def _tool_processor(self, spec: ToolCallOutput):
        """A fresh xgrammar logits processor for tool calls (the structural tag of ``clearlm.models.tools``).

        Raises:
            InvalidInputError: a tool's parameters schema xgrammar cannot compile.
        """
        from xgrammar.contrib.hf import LogitsProcessor

        from clearlm.models.tools import structural_tag

        try:
            return LogitsProcessor(self._compiler().compile_structural_tag(json.dumps(structural_tag(spec))))
        except (RuntimeError, ValueError) as exc:
            raise InvalidInputError(f"cannot use the tools' parameters: {str(exc).splitlines()[0]}") from None

    def _json_processor(self, spec: JsonOutput):
        """A fresh xgrammar logits processor (one per generate call) that only lets JSON through
        (``tools.json_tag``: valid against the schema, or any JSON object; bounded runs of whitespace).

        Raises:
            InvalidInputError: the schema is not valid JSON Schema that xgrammar can compile.
        """
        from xgrammar.contrib.hf import LogitsProcessor

        from clearlm.models.tools import json_tag

        try:
            return LogitsProcessor(self._compiler().compile_structural_tag(json.dumps(json_tag(spec))))
        except (RuntimeError, ValueError) as exc:
            raise InvalidInputError(f"cannot use the JSON schema: {str(exc).splitlines()[0]}") from None


def _eos_ids(model, tokenizer) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if value is not None:
            ids.update(value if isinstance(value, list | tuple) else [value])
    return ids | end_of_turn_ids(tokenizer)
