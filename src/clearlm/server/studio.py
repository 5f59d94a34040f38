"""/v1/studio: the writing studio over HTTP (``clearlm.apps.studio``; this module only translates).

Projects belong to the caller's tenant (another tenant's ids are 404). Routes (``{p}`` a project id,
``{s}`` a scene id):

- ``GET, POST /v1/studio/projects``; ``GET, PATCH /v1/studio/projects/{p}`` (the project with its outline
  tree and bible);
- ``POST /v1/studio/projects/{p}/bible``, ``PATCH, DELETE .../bible/{id}``: story-bible entries;
- ``POST /v1/studio/projects/{p}/nodes``, ``PATCH .../nodes/{id}``: parts, chapters, scenes with beats;
- ``GET .../scenes/{s}`` (text, versions), ``PUT .../scenes/{s}/text`` (a person's edit: a version),
  ``GET .../scenes/{s}/versions/{n}``, ``GET .../scenes/{s}/diff?a=&b=`` (word diff),
  ``POST .../scenes/{s}/restore`` {number};
- operations, each taking a generation slot (429 when none is free) and made of audited pipeline turns:
  ``POST .../scenes/{s}/draft | continue | rewrite | tone | check | attribute``,
  ``POST /v1/studio/projects/{p}/brainstorm | outline``, ``POST .../chapters/{id}/summarise``;
- ``GET /v1/studio/projects/{p}/export?format=markdown|epub|sidecar`` (with the AI-disclosure headers).

Bad input is 400 and an unknown id 404, with OpenAI-style bodies.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

import anyio
from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from clearlm.apps.studio import Studio
from clearlm.apps.studio.bible import KINDS, MAX_ENTRY_CHARS
from clearlm.apps.studio.export import sidecar, to_epub, to_markdown
from clearlm.apps.studio.outline import outline_from_premise
from clearlm.apps.studio.projects import MAX_PREMISE_CHARS, MAX_TITLE_CHARS, NODE_KINDS, STYLE_KEYS
from clearlm.apps.studio.versions import MAX_SCENE_CHARS
from clearlm.govern import disclosure
from clearlm.server.auth import tenant_of
from clearlm.server.protocol import _Request
from clearlm.server.routes import api_router, state
from clearlm.server.serving import admit, policy_of

router = api_router()
Id = Annotated[
    str, Path(max_length=32, pattern=r"^[a-z]{3}_[0-9a-f]{16}$", description="An id (prj_..., sce_...).")
]
NO_NUL = r"^[^\x00]*$"
SOME_TEXT = r"^[^\x00]*\S[^\x00]*$"  # not blank, no NUL character (what the studio refuses)


def _text(limit: int, blank_ok: bool = False, description: str | None = None):
    """A text field the studio takes: at most ``limit`` characters, no NUL, not blank unless ``blank_ok``."""
    pattern = NO_NUL if blank_ok else SOME_TEXT
    return Annotated[str, Field(max_length=limit, pattern=pattern, description=description)]


Text = _text(MAX_ENTRY_CHARS)
Name = _text(200)
Alias = _text(200, blank_ok=True)
Title = _text(MAX_TITLE_CHARS)
Beat = _text(1000)
Style = dict[Literal[STYLE_KEYS], _text(500, blank_ok=True)]  # type: ignore[valid-type]


class ProjectIn(_Request):
    title: Title | None = None
    premise: _text(MAX_PREMISE_CHARS) | None = None  # type: ignore[valid-type]
    style: Style | None = None


class EntryIn(_Request):
    kind: Literal[KINDS] = "character"  # type: ignore[valid-type]
    name: Name
    text: Text
    aliases: list[Alias] = Field(default_factory=list, max_length=20)


class EntryPatch(_Request):
    text: Text | None = None
    aliases: list[Alias] | None = Field(default=None, max_length=20)


class NodeIn(_Request):
    kind: Literal[NODE_KINDS]  # type: ignore[valid-type]
    title: Title
    parent_id: str | None = Field(default=None, max_length=32)
    beats: list[Beat] = Field(default_factory=list, max_length=30)


class NodePatch(_Request):
    title: Title | None = None
    beats: list[Beat] | None = Field(default=None, max_length=30)


class TextIn(_Request):
    text: _text(MAX_SCENE_CHARS, blank_ok=True)  # type: ignore[valid-type]


class Words(_Request):
    words: int = Field(default=300, ge=10, le=2000, description="About this many words.")


class RewriteIn(_Request):
    start: int = Field(ge=0, description="The selection's first character (offset in the current text).")
    end: int = Field(ge=1, description="One past its last character.")
    instruction: _text(500, description='"shorter", "more formal", "in the first person"...')  # type: ignore[valid-type]


class ToneIn(_Request):
    style: dict[Literal[STYLE_KEYS], _text(500)] = Field(min_length=1)  # type: ignore[valid-type]
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=1)


class RestoreIn(_Request):
    number: int = Field(ge=1)


class CheckIn(_Request):
    use_model: bool = True
    max_pairs: int = Field(default=12, ge=0, le=50)


class AttributeIn(_Request):
    paragraph: int = Field(ge=0)
    ablations: int = Field(default=16, ge=2, le=256)


class BrainstormIn(_Request):
    request: _text(500)  # type: ignore[valid-type]
    n: int = Field(default=3, ge=1, le=8)
    words: int = Field(default=60, ge=5, le=400)
    seed: int | None = None


class OutlineIn(_Request):
    premise: _text(MAX_PREMISE_CHARS) | None = None  # type: ignore[valid-type]
    chapters: int = Field(default=3, ge=1, le=4)
    max_tokens: int = Field(default=900, ge=16, le=4000)


def _studio(request: Request, model: bool = False) -> Studio:
    s = state(request)
    if not model:
        return Studio(s.db, tenant_of(request))
    record = request.state.audit_record
    return Studio(
        s.db, tenant_of(request), s.backend, s.audit, policy_of(request, s), s.embedder, record.api_key_id
    )


async def _run(fn):
    return await anyio.to_thread.run_sync(fn)


async def _model(request: Request, operation: str, **parameters) -> Studio:
    """Admit the request (a generation slot) and a studio with the model; the request's own audit record
    names the operation (its turns have their own records)."""
    await admit(request, state(request))
    request.state.audit_record.parameters = {"operation": operation, **parameters}
    return await _run(lambda: _studio(request, model=True))


def _project(st: Studio, pid: str) -> dict:
    p = st.projects.get(st.tenant, pid)
    return {**p.to_dict(), "outline": [n.to_dict() for n in st.projects.outline(st.tenant, pid)],
            "bible": [e.to_dict() for e in st.projects.entries(st.tenant, pid)]}  # fmt: skip


def _scene(st: Studio, pid: str, sid: str) -> dict:
    node = st.projects.node(st.tenant, pid, sid)
    versions = st.versions.list(st.tenant, pid, sid) if node.kind == "scene" else []
    return {**node.to_dict(), "text": versions[-1].text if versions else "",
            "versions": [v.to_dict(text=False) for v in versions]}  # fmt: skip


@router.get("/studio/projects")
async def list_projects(request: Request):
    st = _studio(request)
    return {"object": "list", "data": [p.to_dict() for p in await _run(lambda: st.projects.list(st.tenant))]}


@router.post("/studio/projects")
async def create_project(request: Request, body: ProjectIn):
    st = _studio(request)
    p = await _run(lambda: st.projects.create(st.tenant, body.title or "", body.premise or "", body.style))
    return await _run(lambda: _project(st, p.id))


@router.get("/studio/projects/{pid}")
async def get_project(request: Request, pid: Id):
    st = _studio(request)
    return await _run(lambda: _project(st, pid))


@router.patch("/studio/projects/{pid}")
async def update_project(request: Request, pid: Id, body: ProjectIn):
    st = _studio(request)
    await _run(
        lambda: st.projects.update(st.tenant, pid, title=body.title, premise=body.premise, style=body.style)
    )
    return await _run(lambda: _project(st, pid))


@router.post("/studio/projects/{pid}/bible")
async def add_entry(request: Request, pid: Id, body: EntryIn):
    st = _studio(request)
    e = await _run(
        lambda: st.projects.add_entry(st.tenant, pid, body.kind, body.name, body.text, body.aliases)
    )
    return e.to_dict()


@router.patch("/studio/projects/{pid}/bible/{eid}")
async def update_entry(request: Request, pid: Id, eid: Id, body: EntryPatch):
    st = _studio(request)
    e = await _run(
        lambda: st.projects.update_entry(st.tenant, pid, eid, text=body.text, aliases=body.aliases)
    )
    return e.to_dict()


@router.delete("/studio/projects/{pid}/bible/{eid}")
async def delete_entry(request: Request, pid: Id, eid: Id):
    st = _studio(request)
    await _run(lambda: st.projects.delete_entry(st.tenant, pid, eid))
    return {"id": eid, "deleted": True}


@router.post("/studio/projects/{pid}/nodes")
async def add_node(request: Request, pid: Id, body: NodeIn):
    st = _studio(request)
    n = await _run(
        lambda: st.projects.add_node(st.tenant, pid, body.kind, body.title, body.parent_id, body.beats)
    )
    return n.to_dict()


@router.patch("/studio/projects/{pid}/nodes/{nid}")
async def update_node(request: Request, pid: Id, nid: Id, body: NodePatch):
    st = _studio(request)
    return (
        await _run(lambda: st.projects.update_node(st.tenant, pid, nid, title=body.title, beats=body.beats))
    ).to_dict()


@router.get("/studio/projects/{pid}/scenes/{sid}")
async def get_scene(request: Request, pid: Id, sid: Id):
    st = _studio(request)
    return await _run(lambda: _scene(st, pid, sid))


@router.put("/studio/projects/{pid}/scenes/{sid}/text")
async def edit_scene(request: Request, pid: Id, sid: Id, body: TextIn):
    st = _studio(request)
    v = await _run(lambda: st.versions.edit(st.tenant, pid, sid, body.text))
    return v.to_dict()


@router.get("/studio/projects/{pid}/scenes/{sid}/versions/{number}")
async def get_version(request: Request, pid: Id, sid: Id, number: Annotated[int, Path(ge=1)]):
    st = _studio(request)
    return (await _run(lambda: st.versions.get(st.tenant, pid, sid, number))).to_dict()


@router.get("/studio/projects/{pid}/scenes/{sid}/diff")
async def diff_versions(
    request: Request, pid: Id, sid: Id, a: Annotated[int, Query(ge=1)], b: Annotated[int, Query(ge=1)]
):
    from clearlm.apps.studio.diffs import diff_stats

    st = _studio(request)
    ops = await _run(lambda: st.versions.diff(st.tenant, pid, sid, a, b))
    return {"a": a, "b": b, "ops": [o.to_dict() for o in ops], **diff_stats(ops)}


@router.post("/studio/projects/{pid}/scenes/{sid}/restore")
async def restore_version(request: Request, pid: Id, sid: Id, body: RestoreIn):
    st = _studio(request)
    return (await _run(lambda: st.versions.restore(st.tenant, pid, sid, body.number))).to_dict()


@router.post("/studio/projects/{pid}/scenes/{sid}/draft")
async def draft(request: Request, pid: Id, sid: Id, body: Words):
    st = await _model(request, "draft", scene=sid)
    return (await _run(lambda: st.writer.draft(st.tenant, pid, sid, body.words))).to_dict()


@router.post("/studio/projects/{pid}/scenes/{sid}/continue")
async def continue_scene(request: Request, pid: Id, sid: Id, body: Words):
    st = await _model(request, "continue", scene=sid)
    return (await _run(lambda: st.writer.continue_scene(st.tenant, pid, sid, body.words))).to_dict()


@router.post("/studio/projects/{pid}/scenes/{sid}/rewrite")
async def rewrite(request: Request, pid: Id, sid: Id, body: RewriteIn):
    st = await _model(request, "rewrite", scene=sid)
    fn = lambda: st.writer.rewrite(st.tenant, pid, sid, body.start, body.end, body.instruction)  # noqa: E731
    return (await _run(fn)).to_dict()


@router.post("/studio/projects/{pid}/scenes/{sid}/tone")
async def tone(request: Request, pid: Id, sid: Id, body: ToneIn):
    st = await _model(request, "tone", scene=sid)
    return (
        await _run(lambda: st.writer.restyle(st.tenant, pid, sid, body.style, body.start, body.end))
    ).to_dict()


@router.post("/studio/projects/{pid}/scenes/{sid}/check")
async def check(request: Request, pid: Id, sid: Id, body: CheckIn):
    st = await _model(request, "check", scene=sid) if body.use_model else _studio(request)
    return (await _run(lambda: st.check(pid, sid, body.use_model, max_pairs=body.max_pairs))).to_dict()


@router.post("/studio/projects/{pid}/scenes/{sid}/attribute")
async def attribute(request: Request, pid: Id, sid: Id, body: AttributeIn):
    st = await _model(request, "attribute", scene=sid)
    st.explainer = await _run(state(request).explainer)  # the served model, or its torch twin (loaded once)
    return await _run(lambda: st.attribute(pid, sid, body.paragraph, body.ablations))


@router.post("/studio/projects/{pid}/brainstorm")
async def brainstorm(request: Request, pid: Id, body: BrainstormIn):
    st = await _model(request, "brainstorm")
    fn = lambda: st.writer.brainstorm(st.tenant, pid, body.request, body.n, body.words, seed=body.seed)  # noqa: E731
    return (await _run(fn)).to_dict()


@router.post("/studio/projects/{pid}/outline")
async def outline(request: Request, pid: Id, body: OutlineIn):
    st = await _model(request, "outline")
    fn = lambda: outline_from_premise(st.writer, st.tenant, pid, body.premise, body.chapters, body.max_tokens)  # noqa: E731
    return (await _run(fn)).to_dict()


@router.post("/studio/projects/{pid}/chapters/{cid}/summarise")
async def summarise(request: Request, pid: Id, cid: Id, body: Words | None = None):
    st = await _model(request, "summarise", chapter=cid)
    words = body.words if body is not None else 80
    return (await _run(lambda: st.writer.summarise(st.tenant, pid, cid, words))).to_dict()


@router.get("/studio/projects/{pid}/export")
async def export(request: Request, pid: Id, format: Literal["markdown", "epub", "sidecar"] = "markdown"):
    """The book as Markdown or EPUB (the disclosure statement inside, the AI-disclosure headers on the
    response), or the sidecar JSON of its passages' provenance."""
    st = _studio(request)
    book = await _run(lambda: st.book(pid))
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", book.title).strip("-")[:60] or "book"
    headers = dict(disclosure.HEADERS) if book.models else {}
    if format == "sidecar":
        body, media, name = (
            json.dumps(sidecar(book, f"{stem}.md"), indent=2),
            "application/json",
            f"{stem}.md.ai.json",
        )
    elif format == "epub":
        body, media, name = await _run(lambda: to_epub(book)), "application/epub+zip", f"{stem}.epub"
    else:
        body, media, name = to_markdown(book), "text/markdown; charset=utf-8", f"{stem}.md"
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(body, media_type=media, headers=headers)
