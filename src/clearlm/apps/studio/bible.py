"""The story bible's entries and which of them enter a model's context.

An entry enters the context of an operation when its name or one of its aliases is mentioned in the
text the operation works from (the scene's beats, its text, the selection), matched case-insensitively
on word boundaries ("Mara" matches "Mara's" but not "Marathon"), as NovelCrafter's codex and Kobold's
world info do; entries of kind "style" (the style guide) always enter. Mentioned entries come in order
of first mention, then the style entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("character", "place", "style", "fact", "memory")
ALWAYS = ("style",)
MAX_NAME_CHARS = 200
MAX_ENTRY_CHARS = 4_000
MAX_ALIASES = 20


@dataclass(frozen=True, slots=True)
class BibleEntry:
    """One entry: ``kind`` (one of :data:`KINDS`), ``name``, ``aliases`` and ``text``; ``source`` is
    "person" or the chapter a memory entry summarises."""

    id: str
    kind: str
    name: str
    text: str
    aliases: tuple[str, ...] = ()
    source: str = "person"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "aliases": list(self.aliases),
            "text": self.text,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Mention:
    """Where an entry is first mentioned: the name or alias matched and its character offset."""

    entry: BibleEntry
    matched: str
    at: int = field(default=-1)


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(?<!\w){re.escape(name.strip())}(?!\w)", re.IGNORECASE)


def first_mention(entry: BibleEntry, text: str) -> Mention | None:
    """The earliest mention of ``entry`` in ``text`` (by name or alias), or None."""
    best: Mention | None = None
    for name in entry.names:
        if not name.strip():
            continue
        m = _pattern(name).search(text)
        if m and (best is None or m.start() < best.at):
            best = Mention(entry, m.group(0), m.start())
    return best


def mentioned(entries: list[BibleEntry], *texts: str) -> list[Mention]:
    """The entries mentioned in any of ``texts``, in order of first mention (texts taken in order)."""
    joined = "\n".join(t for t in texts if t)
    found = [m for e in entries if e.kind not in ALWAYS and (m := first_mention(e, joined)) is not None]
    return sorted(found, key=lambda m: m.at)


def in_context(entries: list[BibleEntry], *texts: str) -> list[BibleEntry]:
    """The entries that enter the context of an operation on ``texts``: those mentioned (first mention
    first), then every style entry."""
    chosen = [m.entry for m in mentioned(entries, *texts)]
    return chosen + [e for e in entries if e.kind in ALWAYS]


def render(entries: list[BibleEntry]) -> str:
    """The entries as the model reads them: one ``[kind] Name (aka alias, ...): text`` line each."""
    lines = []
    for e in entries:
        aka = f" (also: {', '.join(e.aliases)})" if e.aliases else ""
        lines.append(f"[{e.kind}] {e.name}{aka}: {e.text.strip()}")
    return "\n".join(lines)
