"""The chat tutor's leak check (``tutor_chat.py``): whether a reply gives an open item's answer away, and
the hint-style nudge that replaces it.

The check is the one every hint of a course passes when the course is loaded (``Answer.given_away_by``:
the accepted answer as a whole phrase after the same normalisation as a learner's answer; for a number
item any number of the same value, so 3/4, 0.75 and 6/8 all give 3/4 away), with citation brackets such
as ``[2]`` left out (a citation is not a number of the answer), plus fractions written in words
("three quarters", "one and a half"). Not caught: other wordings of a value ("seventy-five per cent" for
75%, "a thousand two hundred"), and an answer given as steps whose result is left unwritten.
"""

from __future__ import annotations

import re
from fractions import Fraction

from clearlm.apps.classroom.items import Item

NUDGE = "I can't give you the answer to the question you are working on, but here is a hint: {hint}"
NUDGE_NO_HINT = (
    "I can't give you the answer to the question you are working on. Break it into steps and try each "
    "one; the worked solution appears once you have answered."
)
_CITATION = re.compile(r"\[\s*\d+(?:\s*(?:[,;]|[-–])\s*\d+)*\s*\]")
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}  # fmt: skip
_PARTS = {"half": 2, "halve": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
          "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "hundredth": 100}  # fmt: skip
# "three quarters", "one and a half", "2 and three fifths": a fraction written in words
_SPELLED = re.compile(
    rf"(?:\b(?P<whole>{'|'.join(_COUNTS)}|\d+)\s+and\s+)?\b(?P<n>{'|'.join(_COUNTS)})[\s-]+"
    rf"(?P<d>{'|'.join(_PARTS)})s?\b",
    re.IGNORECASE,
)


def leak(items: list[Item], texts: list[str]) -> tuple[Item, str] | None:
    """The first (item, what gave it away) such that one of ``texts`` gives ``item``'s answer away
    (``Answer.given_away_by``, citation brackets such as ``[2]`` left out; for a number item also a
    fraction in words of the same value: "three quarters", "one and a half"), or None."""
    for item in items:
        for text in texts:
            text = _CITATION.sub(" ", text)
            found = item.answer.given_away_by(text)
            if found is None and item.answer.kind == "number":
                found = next((w for w, v in spelled_fractions(text) if item.check(str(v))), None)
            if found is not None:
                return item, found
    return None


def spelled_fractions(text: str) -> list[tuple[str, Fraction]]:
    """The fractions written in words in ``text``, as (the words, the value): "three quarters" (3/4),
    "a half" (1/2), "one and a half" (3/2), "2 and three fifths" (13/5); numerators up to twelve."""
    out = []
    for m in _SPELLED.finditer(text):
        n, d = _COUNTS[m["n"].lower()], _PARTS[m["d"].lower()]
        whole = m["whole"]
        value = Fraction(n, d) + (0 if whole is None else int(_COUNTS.get(whole.lower(), whole)))
        out.append((m.group(0), value))
    return out


def nudge(item: Item, hints_seen: int) -> tuple[str, int | None]:
    """The hint-style reply that replaces a leaking one: (text, index of the hint it gives). The next hint
    the learner has not seen (the last one once all are seen); without hints, a general nudge (None)."""
    if not item.hints:
        return NUDGE_NO_HINT, None
    index = min(max(hints_seen, 0), len(item.hints) - 1)
    return NUDGE.format(hint=item.hints[index]), index
