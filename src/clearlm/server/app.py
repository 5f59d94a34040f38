"""The FastAPI application: OpenAI-compatible routes, clearlm's extensions, operations endpoints."""

from __future__ import annotations

from fastapi import FastAPI

from clearlm import __version__, web
from clearlm.server import (
    adapters,
    adapters_compare,
    audio,
    classroom,
    classroom_grades,
    classroom_quiz,
    classroom_tutor,
    conversations,
    errors,
    governance,
    images,
    review,
    studio,
    support,
    support_agents,
    support_channels,
    translate,
)
from clearlm.server.lifecycle import Lifecycle
from clearlm.server.routes import api, ops
from clearlm.server.state import ServerState


def create_app(state: ServerState) -> FastAPI:
    """An app serving ``state``'s model. Every /v1 request is authenticated (when keys exist), admitted
    (or refused with 429), audited once, counted and logged. The web UI is served at ``/``."""
    app = FastAPI(
        title="clearlm", version=__version__, description="OpenAI-compatible API that explains and audits"
    )
    app.state.clearlm = state
    errors.install(app)
    app.include_router(api)
    for feature in (
        conversations,
        review,
        governance,
        support,
        support_agents,
        classroom,
        classroom_grades,
        classroom_tutor,
        classroom_quiz,
        audio,
        images,
    ):
        app.include_router(feature.router)
    app.include_router(translate.router)
    app.include_router(studio.router)  # the writing studio (issue 17)
    app.include_router(adapters.router)  # LoRA adapters' cards and reports (issue 19)
    app.include_router(adapters_compare.router)  # an adapter's attribution against its base (issue 19)
    app.include_router(ops)
    web.install(app)
    app.add_middleware(Lifecycle, state=state)
    support_channels.install(app, state.config.support_origins)  # CORS outermost: preflights not audited
    return app
