"""A tenant's writing projects in the database (``store/studio_tables.py``, migration 0014): the project
(title, premise, tone and style controls), its story bible, and its outline of parts, chapters and scenes
with beats. The scenes' versions are in :mod:`clearlm.apps.studio.versions`.

Every method takes the tenant: another tenant's project is not found (404), never shown.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clearlm.apps.studio.bible import KINDS, MAX_ALIASES, MAX_ENTRY_CHARS, MAX_NAME_CHARS, BibleEntry
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database
from clearlm.store.studio_tables import StudioBibleRow, StudioNodeRow, StudioProjectRow

NODE_KINDS = ("part", "chapter", "scene")
PARENT_KIND = {"part": None, "chapter": "part", "scene": "chapter"}
STYLE_KEYS = ("tone", "person", "tense", "notes")
MAX_TITLE_CHARS = 300
MAX_PREMISE_CHARS = 4_000
MAX_BEATS = 30
MAX_BEAT_CHARS = 1_000


class StudioError(InvalidInputError):
    """Bad studio input (an empty title, an unknown kind, too long a text); the message says what to do."""


class StudioNotFoundError(ClearlmError, LookupError):
    """No such project, bible entry, outline node or version (or it is another tenant's)."""

    status_code = 404
    error_type = "not_found_error"
    code = "studio_not_found"


@dataclass(slots=True)
class Project:
    """A project: ``style`` holds the tone and style controls ({"tone", "person", "tense", "notes"})."""

    id: str
    tenant: str
    title: str
    premise: str
    style: dict
    created_at: datetime

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "premise": self.premise, "style": dict(self.style),
                "created_at": self.created_at.isoformat()}  # fmt: skip


@dataclass(slots=True)
class Node:
    """An outline node (part, chapter or scene) and its ``children`` in order; scenes have ``beats``."""

    id: str
    kind: str
    title: str
    parent_id: str | None
    position: int
    beats: list[str] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "title": self.title, "parent_id": self.parent_id,
               "position": self.position}  # fmt: skip
        if self.kind == "scene":
            out["beats"] = list(self.beats)
        else:
            out["children"] = [c.to_dict() for c in self.children]
        return out


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _text(value: str, what: str, limit: int, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise StudioError(f"the {what} must be text")
    value = value.strip()
    if not value and not empty_ok:
        raise StudioError(f"the {what} is empty: give some text")
    if len(value) > limit:
        raise StudioError(f"the {what} has {len(value):,} characters; the limit is {limit:,}: shorten it")
    if "\x00" in value:
        raise StudioError(f"the {what} contains a NUL character (\\x00); remove it")
    return value


def check_style(style: dict | None) -> dict:
    """The tone and style controls, checked: only :data:`STYLE_KEYS`, each short text (empty dropped)."""
    style = dict(style or {})
    unknown = set(style) - set(STYLE_KEYS)
    if unknown:
        raise StudioError(
            f"unknown style control(s) {', '.join(sorted(unknown))}: use {', '.join(STYLE_KEYS)}"
        )
    return {k: v for k, v in ((k, _text(v or "", k, 500, True)) for k, v in style.items()) if v}


def check_beats(beats: list[str] | None) -> list[str]:
    beats = [b for b in (_text(b, "beat", MAX_BEAT_CHARS, True) for b in (beats or [])) if b]
    if len(beats) > MAX_BEATS:
        raise StudioError(f"a scene has {len(beats)} beats; the limit is {MAX_BEATS}: merge some")
    return beats


class Projects:
    """Projects, bible entries and outlines in ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- projects ---------------------------------------------------------------------------------

    def create(self, tenant: str, title: str, premise: str = "", style: dict | None = None) -> Project:
        """A new project. Raises StudioError: an empty or too long title or premise, a bad style."""
        now = datetime.now(UTC)
        row = StudioProjectRow(id=new_id("prj"), tenant=tenant, title=_text(title, "title", MAX_TITLE_CHARS),
                               premise=_text(premise, "premise", MAX_PREMISE_CHARS, True),
                               style=check_style(style), created_at=now, updated_at=now)  # fmt: skip
        with self.db.writing() as session:
            session.add(row)
        return _project(row)

    def list(self, tenant: str) -> list[Project]:
        with self.db.session() as session:
            rows = session.scalars(
                select(StudioProjectRow)
                .where(StudioProjectRow.tenant == tenant)
                .order_by(StudioProjectRow.created_at)
            )
            return [_project(r) for r in rows]

    def get(self, tenant: str, project_id: str) -> Project:
        """The project. Raises StudioNotFoundError."""
        with self.db.session() as session:
            return _project(self._row(session, tenant, project_id))

    def update(self, tenant: str, project_id: str, *, title=None, premise=None, style=None) -> Project:
        """Change the title, premise or style controls (None: unchanged)."""
        with self.db.writing() as session:
            row = self._row(session, tenant, project_id)
            if title is not None:
                row.title = _text(title, "title", MAX_TITLE_CHARS)
            if premise is not None:
                row.premise = _text(premise, "premise", MAX_PREMISE_CHARS, True)
            if style is not None:
                row.style = check_style(style)
            row.updated_at = datetime.now(UTC)
            return _project(row)

    def _row(self, session, tenant: str, project_id: str) -> StudioProjectRow:
        row = session.get(StudioProjectRow, project_id)
        if row is None or row.tenant != tenant:
            raise StudioNotFoundError(f"no project {project_id!r}: list your projects to find its id")
        return row

    # ---- the bible --------------------------------------------------------------------------------

    def entries(self, tenant: str, project_id: str) -> list[BibleEntry]:
        """The project's bible, in the order the entries were made."""
        with self.db.session() as session:
            self._row(session, tenant, project_id)
            rows = session.scalars(
                select(StudioBibleRow)
                .where(StudioBibleRow.project_id == project_id)
                .order_by(StudioBibleRow.created_at, StudioBibleRow.id)
            )
            return [_entry(r) for r in rows]

    def add_entry(self, tenant: str, project_id: str, kind: str, name: str, text: str,
                  aliases: list[str] | None = None, source: str = "person") -> BibleEntry:  # fmt: skip
        """A new bible entry. Raises StudioError: an unknown kind, an empty name or text, a name the
        project's bible has already."""
        if kind not in KINDS:
            raise StudioError(f"unknown bible kind {kind!r}: use one of {', '.join(KINDS)}")
        name = _text(name, "name", MAX_NAME_CHARS)
        aliases = [a for a in (_text(a, "alias", MAX_NAME_CHARS, True) for a in aliases or []) if a]
        if len(aliases) > MAX_ALIASES:
            raise StudioError(f"{len(aliases)} aliases; the limit is {MAX_ALIASES}")
        now = datetime.now(UTC)
        row = StudioBibleRow(id=new_id("bib"), project_id=project_id, kind=kind, name=name, aliases=aliases,
                             text=_text(text, "entry text", MAX_ENTRY_CHARS), source=source,
                             created_at=now, updated_at=now)  # fmt: skip
        try:
            with self.db.writing() as session:
                self._row(session, tenant, project_id)
                session.add(row)
        except IntegrityError:
            raise StudioError(
                f"the bible has an entry named {name!r} already: edit it, or choose another name"
            ) from None
        return _entry(row)

    def update_entry(
        self, tenant: str, project_id: str, entry_id: str, *, text=None, aliases=None
    ) -> BibleEntry:
        with self.db.writing() as session:
            self._row(session, tenant, project_id)
            row = session.get(StudioBibleRow, entry_id)
            if row is None or row.project_id != project_id:
                raise StudioNotFoundError(f"no bible entry {entry_id!r} in this project")
            if text is not None:
                row.text = _text(text, "entry text", MAX_ENTRY_CHARS)
            if aliases is not None:
                row.aliases = [a for a in (_text(a, "alias", MAX_NAME_CHARS, True) for a in aliases) if a]
            row.updated_at = datetime.now(UTC)
            return _entry(row)

    def delete_entry(self, tenant: str, project_id: str, entry_id: str) -> None:
        with self.db.writing() as session:
            self._row(session, tenant, project_id)
            row = session.get(StudioBibleRow, entry_id)
            if row is None or row.project_id != project_id:
                raise StudioNotFoundError(f"no bible entry {entry_id!r} in this project")
            session.delete(row)

    # ---- the outline ------------------------------------------------------------------------------

    def add_node(self, tenant: str, project_id: str, kind: str, title: str, parent_id: str | None = None,
                 beats: list[str] | None = None) -> Node:  # fmt: skip
        """Append a part (no parent), a chapter (under a part) or a scene (under a chapter, with beats).

        Raises:
            StudioError: an unknown kind, a parent of the wrong kind, an empty title, bad beats.
            StudioNotFoundError: no such project or parent.
        """
        if kind not in NODE_KINDS:
            raise StudioError(f"unknown outline kind {kind!r}: use part, chapter or scene")
        title = _text(title, "title", MAX_TITLE_CHARS)
        beats = check_beats(beats) if kind == "scene" else []
        with self.db.writing() as session:
            self._row(session, tenant, project_id)
            if PARENT_KIND[kind] is None:
                if parent_id is not None:
                    raise StudioError("a part has no parent: leave the parent out")
            else:
                parent = session.get(StudioNodeRow, parent_id) if parent_id else None
                if parent is None or parent.project_id != project_id:
                    raise StudioNotFoundError(
                        f"a {kind} goes under a {PARENT_KIND[kind]}: give its id as the parent"
                    )
                if parent.kind != PARENT_KIND[kind]:
                    raise StudioError(f"a {kind} goes under a {PARENT_KIND[kind]}, not a {parent.kind}")
            n = session.scalar(
                select(func.count()).select_from(StudioNodeRow).where(
                    StudioNodeRow.project_id == project_id, StudioNodeRow.parent_id.is_(None)
                    if parent_id is None else StudioNodeRow.parent_id == parent_id)
            )  # fmt: skip
            row = StudioNodeRow(id=new_id(kind[:3]), project_id=project_id, parent_id=parent_id, kind=kind,
                                position=int(n or 0), title=title, beats=beats, created_at=datetime.now(UTC))  # fmt: skip
            session.add(row)
        return _node(row)

    def update_node(self, tenant: str, project_id: str, node_id: str, *, title=None, beats=None) -> Node:
        with self.db.writing() as session:
            row = self._node_row(session, tenant, project_id, node_id)
            if title is not None:
                row.title = _text(title, "title", MAX_TITLE_CHARS)
            if beats is not None:
                if row.kind != "scene":
                    raise StudioError("only scenes have beats")
                row.beats = check_beats(beats)
            return _node(row)

    def node(self, tenant: str, project_id: str, node_id: str) -> Node:
        """One node (without children). Raises StudioNotFoundError."""
        with self.db.session() as session:
            return _node(self._node_row(session, tenant, project_id, node_id))

    def outline(self, tenant: str, project_id: str) -> list[Node]:
        """The outline as a tree: the parts, each with its chapters, each with its scenes, in order."""
        with self.db.session() as session:
            self._row(session, tenant, project_id)
            rows = session.scalars(
                select(StudioNodeRow)
                .where(StudioNodeRow.project_id == project_id)
                .order_by(StudioNodeRow.position)
            ).all()
        nodes = {r.id: _node(r) for r in rows}
        roots = []
        for r in rows:
            (nodes[r.parent_id].children if r.parent_id in nodes else roots).append(nodes[r.id])
        return roots

    def scenes(self, tenant: str, project_id: str, under: str | None = None) -> list[Node]:
        """The scenes in reading order (of the whole project, or under one part or chapter)."""
        out: list[Node] = []

        def walk(nodes: list[Node], inside: bool) -> None:
            for n in nodes:
                here = inside or n.id == under
                if n.kind == "scene" and here:
                    out.append(n)
                walk(n.children, here)

        walk(self.outline(tenant, project_id), under is None)
        return out

    def _node_row(self, session, tenant: str, project_id: str, node_id: str) -> StudioNodeRow:
        self._row(session, tenant, project_id)
        row = session.get(StudioNodeRow, node_id)
        if row is None or row.project_id != project_id:
            raise StudioNotFoundError(f"no outline node {node_id!r} in this project")
        return row


def _project(r: StudioProjectRow) -> Project:
    from clearlm.store.db import as_utc

    return Project(r.id, r.tenant, r.title, r.premise, dict(r.style or {}), as_utc(r.created_at))


def _entry(r: StudioBibleRow) -> BibleEntry:
    return BibleEntry(r.id, r.kind, r.name, r.text, tuple(r.aliases or ()), r.source)


def _node(r: StudioNodeRow) -> Node:
    return Node(r.id, r.kind, r.title, r.parent_id, r.position, list(r.beats or []))
