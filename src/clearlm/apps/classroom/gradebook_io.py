"""The gradebook's files: a batch of answers in (CSV or JSONL, columns ``id``, ``learner``, ``answer``),
grades and feedback out (CSV).

Every reading error raises :class:`~clearlm.errors.InvalidInputError` naming the file (and line) and what
to fix: an unreadable or non-UTF-8 file, a missing column, an empty or over-long id or learner, an id given
twice. CSV cells a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, tab or CR) are
written with a leading ``'`` (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from clearlm.errors import InvalidInputError

COLUMNS = ("id", "learner", "answer")
MAX_ID_CHARS = 128  # the width of classroom_grades.answer_id and .learner


@dataclass(frozen=True, slots=True)
class AnswerIn:
    """One answer to grade: ``id`` (the caller's, unique per rubric version), ``learner``, ``answer``."""

    id: str
    learner: str
    answer: str


def check_answer(row: dict, where: str) -> AnswerIn:
    """An :class:`AnswerIn` from a mapping with ``id``, ``learner`` and ``answer`` (InvalidInputError:
    a missing or blank field, an id or learner over 128 characters, a non-text value)."""
    missing = [c for c in COLUMNS if c not in row or row[c] is None]
    if missing:
        raise InvalidInputError(
            f"{where}: missing {', '.join(missing)}; every answer needs {', '.join(COLUMNS)}"
        )
    values = {c: row[c] if isinstance(row[c], str) else None for c in COLUMNS}
    if any(v is None for v in values.values()):
        raise InvalidInputError(f"{where}: id, learner and answer must be text")
    for c in ("id", "learner"):
        v = values[c].strip()
        if not v or len(v) > MAX_ID_CHARS:
            raise InvalidInputError(f"{where}: {c} must be 1-{MAX_ID_CHARS} characters, got {v[:40]!r}")
        values[c] = v
    if any("\x00" in v for v in values.values()):
        raise InvalidInputError(f"{where}: a NUL character in the id, learner or answer; remove it")
    return AnswerIn(values["id"], values["learner"], values["answer"])


def read_answers(path: str | Path) -> list[AnswerIn]:
    """The answers in ``path``: ``.jsonl`` (one JSON object a line) or ``.csv`` (a header row), in file
    order. Raises InvalidInputError (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the answers file {path}: {exc}") from None
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        answers = _jsonl(text, path)
    elif path.suffix.lower() == ".csv":
        answers = _csv(text, path)
    else:
        raise InvalidInputError(
            f"{path}: give a .csv or .jsonl file of answers (columns {', '.join(COLUMNS)})"
        )
    seen: set[str] = set()
    for a in answers:
        if a.id in seen:
            raise InvalidInputError(f"{path}: the answer id {a.id!r} appears twice; ids must be unique")
        seen.add(a.id)
    if not answers:
        raise InvalidInputError(f"{path}: no answers in the file")
    return answers


def _jsonl(text: str, path: Path) -> list[AnswerIn]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}, line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{path}, line {n}: each line is an object with {', '.join(COLUMNS)}")
        out.append(check_answer(row, f"{path}, line {n}"))
    return out


def _csv(text: str, path: Path) -> list[AnswerIn]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InvalidInputError(
                f"{path}: the header lacks the column(s) {', '.join(missing)}; it needs {', '.join(COLUMNS)} "
                f"(found {', '.join(header) or 'none'})"
            )
        return [check_answer(row, f"{path}, line {reader.line_num}") for row in reader]
    except csv.Error as exc:
        raise InvalidInputError(f"{path}: not a readable CSV file ({exc})") from None


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text (a formula-like value gets a leading ``'``)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def grades_csv(grades: list, criteria: list[str]) -> str:
    """CSV text of ``grades`` (:class:`~clearlm.apps.classroom.gradebook.StoredGrade`): one row per grade
    with the final score, the model's, the status, each criterion's points and the feedback."""
    out = io.StringIO()
    writer = csv.writer(out)
    head = ["answer_id", "learner", "rubric_id", "rubric_version", "score", "model_score", "confidence"]
    writer.writerow(
        [*head, "status", *[f"points_{c}" for c in criteria], "feedback", "note", "decided_by", "grade_id"]
    )
    for g in grades:
        points = g.points()
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    g.answer_id,
                    g.learner,
                    g.rubric_id,
                    g.rubric_version,
                    g.final_score,
                    g.score,
                    f"{g.confidence:.4f}",
                    g.status,
                    *[points.get(c, "") for c in criteria],
                    g.feedback(),
                    (g.decision or {}).get("note") or "",
                    g.decided_by or "",
                    g.id,
                )
            ]
        )
    return out.getvalue()
