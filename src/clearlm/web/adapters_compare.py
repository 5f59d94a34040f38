"""``/adapters/{name}/compare``: one prompt's attribution under the base (or base + another served adapter,
the page's "Compare with") and under base + adapter ``name``, side by side (any signed-in user). The page
is a form; ``static/adapters-compare.js`` sends it to ``POST /v1/adapters/{name}/compare``
(``server.adapters_compare``) and draws the two heatmaps (the "Why?" panel's shade classes from
``why.css``, one scale for both), the generated tokens to pick one step, each step's distance, and the
prompt tokens whose attribution moved most, highlighted in both heatmaps. Every token is set as text,
never as HTML."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from clearlm.store.sessions import SignIn
from clearlm.tune.adapters import NAME
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
User = Annotated[SignIn, Depends(needs("user"))]
AdapterName = Annotated[str, Path(pattern=NAME.pattern, max_length=64)]


def served_views(backend, name: str) -> tuple[str | None, str | None, list[str]]:
    """(base model name, tuned model name, the other served adapters) when ``backend`` serves adapter
    ``name``, else (base, None, [])."""
    views = getattr(backend, "views", None)
    base = getattr(backend, "base_name", backend.name)
    if views is None or name not in views:
        return base, None, []
    return base, views[name].name, [n for n in views if n not in (None, name)]


@router.get("/adapters/{name}/compare")
async def compare_page(request: Request, name: AdapterName, signin: User):
    base, tuned, others = served_views(request.app.state.clearlm.backend, name)
    return render(
        request,
        "adapters_compare.html",
        signin,
        adapter=name,
        base_model=base,
        tuned_model=tuned,
        others=others,
    )
