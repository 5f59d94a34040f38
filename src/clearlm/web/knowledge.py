"""The knowledge pages: ``/knowledge`` lists and creates knowledge bases; ``/knowledge/{name}`` uploads
files (drag and drop or a file picker, per-file progress and results), lists and removes files, browses
chunks and searches (mode, k, MMR). The pages read and write through ``/v1/kb`` (``static/knowledge.js``).
"""

from __future__ import annotations

import re
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request

from clearlm.knowledge.documents import KINDS
from clearlm.knowledge.errors import KnowledgeBaseNotFoundError
from clearlm.server import protocol as p
from clearlm.server.knowledge import info, open_kb
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
User = Annotated[SignIn, Depends(needs("user"))]
_NAME = re.compile(p.KB_NAME_PATTERN)


@router.get("/knowledge")
async def knowledge_bases(request: Request, signin: User):
    return render(
        request,
        "knowledge.html",
        signin,
        name_rule=p.KB_NAME_RULE,
        limits=(p.MIN_CHUNK_TOKENS, p.MAX_CHUNK_TOKENS, p.MAX_OVERLAP),
    )


@router.get("/knowledge/{name}")
async def knowledge_base(request: Request, name: str, signin: User):
    """One knowledge base of the signed-in tenant (another tenant's, or none of that name: 404)."""
    state = request.app.state.clearlm

    def load() -> dict | None:
        if not _NAME.fullmatch(name):
            return None
        try:
            with open_kb(state, name, signin.tenant) as kb:
                return info(state, kb, signin.tenant)
        except KnowledgeBaseNotFoundError:
            return None

    kb = await anyio.to_thread.run_sync(load)
    if kb is None:
        response = render(request, "knowledge_missing.html", signin, name=name)
        response.status_code = 404
        return response
    return render(
        request,
        "knowledge_base.html",
        signin,
        kb=kb,
        accept=",".join(KINDS),
        max_file_mib=p.MAX_FILE_BYTES // 2**20,
        max_k=p.MAX_SEARCH_K,
    )
