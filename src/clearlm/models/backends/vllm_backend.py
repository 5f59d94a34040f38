"""The vLLM backend: generation on a vLLM server (one clearlm starts, see ``vllm_engine``, or one already
running at ``engine_url``) through its OpenAI-compatible ``/v1/completions``, with clearlm's pipeline in
front. Prompts are rendered and tokenized here (``encode_prompt``: the same per-message token tags and
special-token safety as the other backends) and sent as token ids, never as text vLLM would re-tokenize;
token ids and log-probabilities come back as ids (``return_tokens_as_token_ids``), and text is decoded here
with the same stop-string handling (``TextStream``) as the other backends.

Requests are not serialized: the server's admission (``--max-active``) decides how many run at once, and
vLLM batches them (continuous batching). ``lock`` is only the explainer's.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.models.backends.base import Chunk, SamplingParams, TextStream, TokenLogprob, budget
from clearlm.models.chat import EncodedPrompt, Prompt, encode_prompt, end_of_turn_ids

DEFAULT_CONTEXT = 8192  # tokens, when the checkpoint allows more (bounds the KV cache)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TOKEN_ID_PREFIX = "token_id:"


class VllmError(RuntimeError):
    """A generation vLLM could not finish (it failed, or cannot be reached): a fault of the engine, not of
    the request, so the server answers 500 and other generations go on."""


class VllmBackend:
    """A model served by vLLM. Use :meth:`start` (clearlm runs vLLM) or :meth:`connect` (it already runs).

    Attributes: tokenizer (transformers, the model's own), name, context_length (tokens, vLLM's
    ``max_model_len``), url (the vLLM server's base URL), served_name (the model name vLLM answers to),
    engine (the :class:`VllmServer` clearlm started, or None).
    """

    kind = "vllm"

    def __init__(self, url: str, tokenizer, name: str, *, served_name: str, context_length: int, engine=None):
        self.url = url.rstrip("/")
        self.tokenizer = tokenizer
        self.name = name
        self.served_name = served_name
        self.context_length = context_length
        self.engine = engine
        self._view = False
        self.eos = _eos_ids(tokenizer)
        self.vocab_size = len(tokenizer)
        self.lock = threading.Lock()
        self.client = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(600, connect=10),
            limits=httpx.Limits(max_connections=256),
        )

    @classmethod
    def start(
        cls, checkpoint: Path, tokenizer, name: str, *, max_model_len: int | None = None, **engine_args
    ):
        """Start vLLM over ``checkpoint`` (a transformers folder) and connect to it. ``max_model_len``
        default: the checkpoint's context, at most 8192. ``engine_args`` go to :class:`VllmServer`.

        Raises:
            BackendUnavailableError: vLLM is not installed or does not start.
        """
        from clearlm.models.backends.vllm_engine import VllmServer

        context = max_model_len or min(_checkpoint_context(checkpoint), DEFAULT_CONTEXT)
        engine = VllmServer(checkpoint, name, max_model_len=context, **engine_args)
        return cls(engine.url, tokenizer, name, served_name=name, context_length=context, engine=engine)

    @classmethod
    def connect(cls, url: str, tokenizer, name: str):
        """Use the vLLM server at ``url`` (its first model; ``tokenizer`` must be that model's).

        Raises:
            BackendUnavailableError: nothing answers at ``url``, or it serves no model.
        """
        url = url.rstrip("/").removesuffix("/v1")
        try:
            r = httpx.get(url + "/v1/models", timeout=30)
            r.raise_for_status()
            models = r.json()["data"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise BackendUnavailableError(
                f"no vLLM server answers at {url}: {exc}; check --engine-url"
            ) from None
        if not models:
            raise BackendUnavailableError(f"the vLLM server at {url} serves no model")
        info = models[0]
        context = int(info.get("max_model_len") or DEFAULT_CONTEXT)
        return cls(url, tokenizer, name, served_name=info["id"], context_length=context)

    def for_model(self, served_name: str, name: str) -> VllmBackend:
        """This backend for another model the same vLLM server serves (a LoRA adapter started with
        ``lora_modules``): requests name ``served_name``; clearlm calls it ``name``. It shares this
        backend's HTTP client, tokenizer and context; closing it closes nothing."""
        view = copy.copy(self)
        view.served_name, view.name, view.engine, view._view = served_name, name, None, True
        return view

    def served_models(self) -> list[str]:
        """The model names the vLLM server answers to (``/v1/models``: the base, then its LoRA adapters).

        Raises:
            BackendUnavailableError: the server does not answer.
        """
        try:
            r = self.client.get("/v1/models")
            r.raise_for_status()
            return [m["id"] for m in r.json()["data"]]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise BackendUnavailableError(
                f"the vLLM server at {self.url} did not list its models: {exc}"
            ) from None

    def close(self) -> None:
        """Close the HTTP client, and stop vLLM if clearlm started it (a :meth:`for_model` view: nothing)."""
        if self._view:
            return
        self.client.close()
        if self.engine is not None:
            self.engine.close()

    def encode(self, prompt: Prompt) -> EncodedPrompt:
        return encode_prompt(self.tokenizer, prompt)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[Chunk]:
        """Stream a generation from vLLM. Closing the iterator early closes the HTTP response, which makes
        vLLM abort the request.

        Raises:
            InvalidInputError: a prompt that fills the context, or a request vLLM refuses (400: e.g. a JSON
            schema it cannot compile); VllmError: vLLM cannot be reached or fails.
        """
        encoded = self.encode(prompt)
        body = self._request(
            list(encoded.token_ids), params, budget(len(encoded.token_ids), params, self.context_length)
        )
        text = TextStream(self.decode, params.stop)
        try:
            with self.client.stream("POST", "/v1/completions", json=body) as response:
                if response.status_code != 200:
                    _raise_for(response)
                for data in _events(response):
                    choice = data["choices"][0] if data.get("choices") else None
                    if choice is None:
                        continue
                    ids, lps = _ids_and_logprobs(choice, params.logprobs)
                    reason = choice.get("finish_reason")
                    keep = [k for k, i in enumerate(ids) if i not in self.eos]
                    ids = [ids[k] for k in keep]
                    lps = [lps[k] for k in keep] if lps else []
                    piece = text.push(ids)
                    if text.stopped:
                        yield Chunk(piece, tuple(ids), "stop", tuple(lps))
                        return
                    if reason is not None:
                        yield Chunk(
                            piece + text.finish(),
                            tuple(ids),
                            "length" if reason == "length" else "stop",
                            tuple(lps),
                        )
                        return
                    if piece or ids:
                        yield Chunk(piece, tuple(ids), logprobs=tuple(lps))
        except httpx.HTTPError as exc:
            raise VllmError(f"the vLLM server at {self.url} failed: {exc!r}") from None
        yield Chunk(text.finish(), (), "length")  # the stream ended without a finish reason

    def _request(self, prompt_ids: list[int], params: SamplingParams, max_new: int) -> dict:
        body: dict = {
            "model": self.served_name,
            "prompt": prompt_ids,
            "max_tokens": max_new,
            "stream": True,
            "temperature": 0.0 if params.greedy else params.temperature,
            "stop_token_ids": sorted(self.eos),
            "skip_special_tokens": True,
            "return_token_ids": True,
        }
        if params.logprobs is not None:
            body["logprobs"] = params.logprobs
            body["return_tokens_as_token_ids"] = True
        if not params.greedy:
            body["top_p"] = params.top_p
            if params.top_k:
                body["top_k"] = params.top_k
            if params.seed is not None:  # vLLM takes a signed 64-bit seed; clearlm's range is wider
                body["seed"] = params.seed - 2**64 if params.seed > INT64_MAX else params.seed
        # the same xgrammar structural tags the torch backend compiles (vLLM 0.32's ``structured_outputs``)
        if params.json_output is not None:
            from clearlm.models.tools import json_tag

            body["structured_outputs"] = {"structural_tag": json.dumps(json_tag(params.json_output))}
        if params.tool_calls is not None:
            from clearlm.models.tools import structural_tag

            body["structured_outputs"] = {"structural_tag": json.dumps(structural_tag(params.tool_calls))}
        return body


def _events(response: httpx.Response) -> Iterator[dict]:
    """The JSON payloads of a server-sent event stream, up to ``[DONE]``."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        data = json.loads(payload)
        if "error" in data and not data.get("choices"):
            raise VllmError(f"vLLM failed during generation: {data['error']}")
        yield data


def _token_id(token: str) -> int:
    if not token.startswith(TOKEN_ID_PREFIX):
        raise VllmError(f"vLLM returned token {token!r} without its id")
    return int(token[len(TOKEN_ID_PREFIX) :])


def _ids_and_logprobs(choice: dict, top: int | None) -> tuple[list[int], list[TokenLogprob]]:
    """A completions stream choice's token ids, and their :class:`TokenLogprob` when ``top`` is not None."""
    ids = list(choice.get("token_ids") or ())
    lp = choice.get("logprobs") or {}
    if top is None or not lp.get("tokens"):
        return ids, []
    if [_token_id(t) for t in lp["tokens"]] != ids:
        raise VllmError("vLLM's token ids and log-probability tokens disagree")
    out = []
    for i, value, alts in zip(
        ids, lp["token_logprobs"], lp.get("top_logprobs") or [{}] * len(ids), strict=True
    ):
        ranked = sorted(((_token_id(t), v) for t, v in (alts or {}).items()), key=lambda a: -a[1])[:top]
        out.append(TokenLogprob(i, float(value), tuple(ranked)))
    return ids, out


def _raise_for(response: httpx.Response) -> None:
    response.read()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    if response.status_code == 400:
        raise InvalidInputError(f"vLLM refused the request: {message}")
    raise VllmError(f"the vLLM server answered {response.status_code}: {message}")


def _eos_ids(tokenizer) -> set[int]:
    ids = set(end_of_turn_ids(tokenizer))
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _checkpoint_context(checkpoint: Path) -> int:
    try:
        config = json.loads((Path(checkpoint) / "config.json").read_text())
    except (OSError, ValueError):
        return DEFAULT_CONTEXT
    return int(config.get("max_position_embeddings") or DEFAULT_CONTEXT)
