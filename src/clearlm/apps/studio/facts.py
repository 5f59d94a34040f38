"""The deterministic first pass of the consistency check: simple facts read from text by patterns, so
that a draft giving a character another eye colour, or a place another year, is caught without a model.

Facts read (attribute: value), each from one sentence:

- ``eye colour`` and ``hair colour``: a colour word before "eyes"/"hair" ("her green eyes", "grey-eyed"),
  or after it ("his eyes were brown");
- ``year <event>``: a year (1000-2099) in a sentence with an event word (born, died, founded, built, lit,
  opened, married, ...), e.g. "first lit in 1931" gives ``year lit``: 1931.

In a bible entry every fact is the entry's. In a scene a fact is the entry named in its sentence (the
nearest mention before it), or, for a sentence with a personal pronoun and no name, the character named
last in the sentences before it (a simple coreference rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearlm.apps.studio.bible import BibleEntry, first_mention

COLOURS = [
    "amber",
    "black",
    "blonde",
    "blond",
    "blue",
    "brown",
    "chestnut",
    "copper",
    "dark",
    "emerald",
    "golden",
    "gold",
    "gray",
    "green",
    "grey",
    "hazel",
    "ginger",
    "red",
    "silver",
    "violet",
    "white",
    "auburn",
]
SAME = {"grey": "gray", "blond": "blonde", "gold": "golden", "emerald": "green"}
EVENTS = [
    "born",
    "died",
    "founded",
    "built",
    "lit",
    "opened",
    "married",
    "crowned",
    "sank",
    "burned",
    "closed",
    "moved",
]
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'”’]?|\n|$)")
PRONOUN = re.compile(r"\b(?:he|she|his|her|hers|him|they|their)\b", re.IGNORECASE)
_C = "|".join(COLOURS)
_BEFORE = re.compile(rf"\b({_C})(?:[- ](?:\w+[- ])?)(eyes|eyed|hair|haired)\b", re.IGNORECASE)
_AFTER = re.compile(rf"\b(eyes|hair)\s+(?:\w+\s+){{0,2}}?(?:were|was|are|is|of)\s+(?:\w+\s+)?({_C})\b", re.I)
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
_EVENT = re.compile(rf"\b({'|'.join(EVENTS)})\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fact:
    """``attribute`` = ``value``, read from ``sentence`` (at [start, end) of its text)."""

    attribute: str
    value: str
    sentence: str
    start: int
    end: int


def sentences(text: str) -> list[tuple[int, int, str]]:
    """(start, end, sentence) of each non-blank sentence of ``text``, offsets into it."""
    out = []
    for m in SENTENCE.finditer(text):
        s = m.group(0)
        if s.strip():
            lead = len(s) - len(s.lstrip())
            out.append((m.start() + lead, m.end(), s.strip()))
    return out


def _norm(colour: str) -> str:
    c = colour.lower()
    return SAME.get(c, c)


def read_facts(sentence: str) -> list[tuple[str, str, int]]:
    """(attribute, value, offset in the sentence) of each fact of one sentence."""
    out = []
    for m in _BEFORE.finditer(sentence):
        part = "eye" if m.group(2).lower().startswith("eye") else "hair"
        out.append((f"{part} colour", _norm(m.group(1)), m.start()))
    for m in _AFTER.finditer(sentence):
        part = "eye" if m.group(1).lower() == "eyes" else "hair"
        out.append((f"{part} colour", _norm(m.group(2)), m.start()))
    event = _EVENT.search(sentence)
    if event:
        for m in _YEAR.finditer(sentence):
            out.append((f"year {event.group(1).lower()}", m.group(1), m.start()))
    return out


def entry_facts(entry: BibleEntry) -> list[Fact]:
    """The facts of a bible entry (all of them the entry's)."""
    return [Fact(a, v, s, st, en) for st, en, s in sentences(entry.text) for a, v, _ in read_facts(s)]


def scene_facts(text: str, entries: list[BibleEntry]) -> list[tuple[BibleEntry, Fact]]:
    """The facts of a scene, each with the entry it is about (see the module docstring)."""
    out = []
    last_character: BibleEntry | None = None
    for start, end, s in sentences(text):
        named = [(m.at, e) for e in entries if (m := first_mention(e, s)) is not None]
        for attribute, value, at in read_facts(s):
            before = [(pos, e) for pos, e in named if pos <= at]
            subject = max(before, key=lambda x: x[0])[1] if before else (named[0][1] if named else None)
            if subject is None and last_character is not None and PRONOUN.search(s):
                subject = last_character
            if subject is not None:
                out.append((subject, Fact(attribute, value, s, start, end)))
        characters = [e for _, e in sorted(named, key=lambda x: x[0]) if e.kind == "character"]
        if characters:
            last_character = characters[-1]
    return out


def about(text: str, entries: list[BibleEntry]) -> list[tuple[int, int, str, list[BibleEntry]]]:
    """(start, end, sentence, entries it is about) of each sentence of ``text`` that is about an entry:
    those it names, else (a sentence with a personal pronoun) the character named last before it."""
    out = []
    last_character: BibleEntry | None = None
    for start, end, s in sentences(text):
        named = sorted(
            ((m.at, e) for e in entries if (m := first_mention(e, s)) is not None), key=lambda x: x[0]
        )
        subjects = [e for _, e in named]
        if not subjects and last_character is not None and PRONOUN.search(s):
            subjects = [last_character]
        if subjects:
            out.append((start, end, s, subjects))
        characters = [e for _, e in named if e.kind == "character"]
        if characters:
            last_character = characters[-1]
    return out
