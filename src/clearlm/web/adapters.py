"""The adapters page: ``/adapters`` (admin), each LoRA adapter's card and report side by side.

For each adapter under ``$CLEARLM_HOME/adapters`` (``clearlm.tune.read_card``): the base and its weights hash,
the training data's sources and hashes, held-out domain and general-text perplexity before and after (with
the change in %), the four-way question table (base, tuned, base + knowledge base, tuned + knowledge base:
means, then each question's answers and scores), the card (intended use, limitations, hyperparameters), a
"Chat with it" link when this server serves the adapter (``/chat?model=BASE:ADAPTER``: the chat page picks
that model) and a link to its attribution comparison (``/adapters/NAME/compare``). Rendered on the server
from the same functions as ``GET /v1/adapters``; no script.
"""

from __future__ import annotations

import logging
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request

from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[SignIn, Depends(needs("admin"))]
log = logging.getLogger(__name__)
PERPLEXITIES = (("domain", "Held-out domain text"), ("general", "General text (forgetting check)"))


def _percent(change: float | None) -> str:
    return "n/a" if change is None else f"{change:+.1%}"


def _number(value: float | None, pattern: str = "{:.2f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def adapter_view(card: dict, served: str | None) -> dict:
    """An adapter's card (with its report under "report") as the template shows it."""
    f, report = card.get("figures") or {}, card.get("report") or {}
    perplexity = []
    for key, label in PERPLEXITIES:
        m = f.get(key) or {}
        before, after = (m.get("before") or {}).get("perplexity"), (m.get("after") or {}).get("perplexity")
        change = m.get("change")
        perplexity.append(
            {
                "key": key,
                "label": label,
                "before": _number(before),
                "after": _number(after),
                "change": _percent(change),
                # lower perplexity is better: a drop on domain text is the goal, a rise on general text a cost
                "better": change is not None and change < 0,
                "tokens": (m.get("after") or {}).get("tokens"),
            }
        )
    questions = report.get("questions")
    return {
        "name": card["name"],
        "base": card["base"],
        "data": card["data"],
        "created": card.get("created", ""),
        "generated_by": card.get("generated_by", ""),
        "perplexity": perplexity,
        "training": {
            "steps": f.get("steps"),
            "final_loss": _number(f.get("final_loss"), "{:.3f}"),
            "tokens_per_s": _number(f.get("tokens_per_s"), "{:.0f}"),
            "seconds": _number(f.get("train_seconds"), "{:.0f}"),
        },
        "questions": _questions(questions) if questions else None,
        "intended_use": card.get("intended_use", ""),
        "limitations": card.get("limitations", []),
        "hyperparameters": card.get("hyperparameters", {}),
        "served": served,
    }


def _questions(report: dict) -> dict:
    setups = report["setups"]
    rows = []
    for r in report["rows"]:
        answers = [
            {
                "setup": s,
                "text": r["answers"][s].get("text", ""),
                "error": r["answers"][s].get("error"),
                "f1": _number(r["answers"][s]["f1"]),
                "key_recall": _number(r["answers"][s]["key_recall"]),
            }
            for s in setups
        ]
        rows.append({**r, "scored": answers})
    means = {
        s: {"f1": _number(report["means"][s]["f1"]), "key_recall": _number(report["means"][s]["key_recall"])}
        for s in setups
    }
    return {**report, "rows": rows, "mean_cells": means}


def load_views(served: list[str], base_name: str | None) -> tuple[list[dict], list[str]]:
    """Every adapter's view, and a message for each adapter whose files cannot be read."""
    from clearlm.tune import list_adapters, read_card

    views, problems = [], []
    for row in list_adapters():
        name = row["name"]
        try:
            card = read_card(name)
        except Exception as exc:  # a damaged folder must not take the page down: say which one
            log.exception("cannot read adapter %s", name)
            problems.append(
                f"{name}: its card cannot be read ({exc.__class__.__name__}): remove and retrain it"
            )
            continue
        model = f"{base_name}:{name}" if base_name and f"{base_name}:{name}" in served else None
        views.append(adapter_view(card, model))
    return views, problems


@router.get("/adapters")
async def adapters_page(request: Request, signin: Admin):
    backend = request.app.state.clearlm.backend
    served = list(getattr(backend, "served", ()))
    base_name = getattr(backend, "base_name", None)
    try:
        views, problems = await anyio.to_thread.run_sync(load_views, served, base_name)
    except Exception as exc:  # e.g. an unreadable adapters folder
        log.exception("cannot list the adapters")
        views, problems = [], [f"the adapters cannot be listed ({exc})"]
    return render(
        request, "adapters.html", signin, adapters=views, problems=problems, serving_adapters=bool(base_name)
    )
