"""The Ray actor of an engine replica: one of clearlm's backends, loaded where the actor runs, streaming
the chunks of a prompt given as token ids (see :mod:`clearlm.models.backends.ray_replicas`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from clearlm.errors import ClearlmError
from clearlm.models.backends.base import Chunk, SamplingParams
from clearlm.models.chat import EncodedPrompt


class ReplicaWorker:
    """The Ray actor (``ray.remote(ReplicaWorker)``): one clearlm backend loaded where the actor runs."""

    def __init__(self, model: str, backend: str, options: dict) -> None:
        from clearlm.models.loader import load_backend

        self.error: BaseException | None = None
        self.streams = 0
        try:
            self.backend = load_backend(model, backend, **options)
        except ClearlmError as exc:  # kept for info() to raise: a restart would fail the same way
            self.error = exc

    def info(self) -> dict:
        """The replica's tokenizer, context length and where it runs. Raises the load's error, if any."""
        import ray

        if self.error is not None:
            raise self.error
        return {
            "tokenizer": self.backend.tokenizer,
            "context_length": self.backend.context_length,
            "kind": self.backend.kind,
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
        }

    def stats(self) -> dict:
        """Streams this replica has started since it was (re)started, and its process id."""
        return {"streams": self.streams, "pid": os.getpid()}

    def stream(self, token_ids: list[int], params: SamplingParams) -> Iterator[Chunk]:
        """The backend's stream of a prompt given as token ids; stops at the next chunk once cancelled."""
        import ray

        self.streams += 1
        backend = _FixedPrompt(self.backend, token_ids)
        chunks = type(self.backend).stream(backend, token_ids, params)
        context = ray.get_runtime_context()
        try:
            for chunk in chunks:
                yield chunk
                if context.is_canceled():
                    return
        finally:
            chunks.close()


class _FixedPrompt:
    """The replica's backend whose ``encode`` returns given token ids (a resumed prompt is the original
    prompt's ids plus the answer's so far; rendering it as text and tokenizing again would not give them
    back). Everything else is the backend's own."""

    def __init__(self, backend, token_ids: Sequence[int]) -> None:
        self._backend = backend
        self._ids = list(token_ids)

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def encode(self, prompt) -> EncodedPrompt:
        n = len(self._ids)
        return EncodedPrompt(list(self._ids), "", [0] * n, ["user"] * n, [False] * n, [(0, 0)] * n)
