"""What a generated quiz question must pass before a teacher sees it (pure functions on strings; no model).

The model's reply is JSON ``{"question", "answer", "quote"}`` (:data:`DRAFT_SCHEMA`, enforced while
decoding where the backend can). :func:`check_draft` parses and validates it against the passage it was
written from, and either keeps it (a :class:`Checked` with the citation) or names why it is dropped:

- ``invalid_output``: not JSON of that shape (cut at the token limit, a field missing or too short), or a
  question that does not end with "?" or "." (the model closed it mid-sentence: "What is the default
  behavior of the");
- ``long_key``: a key of more than :data:`MAX_KEY_WORDS` words (not a short answer);
- ``unsupported``: the answer key is not supported by the passage: fewer than :data:`SUPPORT_MIN` of its
  content words (lower-cased, stop words left out, a plural "s" stripped) occur in the passage;
- ``answer_in_question``: every content word of the key is already in the question (it gives itself away).

Keyword support is the lexical test of QA-pair filtering in question generation (answer-span overlap with
the source, as in Alberti et al. 2019's round-trip filtering, here without a second model): a key the model
made up, or copied from the prompt's worked example, shares few words with the passage. The citation is
the passage's sentence holding most of the key's words, then of the question's; between equals, the one the
model quoted (the longest verbatim stretch, ``knowledge.quotes.quoted_span``).

:func:`near_duplicate` compares two questions by the Jaccard similarity of their word sets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clearlm.apps.classroom.rubrics import Criterion, Level, Rubric
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.quotes import quoted_span

MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 200
MAX_QUOTE_CHARS = 400
SUPPORT_MIN = 0.6  # share of the key's content words that must occur in the passage
DUPLICATE_MIN = 0.75  # Jaccard similarity of two questions' word sets from which they are one question
MAX_KEY_WORDS = 20  # a short-answer key; longer ones were passages copied whole (Debian Reference run)
DROP_REASONS = ("invalid_output", "refused", "long_key", "unsupported", "answer_in_question", "duplicate")

DRAFT_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 10, "maxLength": MAX_QUESTION_CHARS},
        "answer": {"type": "string", "minLength": 1, "maxLength": MAX_ANSWER_CHARS},
        "quote": {"type": "string", "maxLength": MAX_QUOTE_CHARS},
    },
    "required": ["question", "answer", "quote"],
    "additionalProperties": False,
}

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+#'./-]*[A-Za-z0-9+#]|[A-Za-z0-9]")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n")  # "3.5", "e.g" inside a word and "a.b" do not end one
_STOP = """a an and any are as at be been by can could did do does for from had has have how i if in into is
    it its may might more most must no not of on one or our should so such than that the their them
    then there these they this those to was we were what when where which who whom whose why will with
    would you your about also called named use used using"""
STOP_WORDS = frozenset(_STOP.split())


class Draft(BaseModel):
    """The model's reply as parsed: a question, its answer key, the sentence it quoted."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(min_length=10, max_length=MAX_QUESTION_CHARS)
    answer: str = Field(min_length=1, max_length=MAX_ANSWER_CHARS)
    quote: str = Field(default="", max_length=MAX_QUOTE_CHARS)


@dataclass(frozen=True, slots=True)
class Checked:
    """A kept question: ``support`` is the share of the key's content words found in the passage (0-1);
    ``citation`` {kb, path, title, heading, chunk_id, quote, start, end, passage}: ``quote`` is the passage's
    sentence the key comes from, ``start``/``end`` its character offsets in the source document (the
    passage's own offsets plus the sentence's), ``passage`` the chunk's whole text."""

    question: str
    answer: str
    support: float
    citation: dict


@dataclass(frozen=True, slots=True)
class Dropped:
    """A draft not kept: ``reason`` (one of :data:`DROP_REASONS`), what the model wrote, the chunk id."""

    reason: str
    text: str
    chunk_id: str
    detail: str = ""


def stems(text: str, keep_stop: bool = False) -> list[str]:
    """The words of ``text``, lower-cased, a plural "s" stripped (words over 3 letters not ending "ss"),
    in order; stop words left out unless ``keep_stop``."""
    out = []
    for word in _WORD.findall(text.lower()):
        word = word.strip("'.-/")
        if not word or (not keep_stop and word in STOP_WORDS):
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def support(answer: str, passage: str) -> float:
    """The share (0-1) of ``answer``'s distinct content words that occur in ``passage`` (0 when the
    answer has none)."""
    words = set(stems(answer))
    if not words:
        return 0.0
    return len(words & set(stems(passage, keep_stop=True))) / len(words)


def sentences(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of ``text`` (ended by . ! ? before white space or the end, or by a
    new line), white space trimmed."""
    out, start = [], 0
    for stop in [*(m.end() for m in _SENTENCE_END.finditer(text)), len(text)]:
        a, b = start, stop
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
        start = stop
    return out


def cited_sentence(passage: str, answer: str, question: str, quote: str) -> tuple[int, int]:
    """[start, end) in ``passage`` of the sentence the question and key come from: the one with the most
    of the key's content words, then of the question's, then the one holding the longest verbatim
    stretch of the model's ``quote`` (at least ``quotes.MIN_QUOTE`` characters), then the first."""
    spans = sentences(passage) or [(0, len(passage))]
    key, asked = set(stems(answer)), set(stems(question))
    found = quoted_span(quote, passage) if quote else None

    def rank(span: tuple[int, int]) -> tuple[int, int, bool, int]:
        words = set(stems(passage[span[0] : span[1]], keep_stop=True))
        quoted = found is not None and span[0] <= found[0] < span[1]
        return len(key & words), len(asked & words), quoted, -span[0]

    return max(spans, key=rank)


def parse_draft(text: str) -> Draft | str:
    """The :class:`Draft` in the model's reply ``text``, or a message saying why it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        return "not JSON (cut at the token limit?)"
    if not isinstance(data, dict):
        return "not a JSON object"
    try:
        return Draft.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"{'.'.join(map(str, err['loc'])) or 'reply'}: {err['msg']}"


def check_draft(text: str, passage: Passage, kb: str) -> Checked | Dropped:
    """Keep or drop the model's reply ``text`` to ``passage`` (of the knowledge base ``kb``); see the
    module docstring for the reasons."""
    draft = parse_draft(text)
    if isinstance(draft, str):
        return Dropped("invalid_output", text, passage.chunk_id, draft)
    if not draft.question.endswith(("?", ".")):
        return Dropped(
            "invalid_output", text, passage.chunk_id, "the question does not end with '?' (cut off?)"
        )
    if len(draft.answer.split()) > MAX_KEY_WORDS:
        detail = f"the key is {len(draft.answer.split())} words; a short answer is at most {MAX_KEY_WORDS}"
        return Dropped("long_key", text, passage.chunk_id, detail)
    share = support(draft.answer, passage.text)
    if share < SUPPORT_MIN:
        detail = f"{share:.0%} of the key's content words are in the passage (needs {SUPPORT_MIN:.0%})"
        return Dropped("unsupported", text, passage.chunk_id, detail)
    if set(stems(draft.answer)) <= set(stems(draft.question, keep_stop=True)):
        return Dropped("answer_in_question", text, passage.chunk_id, "the question holds every key word")
    start, end = cited_sentence(passage.text, draft.answer, draft.question, draft.quote)
    citation = {
        "kb": kb,
        "path": passage.path,
        "title": passage.title,
        "heading": passage.heading,
        "chunk_id": passage.chunk_id,
        "quote": passage.text[start:end],
        "start": passage.start + start,
        "end": passage.start + end,
        "passage": passage.text,
    }
    return Checked(
        " ".join(draft.question.split()), " ".join(draft.answer.split()), round(share, 4), citation
    )


def near_duplicate(a: str, b: str) -> bool:
    """True when questions ``a`` and ``b`` share at least :data:`DUPLICATE_MIN` of their words
    (Jaccard similarity of the word sets, stop words kept)."""
    x, y = set(stems(a, keep_stop=True)), set(stems(b, keep_stop=True))
    if not x or not y:
        return x == y
    return len(x & y) / len(x | y) >= DUPLICATE_MIN


def quiz_rubric(question_id: str, subject: str, question: str, answer: str) -> Rubric:
    """The rubric of a quiz question (``rubrics.Rubric``, so ``clearlm classroom grade`` can use it): one
    criterion ``answer`` with levels 2 (the key), 1 (part of it), 0 (neither); the key as reference answer
    and key points (split at ";"); scale {0: 0, 1: 1, 2: 2}."""
    points = tuple(p.strip() for p in answer.split(";") if p.strip()) or (answer,)
    criterion = Criterion(
        id="answer",
        description=f"Gives the answer key: {answer}",
        levels=(
            Level(points=2, descriptor=f"States the key correctly: {answer}"),
            Level(points=1, descriptor="Partly right: part of the key, or the key with an error."),
            Level(points=0, descriptor="Wrong, missing or off the question."),
        ),
    )
    return Rubric(
        id=question_id,
        version=1,
        subject=subject,
        question=question,
        reference_answer=answer,
        key_points=points,
        max_points=2,
        criteria=(criterion,),
        scale={0: 0, 1: 1, 2: 2},
    )
