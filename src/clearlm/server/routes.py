"""The routes: thin functions that hand a validated body to the logic modules.

Every /v1 route authenticates (when keys exist) and takes a body of at most ``MAX_BODY_BYTES`` (413 past
it). ``/v1/keys`` and ``/v1/audit`` need an admin key (403 for a user key) and see the caller's tenant only.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, File, HTTPException, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from clearlm.errors import ModelNotFoundError
from clearlm.server import admin, knowledge, knowledge_browse, knowledge_upload
from clearlm.server import protocol as p
from clearlm.server.auth import authenticate, require_admin
from clearlm.server.completions import chat_completion, text_completion
from clearlm.server.embeddings import create_embeddings
from clearlm.server.errors import PayloadTooLargeError
from clearlm.server.explanations import create_explanation
from clearlm.server.model_pull import pull_model
from clearlm.server.state import ServerState


def _error(description: str) -> dict:
    return {"model": p.ErrorResponse, "description": description}


ERRORS = {
    400: _error("Bad input (a value past its bound, a malformed body): an OpenAI-style error body."),
    401: _error("A key is needed (once any key exists), or the key is unknown or revoked."),
    404: _error("Not found, or another tenant's."),
    413: _error(f"The request body is larger than {p.MAX_BODY_BYTES:,} bytes, or a file is too large."),
    429: _error("Every generation slot and queue place is taken: retry after Retry-After seconds."),
}
ADMIN = {"dependencies": [Depends(require_admin)], "responses": {403: _error("The key is not an admin key.")}}


class BoundedBody(APIRoute):
    """A route that takes at most ``MAX_BODY_BYTES`` of body: a larger Content-Length is refused before a
    byte is read, and a body sent without one (chunked) is counted as it arrives; either way 413 with an
    OpenAI-style body. (FastAPI's own ``max_body_size`` answers a large Content-Length in plain text.)"""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def bounded(request: Request):
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > p.MAX_BODY_BYTES:
                raise PayloadTooLargeError(_too_large())
            received = 0
            receive = request.receive

            async def counted():
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > p.MAX_BODY_BYTES:  # FastAPI passes an HTTPException through its body parsing
                    raise HTTPException(413, _too_large())
                return message

            return await handler(Request(request.scope, counted, request._send))

        return bounded


def _too_large() -> str:
    return f"the request body is larger than {p.MAX_BODY_BYTES:,} bytes: split it (fewer files per upload)"


def api_router() -> APIRouter:
    """A router of /v1 routes: authenticated, bounded bodies, the shared error responses (each feature's
    module makes its own: ``server.conversations``, ``server.review``, ``server.governance``)."""
    return APIRouter(
        prefix="/v1", dependencies=[Depends(authenticate)], responses=ERRORS, route_class=BoundedBody
    )


api = api_router()
ops = APIRouter()

KbName = Annotated[
    str,
    Path(
        pattern=p.KB_NAME_PATTERN,
        max_length=64,
        description="The knowledge base's name (of the caller's tenant): " + p.KB_NAME_RULE + ".",
    ),
]
FileName = Annotated[
    str,
    Path(pattern=p.FILENAME_PATTERN, max_length=128, description="A file's name: " + p.FILENAME_RULE + "."),
]
KeyId = Annotated[str, Path(max_length=p.MAX_ID_CHARS, description="The key's id (key_...).")]


def state(request: Request) -> ServerState:
    return request.app.state.clearlm


def _cards(s: ServerState) -> list[p.ModelCard]:
    return [
        *(p.ModelCard(id=m, created=s.created) for m in getattr(s.backend, "served", [s.model_id])),
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


@api.post(
    "/models/{name}/pull",
    responses={**ADMIN["responses"], 409: _error("A pull of this model is under way.")},
    dependencies=ADMIN["dependencies"],
)
async def pull_catalog_model(
    name: Annotated[str, Path(max_length=64, description="A catalog model's name (clearlm models list).")],
    request: Request,
):
    """Pull a catalog model as ``clearlm models pull`` does; its progress as server-sent events
    (``server.model_pull``). An installed model answers at once that it is installed."""
    return await pull_model(request, name, state(request))


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
    return await knowledge.listing(request, state(request))


@api.post("/kb", status_code=201, responses={409: _error("The tenant has a knowledge base of that name.")})
async def create_knowledge_base(body: p.KnowledgeBaseCreate, request: Request):
    return await knowledge.create(request, body, state(request))


@api.get("/kb/{name}")
async def get_knowledge_base(name: KbName, request: Request):
    return await knowledge.retrieve(request, name, state(request))


@api.post("/kb/{name}/files")
async def add_knowledge_base_files(name: KbName, body: p.KnowledgeBaseFiles, request: Request):
    return await knowledge.add_files(request, name, body, state(request))


@api.post("/kb/{name}/upload")
async def upload_knowledge_base_files(
    name: KbName,
    request: Request,
    files: Annotated[
        list[UploadFile],
        File(
            description=f"1 to {p.MAX_UPLOAD_FILES} files (multipart/form-data, each part named 'files'), "
            f"each at most {p.MAX_FILE_BYTES // 2**20} MiB; the body at most {p.MAX_BODY_BYTES // 2**20} MiB."
        ),
    ],
):
    """Upload files as a browser does; each is added (with its chunk count) or skipped with the reason
    (bad_name, unsupported_type, empty, too_large, duplicate, unreadable), and the rest go ahead."""
    return await knowledge_upload.upload(request, name, files, state(request))


@api.get("/kb/{name}/files")
async def list_knowledge_base_files(
    name: KbName,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Files to skip.")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=knowledge_browse.MAX_FILES_PAGE, description="Files per page.")
    ] = 100,
):
    """The knowledge base's files by path: name, size, chunks, when added."""
    return await knowledge_browse.files(request, name, offset, limit, state(request))


@api.get("/kb/{name}/chunks")
async def list_knowledge_base_chunks(
    name: KbName,
    request: Request,
    file: Annotated[
        str | None,
        Query(max_length=4096, description="One file's chunks (its filename as GET .../files names it)."),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Chunks to skip.")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=knowledge_browse.MAX_CHUNKS_PAGE, description="Chunks per page.")
    ] = 20,
):
    """A page of chunks in reading order (files by path, then each file's chunks), or of one file's."""
    return await knowledge_browse.chunks(request, name, file, offset, limit, state(request))


@api.get("/kb/{name}/chunks/{chunk_id}", responses={404: _error("No chunk of that id (or knowledge base).")})
async def get_knowledge_base_chunk(
    name: KbName,
    chunk_id: Annotated[
        str, Path(pattern=knowledge_browse.CHUNK_ID_PATTERN, description="A chunk's id (20 hex digits).")
    ],
    request: Request,
):
    return await knowledge_browse.chunk(request, name, chunk_id, state(request))


@api.delete("/kb/{name}/files/{filename}")
async def remove_knowledge_base_file(name: KbName, filename: FileName, request: Request):
    return await knowledge.remove_file(request, name, filename, state(request))


@api.post("/kb/{name}/search")
async def search_knowledge_base(name: KbName, body: p.KnowledgeBaseSearch, request: Request):
    return await knowledge.search(request, name, body, state(request))


@api.get("/keys", response_model=p.KeyList, **ADMIN)
async def list_keys(request: Request):
    """The keys of the caller's tenant (never their secrets)."""
    return await admin.list_keys(request, state(request))


@api.post("/keys", response_model=p.CreatedKey, status_code=201, **ADMIN)
async def create_key(body: p.KeyCreate, request: Request):
    """A new key of the caller's tenant, under the caller's key's policy; its secret is shown once."""
    return await admin.create_key(request, body, state(request))


@api.get("/keys/{key_id}", response_model=p.KeyInfo, **ADMIN)
async def get_key(key_id: KeyId, request: Request):
    return await admin.get_key(request, key_id, state(request))


@api.delete("/keys/{key_id}", response_model=p.KeyInfo, **ADMIN)
async def revoke_key(key_id: KeyId, request: Request):
    """Revoke a key of the caller's tenant (its requests get 401 from then on)."""
    return await admin.revoke_key(request, key_id, state(request))


@api.get("/audit", response_model=p.AuditPage, **ADMIN)
async def audit_log(
    request: Request,
    filters: Annotated[admin.AuditFilters, Depends(admin.audit_filters)],
    limit: Annotated[
        int, Query(ge=1, le=p.MAX_AUDIT_PAGE, description=f"Records per page, 1 to {p.MAX_AUDIT_PAGE}.")
    ] = 100,
):
    """The caller's tenant's audit records, oldest first (``order=desc``: newest first); a page:
    ``has_more`` says whether more match, and the last record's ``chain_seq`` is the next page's
    ``after`` (``before`` when newest first)."""
    return await admin.audit_page(request, state(request), filters, limit)


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
