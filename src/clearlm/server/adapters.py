"""/v1/adapters: the LoRA adapters under ``$CLEARLM_HOME/adapters`` (``clearlm.tune``), their cards and reports.

Adapters belong to the deployment, not to a tenant (the operator trains them with ``clearlm tune`` and serves
them with ``clearlm serve --adapter``): every route needs an admin key (403 for a user key), and an admin of
any tenant sees the same list. Each adapter says whether this server serves it, and under which model name
(``BASE:ADAPTER``, what a chat completion's ``model`` names). An unknown adapter is 404 with an OpenAI-style
error body (code ``adapter_not_found``); a malformed name is refused by the path's pattern (422).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import Path, Request
from pydantic import BaseModel, Field

from clearlm.server.routes import ADMIN, api_router, state
from clearlm.tune.adapters import NAME

router = api_router()

AdapterName = Annotated[
    str,
    Path(
        pattern=NAME.pattern,
        max_length=64,
        description="The adapter's name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
    ),
]


class AdapterInfo(BaseModel):
    """One adapter: what it adapts, its data kind, size, when it was made, its figures (perplexities before
    and after, the question answering's means) and whether this server serves it (``model``: the name to
    ask for in a chat completion; None when not served)."""

    id: str
    object: str = "adapter"
    base: str
    kind: str = Field(description="documents (continued pretraining) or chat (supervised fine-tuning)")
    created: str
    bytes: int
    figures: dict[str, Any]
    served: bool
    model: str | None = None


class AdapterList(BaseModel):
    object: str = "list"
    data: list[AdapterInfo]


class AdapterCard(AdapterInfo):
    """An adapter with its whole card (data sources and hashes, base and hash, hyperparameters, intended use,
    limitations) and its report (losses, figures, the question table)."""

    card: dict[str, Any]
    report: dict[str, Any] | None = None


def served_name(request: Request, name: str) -> str | None:
    """The model name under which this server serves adapter ``name`` (None: not served)."""
    backend = state(request).backend
    models = getattr(backend, "served", ())
    base = getattr(backend, "base_name", None)
    wanted = f"{base}:{name}"
    return wanted if base is not None and wanted in models else None


def _info(request: Request, row: dict) -> dict:
    model = served_name(request, row["name"])
    return {
        "id": row["name"],
        "base": row["base"],
        "kind": row["kind"],
        "created": row["created"],
        "bytes": row["bytes"],
        "figures": row["figures"],
        "served": model is not None,
        "model": model,
    }


@router.get("/adapters", response_model=AdapterList, **ADMIN)
async def list_adapters(request: Request):
    """The adapters under $CLEARLM_HOME/adapters, by name."""
    from clearlm.tune import list_adapters as listed

    rows = await anyio.to_thread.run_sync(listed)
    return AdapterList(data=[AdapterInfo(**_info(request, r)) for r in rows])


@router.get("/adapters/{name}", response_model=AdapterCard, **ADMIN)
async def get_adapter(name: AdapterName, request: Request):
    """One adapter: its card and report (404 for an adapter that does not exist)."""
    from clearlm.tune.adapters import list_adapters, read_card

    def load() -> tuple[dict, dict]:
        rows = {r["name"]: r for r in list_adapters()}
        card = read_card(name)  # AdapterNotFoundError (404) when there is none
        if name not in rows:  # written between the two reads
            rows = {r["name"]: r for r in list_adapters()}
        return card, rows[name]

    card, row = await anyio.to_thread.run_sync(load)
    report = card.pop("report", None)
    return AdapterCard(**_info(request, row), card=card, report=report)
