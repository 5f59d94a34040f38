"""The routes: thin functions that hand a validated body to the logic modules."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from clearlm.errors import ModelNotFoundError
from clearlm.server import knowledge
from clearlm.server import protocol as p
from clearlm.server.auth import authenticate
from clearlm.server.completions import chat_completion, text_completion
from clearlm.server.embeddings import create_embeddings
from clearlm.server.explanations import create_explanation
from clearlm.server.state import ServerState

api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)])
ops = APIRouter()


def state(request: Request) -> ServerState:
    return request.app.state.clearlm


def _cards(s: ServerState) -> list[p.ModelCard]:
    return [
        p.ModelCard(id=s.model_id, created=s.created),
        p.ModelCard(id=s.config.embedding_model, created=s.created),
    ]


@api.get("/models", response_model=p.ModelList)
async def list_models(request: Request):
    return p.ModelList(data=_cards(state(request)))


@api.get("/models/{model_id:path}", response_model=p.ModelCard)
async def get_model(model_id: str, request: Request):
    for card in _cards(state(request)):
        if card.id == model_id:
            return card
    raise ModelNotFoundError(f"the model {model_id!r} does not exist here: GET /v1/models lists the models")


@api.post("/chat/completions")
async def chat_completions(body: p.ChatCompletionRequest, request: Request):
    return await chat_completion(request, body, state(request))


@api.post("/completions")
async def completions(body: p.CompletionRequest, request: Request):
    return await text_completion(request, body, state(request))


@api.post("/embeddings", response_model=p.EmbeddingList)
async def embeddings(body: p.EmbeddingRequest, request: Request):
    return await create_embeddings(request, body, state(request))


@api.post("/explain")
async def explain(body: p.ExplainRequest, request: Request):
    return await create_explanation(request, body, state(request))


@api.get("/kb")
async def list_knowledge_bases(request: Request):
    return await knowledge.listing(state(request))


@api.post("/kb", status_code=201)
async def create_knowledge_base(body: p.KnowledgeBaseCreate, request: Request):
    return await knowledge.create(request, body, state(request))


@api.get("/kb/{name}")
async def get_knowledge_base(name: str, request: Request):
    return await knowledge.retrieve(request, name, state(request))


@api.post("/kb/{name}/files")
async def add_knowledge_base_files(name: str, body: p.KnowledgeBaseFiles, request: Request):
    return await knowledge.add_files(request, name, body, state(request))


@api.delete("/kb/{name}/files/{filename}")
async def remove_knowledge_base_file(name: str, filename: str, request: Request):
    return await knowledge.remove_file(request, name, filename, state(request))


@api.post("/kb/{name}/search")
async def search_knowledge_base(name: str, body: p.KnowledgeBaseSearch, request: Request):
    return await knowledge.search(request, name, body, state(request))


@ops.get("/health")
async def health():
    """Liveness: the process answers."""
    return {"status": "ok"}


@ops.get("/ready")
async def ready(request: Request):
    """Readiness: the model is loaded and the database answers."""
    s = state(request)

    def ping() -> None:
        with s.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await anyio.to_thread.run_sync(ping)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {exc.__class__.__name__}"}, status_code=503
        )
    return {"status": "ready", "model": s.model_id, "backend": s.backend.kind}


@ops.get("/metrics")
async def metrics(request: Request):
    """Prometheus text format."""
    s = state(request)
    s.metrics.queue_depth.set(s.gate.waiting)
    s.metrics.active.set(s.gate.active)
    return Response(s.metrics.render(), media_type=CONTENT_TYPE_LATEST)
