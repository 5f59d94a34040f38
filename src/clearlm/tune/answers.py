"""The four-way question answering after tuning: each domain question answered by the base, the tuned model,
the base with a knowledge base and the tuned model with it, side by side, scored against the references.

Every answer is one governed pipeline turn (:func:`clearlm.pipeline.start_turn`, endpoint ``tune:questions``):
the policy's input and output stages run on it and, with an audit log, it is recorded like any other turn.
With a knowledge base the turn retrieves ``k`` passages (hybrid retrieval) and the model writes its answer
from them (``Retrieval(answer="generate")``, the prompt of :func:`clearlm.knowledge.answer.passage_sources`);
without one, only the base and tuned set-ups are run. Decoding is greedy, so a run is repeatable.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.tune.questions import Question, key_recall, token_f1

SETUPS = ("base", "tuned", "base+kb", "tuned+kb")
INSTRUCTIONS = "Answer the question briefly and precisely, in one or two sentences."
SCORING = {
    "f1": "token F1 against the reference answer (SQuAD v1.1 normalisation: lower case, no punctuation or "
    "articles)",
    "key_recall": "share of the question's key phrases the answer contains (case-insensitive, whole words)",
}


@dataclass(frozen=True, slots=True)
class QuestionSet:
    """What to ask after training: ``questions``; ``knowledge_base`` (an open
    ``clearlm.knowledge.KnowledgeBase``, or None: base and tuned only); ``k`` passages retrieved per question;
    ``max_new_tokens`` per answer; ``instructions``: the system text every answer is asked with."""

    questions: tuple[Question, ...]
    knowledge_base: Any = None
    k: int = 3
    max_new_tokens: int = 64
    instructions: str = INSTRUCTIONS

    def __post_init__(self) -> None:
        if not self.questions:
            raise InvalidInputError("no questions to ask: give a file with at least one question")
        if not 1 <= self.k <= 20:
            raise InvalidInputError(f"passages per question (k) must be 1 to 20, got {self.k}")
        if not 1 <= self.max_new_tokens <= 1024:
            raise InvalidInputError(f"tokens per answer must be 1 to 1024, got {self.max_new_tokens}")
        object.__setattr__(self, "questions", tuple(self.questions))

    @property
    def setups(self) -> tuple[str, ...]:
        return SETUPS if self.knowledge_base is not None else SETUPS[:2]


def answer_with_adapter(backend, peft_model, adapter: str, asked: QuestionSet, **options) -> dict:
    """:func:`answer_questions` by the base inside ``peft_model`` (its adapter switched off for each
    answer) and by ``backend``'s model with ``adapter`` on (PEFT injects the LoRA layers into that module
    in place); ``options``: ``policy``, ``audit``, ``on_answer``."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from clearlm.tune.evaluate import BaseOnly

    tuned = TorchBackend(backend.model, backend.tokenizer, f"{backend.name}:{adapter}")
    return answer_questions(BaseOnly(backend, peft_model), tuned, asked, **options)


def answer_questions(
    base,
    tuned,
    asked: QuestionSet,
    *,
    policy=None,
    audit=None,
    on_answer: Callable[[int, int], None] | None = None,
) -> dict:
    """Answer every question of ``asked`` with ``base`` and ``tuned`` (backends), each with and without the
    knowledge base, through the pipeline; score each answer.

    ``policy``: a ``clearlm.govern.Policy`` for the turns (None: none); ``audit``: a
    ``clearlm.store.AuditLog`` to record them (None: not recorded). ``on_answer(done, total)`` after each.
    A turn that fails with clearlm's own error (e.g. a prompt past the model's context) is kept as that
    answer's ``error`` and scored 0; the others go on.

    Returns ``{"setups", "knowledge_base", "k", "max_new_tokens", "scoring", "rows", "means", "seconds"}``:
    ``rows`` one per question ``{"id", "question", "reference", "key_phrases", "answers": {setup: {"text",
    "finish_reason", "f1", "key_recall", "seconds", "model"[, "passages"][, "error"]}}}``; ``means``
    ``{setup: {"f1", "key_recall"}}`` (key recall over the questions that have key phrases; None when
    none has).
    """
    from clearlm.models import Message, SamplingParams
    from clearlm.pipeline import Retrieval, TurnRequest

    started = time.perf_counter()
    params = SamplingParams(max_new_tokens=asked.max_new_tokens, temperature=0.0)
    models = {"base": base, "tuned": tuned}
    run_id = secrets.token_hex(6)
    total, done, rows = len(asked.questions) * len(asked.setups), 0, []
    for q in asked.questions:
        answers = {}
        for setup in asked.setups:
            backend = models[setup.split("+")[0]]
            retrieval = Retrieval(asked.knowledge_base, asked.k) if setup.endswith("+kb") else None
            request = TurnRequest(
                [Message("user", q.question)],
                params,
                retrieval=retrieval,
                instructions=asked.instructions,
                origin={"tune_questions": run_id, "question": q.id, "setup": setup},
            )
            answers[setup] = _answer(backend, request, q, policy, audit, run_id)
            done += 1
            if on_answer is not None:
                on_answer(done, total)
        rows.append(
            {
                "id": q.id,
                "question": q.question,
                "reference": q.answer,
                "key_phrases": list(q.key_phrases),
                "answers": answers,
            }
        )
    return {
        "setups": list(asked.setups),
        "knowledge_base": getattr(asked.knowledge_base, "name", None),
        "k": asked.k,
        "max_new_tokens": asked.max_new_tokens,
        "instructions": asked.instructions,
        "scoring": SCORING,
        "rows": rows,
        "means": means(rows, asked.setups),
        "seconds": time.perf_counter() - started,
    }


def _answer(backend, request, q: Question, policy, audit, run_id: str) -> dict:
    from clearlm.pipeline import start_turn
    from clearlm.store.audit import AuditRecord

    record = AuditRecord(
        request_id=f"tune-{run_id}-{secrets.token_hex(6)}",
        created_at=datetime.now(UTC),
        endpoint="tune:questions",
    )
    t0 = time.perf_counter()
    out: dict = {"model": backend.name}
    try:
        turn = start_turn(backend, request, record, audit, policy).run()
        choice = turn.choices[0]
        out.update(text=choice.text, finish_reason=choice.finish_reason)
        if turn.grounding is not None:
            out["passages"] = [p.chunk_id for p in turn.grounding.passages]
    except ClearlmError as exc:
        out.update(text="", finish_reason="error", error=str(exc))
    out["f1"] = token_f1(out["text"], q.answer) if out["text"] else 0.0
    recall = key_recall(out["text"], q.key_phrases)
    out["key_recall"] = recall
    out["seconds"] = time.perf_counter() - t0
    return out


def means(rows: list[dict], setups) -> dict:
    """Per set-up, the mean token F1 over ``rows`` and the mean key-phrase recall over the rows that have
    key phrases (None when none has)."""
    out = {}
    for setup in setups:
        f1 = [r["answers"][setup]["f1"] for r in rows]
        recall = [r["answers"][setup]["key_recall"] for r in rows if r["key_phrases"]]
        out[setup] = {
            "f1": sum(f1) / len(f1) if f1 else None,
            "key_recall": sum(recall) / len(recall) if recall else None,
        }
    return out


def summary(report: Mapping) -> dict:
    """What the adapter's card keeps of a four-way report: set-ups, knowledge base, count and means."""
    return {
        "questions": len(report["rows"]),
        "setups": report["setups"],
        "knowledge_base": report["knowledge_base"],
        "means": report["means"],
    }


def _fmt(value, pattern: str = "{:.2f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def markdown(report: Mapping, answers: bool = True) -> list[str]:
    """The four-way table as Markdown lines: the means per set-up, then (``answers``) one line per question
    with each set-up's F1 / key recall, then the answers themselves."""
    setups = report["setups"]
    lines = [
        "## Domain questions, four ways" if len(setups) == 4 else "## Domain questions",
        "",
        f"{len(report['rows'])} questions, greedy answers of at most {report['max_new_tokens']} tokens"
        + (
            f"; with the knowledge base `{report['knowledge_base']}` ({report['k']} passages each)"
            if report.get("knowledge_base")
            else "; no knowledge base given"
        )
        + ". Token F1 against the reference answer, and key-phrase recall.",
        "",
        "| | " + " | ".join(setups) + " |",
        "|---|" + "---|" * len(setups),
        "| mean token F1 | " + " | ".join(_fmt(report["means"][s]["f1"]) for s in setups) + " |",
        "| mean key recall | " + " | ".join(_fmt(report["means"][s]["key_recall"]) for s in setups) + " |",
    ]
    if not answers:
        return [*lines, ""]
    lines += ["", "| question | " + " | ".join(f"{s} F1 / key" for s in setups) + " |"]
    lines.append("|---|" + "---|" * len(setups))
    for r in report["rows"]:
        cells = [f"{_fmt(r['answers'][s]['f1'])} / {_fmt(r['answers'][s]['key_recall'])}" for s in setups]
        lines.append(f"| {r['id']}: {_cell(r['question'])} | " + " | ".join(cells) + " |")
    lines.append("")
    for r in report["rows"]:
        lines += [f"**{r['id']}**: {r['question']}", "", f"- reference: {_cell(r['reference'])}"]
        for s in setups:
            a = r["answers"][s]
            shown = f"(error: {_cell(a['error'])})" if a.get("error") else _cell(a["text"]) or "(empty)"
            lines.append(f"- {s}: {shown}")
        lines.append("")
    return lines


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")
