"""The admin pages: ``/keys`` (the tenant's API keys: create, the secret shown once, revoke) and ``/models``
(what is served, the catalog and each model's install state, pull with progress).

Both read and change through ``/v1`` (``/v1/keys``, ``POST /v1/models/{name}/pull``) from
``static/admin.js``; the models page renders the catalog's install state on the server (it is read from
the cache's files, which no /v1 route lists).
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request

from clearlm.models import CATALOG, DEFAULT_MODEL, install_state
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[SignIn, Depends(needs("admin"))]


@router.get("/keys")
async def keys_page(request: Request, signin: Admin):
    return render(request, "keys.html", signin)


def _catalog() -> list[dict]:
    """Each catalog model with its install state (reads the cache's stamps: no hashing)."""
    rows = []
    for spec in CATALOG.values():
        st = install_state(spec)
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "license": spec.license,
                "size_mb": round(spec.size / 1e6),
                "on_disk_mb": round(st.size_on_disk / 1e6),
                "status": st.status,
                "default": spec.name == DEFAULT_MODEL,
                "optional": not spec.default_install,
            }
        )
    return rows


@router.get("/models")
async def models_page(request: Request, signin: Admin):
    s = request.app.state.clearlm
    catalog = await anyio.to_thread.run_sync(_catalog)
    return render(
        request,
        "models.html",
        signin,
        catalog=catalog,
        backend=s.backend.kind,
        embedding_model=s.config.embedding_model,
        context_length=s.backend.context_length,
    )
