"""The logic of /v1/embeddings: batched input, float or base64 (little-endian float32) vectors. The
request's audit record keeps the input texts as the policy stores text (PII-redacted with
``store_redacted``); vectors are not text, so the output policy has nothing to redact in them."""

from __future__ import annotations

import base64

import anyio
from fastapi import Request

from clearlm.errors import InvalidInputError, ModelNotFoundError
from clearlm.server import protocol as p
from clearlm.server.serving import policy_of
from clearlm.server.state import ServerState


async def create_embeddings(
    request: Request, body: p.EmbeddingRequest, state: ServerState
) -> p.EmbeddingList:
    from clearlm.models.embeddings import embedding_model_name

    name = state.config.embedding_model
    # the catalog name in any case, or the hub id clients send (sentence-transformers/all-MiniLM-L6-v2)
    asked = embedding_model_name(body.model)
    if body.model != name and (asked is None or asked != embedding_model_name(name)):
        raise ModelNotFoundError(f"the embedding model {body.model!r} is not served here: use {name!r}")
    texts = [body.input] if isinstance(body.input, str) else body.input
    record = request.state.audit_record
    record.model = name
    record.parameters = {"encoding_format": body.encoding_format, "dimensions": body.dimensions}
    policy = await anyio.to_thread.run_sync(policy_of, request, state)
    record.prompt = await anyio.to_thread.run_sync(stored_texts, policy, texts)
    embedder = await anyio.to_thread.run_sync(state.embedder)
    if body.dimensions not in (None, embedder.dimensions):
        raise InvalidInputError(
            f"{name} gives {embedder.dimensions}-dimensional vectors; omit dimensions or set it to that"
        )
    vectors = await anyio.to_thread.run_sync(embedder.encode, texts)
    tokens = await anyio.to_thread.run_sync(embedder.count_tokens, texts)
    record.prompt_tokens = tokens
    if body.encoding_format == "base64":
        data = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    else:
        data = [v.tolist() for v in vectors]
    return p.EmbeddingList(
        data=[p.Embedding(index=i, embedding=d) for i, d in enumerate(data)],
        model=name,
        usage=p.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )


def stored_texts(policy, texts: list[str]) -> list[str]:
    """The texts as the audit log may keep them (each through ``Policy.stored``)."""
    return list(texts) if policy is None else [policy.stored(t) for t in texts]
