"""Domain questions for the four-way comparison after tuning: the question file and the scores.

A question file is JSONL (one object a line) or YAML (a list of objects, or a mapping with a
``questions`` list). Each object::

    {"question": "Which file holds the system-wide default locale?",
     "answer": "/etc/default/locale",                 # the reference answer, written by a person
     "key_phrases": ["/etc/default/locale"],          # optional ("key" is accepted too)
     "id": "locale-file"}                              # optional (default: q1, q2, ...)

Two scores per answer:

- **token F1** against the reference: SQuAD's answer normalisation (lower case, punctuation and the
  articles a/an/the removed, white space collapsed), then the F1 of the two bags of words (Rajpurkar et al.
  2016, "SQuAD: 100,000+ Questions for Machine Comprehension of Text"; their ``evaluate-v1.1.py``). Long,
  correct answers score low against a short reference: compare set-ups with each other, not with 1.
- **key-phrase recall**: the share of the question's key phrases that the answer contains (case-insensitive,
  white space collapsed, a phrase not glued to letters or digits on either side: "LANG" is not found in
  "LANGUAGE"); None for a question without key phrases.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from clearlm.errors import InvalidInputError

MAX_QUESTIONS = 200
MAX_CHARS = 2000  # per question, reference answer or key phrase
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True, slots=True)
class Question:
    """One domain question: ``question``, its reference ``answer`` and optional ``key_phrases``."""

    id: str
    question: str
    answer: str
    key_phrases: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "key_phrases": list(self.key_phrases),
        }


def load_questions(path: str | Path) -> list[Question]:
    """The questions of a JSONL or YAML file (``.jsonl``/``.json`` read as JSONL; ``.yaml``/``.yml`` as YAML).

    Raises:
        InvalidInputError: unreadable or empty file, bad JSON/YAML (with the line), a question without
            ``question`` or ``answer`` text, key phrases that are not a list of strings, duplicate ids,
            unknown fields, more than ``MAX_QUESTIONS`` questions.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the questions file {path}: {exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        items = _yaml_items(path, text)
    else:
        items = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((f"{path.name} line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"{path.name} line {n} is not JSON ({exc.msg}): write one question object per line"
                ) from None
    if not items:
        raise InvalidInputError(f"{path} holds no questions: add objects with 'question' and 'answer'")
    if len(items) > MAX_QUESTIONS:
        raise InvalidInputError(f"{path} holds {len(items)} questions: use at most {MAX_QUESTIONS}")
    questions = [_question(where, item, i) for i, (where, item) in enumerate(items, start=1)]
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise InvalidInputError(f"{path.name}: the id {q.id!r} is used twice: give each question its own")
        seen.add(q.id)
    return questions


def _yaml_items(path: Path, text: str) -> list[tuple[str, object]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path.name} is not valid YAML: {exc}") from None
    if isinstance(data, dict) and "questions" in data:
        data = data["questions"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidInputError(
            f"{path.name} must be a YAML list of questions (or a mapping with 'questions')"
        )
    return [(f"{path.name} question {i}", item) for i, item in enumerate(data, start=1)]


FIELDS = ("id", "question", "answer", "key_phrases", "key")


def _question(where: str, item: object, number: int) -> Question:
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where}: a question is an object with 'question' and 'answer'")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    texts = {}
    for name in ("question", "answer"):
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{where}: '{name}' must be a non-empty string")
        if len(value) > MAX_CHARS:
            raise InvalidInputError(f"{where}: '{name}' is longer than {MAX_CHARS} characters")
        texts[name] = value.strip()
    phrases = item.get("key_phrases", item.get("key", []))
    if isinstance(phrases, str):
        phrases = [phrases]
    if not isinstance(phrases, list) or not all(isinstance(p, str) and p.strip() for p in phrases):
        raise InvalidInputError(f"{where}: 'key_phrases' must be a list of non-empty strings")
    qid = item.get("id", f"q{number}")
    if not isinstance(qid, str | int) or not str(qid).strip():
        raise InvalidInputError(f"{where}: 'id' must be a non-empty string")
    return Question(str(qid).strip(), texts["question"], texts["answer"], tuple(p.strip() for p in phrases))


def normalise(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    """F1 of the normalised word bags of ``prediction`` and ``reference`` (0.0 to 1.0; 1.0 when both
    normalise to nothing, 0.0 when only one does), as SQuAD v1.1's ``f1_score``."""
    pred, ref = normalise(prediction).split(), normalise(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``text`` states ``phrase``: case-insensitive, white space collapsed, not inside a longer
    word (no letter, digit or underscore glued to either end)."""
    text, phrase = " ".join(text.lower().split()), " ".join(phrase.lower().split())
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", text) is not None


def key_recall(prediction: str, phrases: tuple[str, ...] | list[str]) -> float | None:
    """The share of ``phrases`` that ``prediction`` contains (see :func:`contains_phrase`); None without
    phrases."""
    if not phrases:
        return None
    return sum(contains_phrase(prediction, p) for p in phrases) / len(phrases)
