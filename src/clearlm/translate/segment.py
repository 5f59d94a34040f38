"""Sentence segmentation, whole and streaming, rule-based in the manner of the Punkt and pySBD rule
sets (Kiss & Strunk 2006; Sadvilkar & Neumann 2020) but reduced to what translation needs.

A sentence ends at ``.``, ``!``, ``?``, ``…`` (and closing quotes or brackets after it) followed by
whitespace, or at a blank line. Not a boundary: a decimal or version (``3.5``, ``v2.1``: no whitespace
after the dot), a known abbreviation (``Dr.``, ``e.g.``, ``etc.`` before a lower-case word, ``U.S.``),
a single capital initial (``J. Smith``), or a dot followed by a lower-case word (``approx. five``).

:class:`SentenceStream` takes text in pieces (typed, or from speech) and gives each sentence as soon as it
is complete: its closing punctuation and the whitespace after it have arrived (the word before is
checked against the abbreviations, so ``Dr. `` waits for more).
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cf",
        "al",
        "approx",
        "dept",
        "est",
        "fig",
        "no",
        "nos",
        "vol",
        "p",
        "pp",
        "ch",
        "sec",
        "inc",
        "ltd",
        "co",
        "corp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "ph.d",
        "b.sc",
        "m.sc",
        "sra",
        "srta",
        "dra",
        "lic",
        "ud",
        "uds",
        "pág",
        "núm",
        "av",
        "sr.a",
    ]
)
# always followed by more of the same sentence, whatever the next word's case
ALWAYS_INNER = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "mt",
        "sra",
        "srta",
        "dra",
        "ud",
        "uds",
        "vol",
        "pp",
        "fig",
        "e.g",
        "i.e",
        "cf",
        "vs",
    ]
)
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*")
_BLANK = re.compile(r"\n[ \t]*\n")


def _word_before(text: str, dot: int) -> str:
    """The word (letters and inner dots) ending just before ``text[dot]``."""
    start = dot
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    return text[start:dot].lower().strip(".")


def _boundary(text: str, m: re.Match, final: bool) -> bool | None:
    """Whether the terminal punctuation ``m`` ends a sentence: True, False, or None (undecided: the text
    after it has not arrived yet)."""
    after = m.end()
    if after < len(text) and not text[after].isspace():
        return False  # 3.5, example.com, "?!" inside a word
    rest = text[after:].lstrip()
    if not rest and not final and after == len(text):
        return None  # the whitespace after it has not arrived
    punct = m.group(0)
    if punct.startswith(".") and len(punct.rstrip("\"'”’»)]")) == 1:
        word = _word_before(text, m.start())
        if word in ALWAYS_INNER or (len(word) == 1 and word.isalpha() and text[m.start() - 1].isupper()):
            return False
        if not rest:
            return True if final else (None if word in ABBREVIATIONS else True)
        if rest[0].islower():
            return False  # "approx. five", "etc. and"
        if word in ABBREVIATIONS and "." in word:
            return False  # "U.S. Army", "e.g. The"
    return True


def _split(text: str, final: bool) -> tuple[list[str], str]:
    """(complete sentences, the rest that is not complete yet)."""
    out, start = [], 0
    for para in _BLANK.finditer(text):
        out.extend(_split_run(text[start : para.start()], True)[0])
        start = para.end()
    done, rest = _split_run(text[start:], final)
    return [*out, *done], rest


def _split_run(text: str, final: bool) -> tuple[list[str], str]:
    out, start = [], 0
    for m in _END.finditer(text):
        if m.start() < start:
            continue
        decided = _boundary(text, m, final)
        if decided is None:
            break
        if decided:
            sentence = text[start : m.end()].strip()
            if sentence:
                out.append(sentence)
            start = m.end()
    rest = text[start:]
    if final and rest.strip():
        out.append(rest.strip())
        rest = ""
    return out, rest


def split_sentences(text: str) -> list[str]:
    """``text``'s sentences, in order, each stripped of surrounding whitespace (inner line breaks kept).

    >>> split_sentences("Dr. Smith paid 3.5 euros. It arrived, e.g. on Monday! Fine?")
    ['Dr. Smith paid 3.5 euros.', 'It arrived, e.g. on Monday!', 'Fine?']
    """
    return _split(text, final=True)[0]


class SentenceStream:
    """Sentences from text arriving in pieces: :meth:`feed` a piece, get the sentences it completed;
    :meth:`close` gives what is left (the last sentence, even without closing punctuation)."""

    def __init__(self) -> None:
        self._buffer = ""

    @property
    def pending(self) -> str:
        """Text received that is not yet a complete sentence."""
        return self._buffer

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        done, self._buffer = _split(self._buffer, final=False)
        return done

    def close(self) -> list[str]:
        done, self._buffer = _split(self._buffer, final=True)
        return done
