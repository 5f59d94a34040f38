"""Every version of every scene: each operation and each person's edit adds one (never overwrites), with
who made it (a model's name, or "person"); word-level diffs between any two versions; restore (a new
version with an old one's text, so nothing is lost); and who wrote each word of the current text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from clearlm.apps.studio.diffs import DiffOp, carry_authors, word_diff
from clearlm.apps.studio.projects import Projects, StudioError, StudioNotFoundError, new_id
from clearlm.store.db import as_utc
from clearlm.store.studio_tables import StudioVersionRow

PERSON = "person"
MAX_SCENE_CHARS = 200_000


@dataclass(slots=True)
class Version:
    """Version ``number`` of scene ``scene_id``: its ``text``, ``author`` (model name or "person"), the
    ``operation`` that made it and its ``detail``."""

    id: str
    scene_id: str
    number: int
    text: str
    author: str
    operation: str
    detail: dict
    created_at: datetime

    def to_dict(self, text: bool = True) -> dict:
        out = {"id": self.id, "scene_id": self.scene_id, "number": self.number, "author": self.author,
               "operation": self.operation, "detail": self.detail, "created_at": self.created_at.isoformat(),
               "words": len(self.text.split())}  # fmt: skip
        if text:
            out["text"] = self.text
        return out


class Versions:
    """The versions of the scenes of ``projects``' database (tenant checked through ``projects``)."""

    def __init__(self, projects: Projects) -> None:
        self.projects = projects
        self.db = projects.db

    def add(self, tenant: str, project_id: str, scene_id: str, text: str, author: str, operation: str,
            detail: dict | None = None) -> Version:  # fmt: skip
        """A new version of the scene (number: the last + 1).

        Raises:
            StudioError: the node is not a scene, the text is over 200,000 characters or has NUL.
            StudioNotFoundError: no such project or scene.
        """
        if len(text) > MAX_SCENE_CHARS:
            raise StudioError(
                f"the scene has {len(text):,} characters; the limit is {MAX_SCENE_CHARS:,}: split it"
            )
        if "\x00" in text:
            raise StudioError("the text contains a NUL character (\\x00); remove it")
        with self.db.writing() as session:
            node = self.projects._node_row(session, tenant, project_id, scene_id)
            if node.kind != "scene":
                raise StudioError(f"{scene_id!r} is a {node.kind}; only scenes have text and versions")
            last = session.scalar(
                select(func.max(StudioVersionRow.number)).where(StudioVersionRow.scene_id == scene_id)
            )
            row = StudioVersionRow(id=new_id("ver"), scene_id=scene_id, number=int(last or 0) + 1, text=text,
                                   author=author, operation=operation, detail=detail or {},
                                   created_at=datetime.now(UTC))  # fmt: skip
            session.add(row)
        return _version(row)

    def edit(self, tenant: str, project_id: str, scene_id: str, text: str) -> Version:
        """A person's edit: a new version by "person" (none when the text is unchanged: the current one)."""
        current = self.current(tenant, project_id, scene_id)
        if current is not None and current.text == text:
            return current
        return self.add(tenant, project_id, scene_id, text, PERSON, "edit")

    def list(self, tenant: str, project_id: str, scene_id: str) -> list[Version]:
        """The scene's versions, oldest first."""
        with self.db.session() as session:
            self.projects._node_row(session, tenant, project_id, scene_id)
            rows = session.scalars(
                select(StudioVersionRow)
                .where(StudioVersionRow.scene_id == scene_id)
                .order_by(StudioVersionRow.number)
            )
            return [_version(r) for r in rows]

    def get(self, tenant: str, project_id: str, scene_id: str, number: int) -> Version:
        """Version ``number`` of the scene. Raises StudioNotFoundError."""
        with self.db.session() as session:
            self.projects._node_row(session, tenant, project_id, scene_id)
            row = session.scalar(
                select(StudioVersionRow).where(
                    StudioVersionRow.scene_id == scene_id, StudioVersionRow.number == number
                )
            )
            if row is None:
                raise StudioNotFoundError(f"the scene has no version {number}: list its versions")
            return _version(row)

    def current(self, tenant: str, project_id: str, scene_id: str) -> Version | None:
        """The newest version, or None for a scene not written yet."""
        found = self.list(tenant, project_id, scene_id)
        return found[-1] if found else None

    def text(self, tenant: str, project_id: str, scene_id: str) -> str:
        """The scene's current text ("" before its first version)."""
        v = self.current(tenant, project_id, scene_id)
        return v.text if v is not None else ""

    def diff(self, tenant: str, project_id: str, scene_id: str, a: int, b: int) -> list[DiffOp]:
        """The word-level diff from version ``a`` to version ``b`` (``diffs.word_diff``)."""
        old = self.get(tenant, project_id, scene_id, a)
        new = self.get(tenant, project_id, scene_id, b)
        return word_diff(old.text, new.text)

    def restore(self, tenant: str, project_id: str, scene_id: str, number: int, who: str = PERSON) -> Version:
        """Make version ``number``'s text current again: a new version (operation "restore", by ``who``)
        whose detail names the version restored; the versions in between stay."""
        old = self.get(tenant, project_id, scene_id, number)
        return self.add(tenant, project_id, scene_id, old.text, who, "restore", {"restored": number})

    def authors(self, tenant: str, project_id: str, scene_id: str) -> list[tuple[str, str]]:
        """Who wrote each token of the current text: (token, author) pairs, carried through every version
        by word diffs (a restored version's words keep the authors they had, not the restorer)."""
        out: list[tuple[str, str]] = []
        history: dict[int, list[tuple[str, str]]] = {}
        for v in self.list(tenant, project_id, scene_id):
            if v.operation == "restore" and v.detail.get("restored") in history:
                out = list(history[v.detail["restored"]])
            else:
                out = carry_authors(out, v.text, v.author)
            history[v.number] = out
        return out


def _version(r: StudioVersionRow) -> Version:
    return Version(
        r.id, r.scene_id, r.number, r.text, r.author, r.operation, dict(r.detail or {}), as_utc(r.created_at)
    )
