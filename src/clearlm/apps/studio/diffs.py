"""Word-level diffs between two texts, and authorship carried through a scene's versions.

A text is cut into tokens: words (``\\w+`` runs, apostrophes and hyphens inside a word kept), single
punctuation marks, and whitespace runs; the diff is Python's ``difflib.SequenceMatcher`` (Ratcliff and
Obershelp's gestalt matching) over those tokens with its junk heuristic off, so a change of one word is
one ``replace`` of that word, never of the characters inside it. Joining every token of a side gives the
text back exactly.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

TOKEN = re.compile(r"\w+(?:['’-]\w+)*|\s+|[^\w\s]")


def tokens(text: str) -> list[str]:
    """``text`` cut into words, whitespace runs and punctuation marks (``"".join(tokens(t)) == t``)."""
    return TOKEN.findall(text)


@dataclass(frozen=True, slots=True)
class DiffOp:
    """One run of the diff: ``op`` is "equal", "insert", "delete" or "replace"; ``old`` and ``new`` the
    texts of each side (empty where the side has none)."""

    op: str
    old: str
    new: str

    def to_dict(self) -> dict:
        return {"op": self.op, "old": self.old, "new": self.new}


def word_diff(old: str, new: str) -> list[DiffOp]:
    """The word-level diff from ``old`` to ``new``: ops in text order; the ``old`` fields joined give
    ``old`` and the ``new`` fields give ``new``."""
    a, b = tokens(old), tokens(new)
    out: list[DiffOp] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out.append(DiffOp(tag, "".join(a[i1:i2]), "".join(b[j1:j2])))
    return out


def diff_stats(ops: list[DiffOp]) -> dict[str, int]:
    """Words added and removed by a diff: {"added": n, "removed": m} (a replaced word counts in both)."""
    added = sum(_words(o.new) for o in ops if o.op in ("insert", "replace"))
    removed = sum(_words(o.old) for o in ops if o.op in ("delete", "replace"))
    return {"added": added, "removed": removed}


def _words(text: str) -> int:
    return sum(1 for t in tokens(text) if not t.isspace())


def carry_authors(previous: list[tuple[str, str]], text: str, author: str) -> list[tuple[str, str]]:
    """Authorship of every token of ``text``: tokens kept from ``previous`` (a list of (token, author) of
    the version before) keep their author; inserted or replaced ones are ``author``'s."""
    old = [t for t, _ in previous]
    new = tokens(text)
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend((new[j1 + k], previous[i1 + k][1]) for k in range(i2 - i1))
        elif tag in ("insert", "replace"):
            out.extend((t, author) for t in new[j1:j2])
    return out
