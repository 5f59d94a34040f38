"""What a cited answer quotes: the abstention sentence, the sentence each citation closes, and the longest
stretch of that sentence found verbatim in a passage (pure functions on strings; no model).

The quoted span of a citation is the longest common substring (``difflib.SequenceMatcher``) of the
sentence it closes and the cited passage's text, stripped of white space at both ends, when it has at least
``MIN_QUOTE`` characters: character offsets [start, end) in the passage text.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# The whole answer when no passage answers the question (the prompt asks for it word for word).
NO_ANSWER = "The documents do not say."
# Shortest verbatim stretch (characters, white space at its ends not counted) that counts as a quote: a
# command with an option ("ls -l /"), a path, a value with its unit; shorter matches are mostly common
# words ("the ", " is a ").
MIN_QUOTE = 8

_CITATION = re.compile(r"\[\s*\d+(?:\s*(?:[,;]|[-–])\s*\d+)*\s*\]")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
_CORE = re.compile(r"^\W*(the )?(documents|passages|provided passages|given passages) do(es)? not say\b")


def is_abstention(text: str) -> bool:
    """True when ``text`` is the abstention: it begins (after citation brackets, white space and case
    are set aside) with ``NO_ANSWER`` less its full stop, e.g. "The documents do not say", "the
    documents do not say. [2]", "The passages do not say how." Returns False for an empty text."""
    flat = re.sub(r"\s+", " ", _CITATION.sub(" ", text)).strip().lower()
    return bool(_CORE.match(flat))


def sentence_before(text: str, position: int) -> str:
    """The sentence that a citation at ``position`` of ``text`` closes: the text before it back to the
    previous sentence end (". ", "! ", "? " or a new line), with trailing white space and punctuation and
    any citation brackets removed."""
    before = text[:position].rstrip()
    while True:  # "fact. [1]" and "fact [1][2]": the closing mark and earlier brackets belong to it
        stripped = _CITATION.sub("", before).rstrip().rstrip(".!?;:,").rstrip()
        if stripped == before:
            break
        before = stripped
    ends = list(_SENTENCE_END.finditer(before))
    start = ends[-1].end() if ends else 0
    return _CITATION.sub("", before[start:]).strip()


def quoted_span(sentence: str, passage: str, minimum: int = MIN_QUOTE) -> tuple[int, int] | None:
    """[start, end) in ``passage`` of the longest stretch of ``sentence`` found in it verbatim (white space
    at its ends trimmed), or None when that stretch is shorter than ``minimum`` characters."""
    if not sentence or not passage:
        return None
    match = SequenceMatcher(None, sentence, passage, autojunk=False).find_longest_match(
        0, len(sentence), 0, len(passage)
    )
    start, end = match.b, match.b + match.size
    while start < end and passage[start].isspace():
        start += 1
    while end > start and passage[end - 1].isspace():
        end -= 1
    return (start, end) if end - start >= minimum else None


def best_quoted(
    sentence: str, passages: list[str], minimum: int = MIN_QUOTE
) -> tuple[int, tuple[int, int]] | None:
    """The 0-based index of the passage ``sentence`` quotes the longest stretch of, and that span; None
    when it quotes none of them (``quoted_span``). Ties go to the earlier passage."""
    best = None
    for i, text in enumerate(passages):
        span = quoted_span(sentence, text, minimum)
        if span is not None and (best is None or span[1] - span[0] > best[1][1] - best[1][0]):
            best = (i, span)
    return best


def without_citations(text: str) -> str:
    """``text`` with its citation brackets removed (for quoting an answer that cites nothing)."""
    return _CITATION.sub("", text)
