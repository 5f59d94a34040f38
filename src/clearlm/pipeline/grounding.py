"""Retrieved passages in a pipeline turn: the request for them (:class:`Retrieval`), what a turn answered
from (:class:`Grounding`), and the input policy's screening of every passage before it enters a prompt
(indirect prompt injection, PII): a blocked passage is quarantined, a redacted one redacted."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from clearlm.errors import InvalidInputError
from clearlm.govern.base import Action, ScanContext
from clearlm.govern.policy import Policy
from clearlm.models.chat import Message, Prompt

NO_PASSAGES = (  # the answer when every passage was quarantined
    "I can't answer this from the knowledge base: every passage found for the question was withheld "
    "by the content policy."
)


# How a turn with retrieval answers: "generate" (the model writes the answer from the numbered passages)
# or "extract" (the passages' sentences closest to the question, quoted and cited, nothing generated:
# ``clearlm.knowledge.extractive``).
ANSWERS = ("generate", "extract")


@dataclass(frozen=True, slots=True)
class Retrieval:
    """Answer from a knowledge base (retrieval-augmented generation, Lewis et al. 2020): the last user
    message is the query, and the ``k`` passages that ``mode`` retrieval finds go into the prompt numbered
    for citation (``clearlm.knowledge.answer.passage_sources``). ``knowledge_base`` is an open
    ``clearlm.knowledge.KnowledgeBase``. ``answer``: one of ``ANSWERS``; with "extract" the turn's answer
    is ``extracted(grounding)``, taken as a forced target (checked by the output policy and audited like a
    generated one)."""

    knowledge_base: Any
    k: int = 5
    mode: str = "hybrid"
    answer: str = "generate"

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise InvalidInputError(f"answer must be one of {', '.join(ANSWERS)}, got {self.answer!r}")


@dataclass(frozen=True, slots=True)
class Grounding:
    """What a turn with :class:`Retrieval` answered from: the question (after input redaction), the
    passages in the order they are numbered (after the input policy: redacted where it said so), the
    prompt's sources for context attribution, retrieval's warnings (e.g. a query cut to the embedding
    model's length), and the passages the input policy quarantined (not in the prompt)."""

    knowledge_base: str
    question: str
    passages: tuple
    sources: Any  # clearlm.explain.context.ContextSources
    warnings: tuple[str, ...] = ()
    quarantined: tuple = ()


def ground(prompt: Prompt, retrieval: Retrieval, policy: Policy | None) -> tuple[Grounding, list[dict]]:
    """Retrieve passages for the last user message, screen them with the input policy, and build the
    prompt that cites those kept. Returns the grounding and the screening's notes."""
    from clearlm.knowledge.answer import passage_sources

    messages = [Message("user", prompt)] if isinstance(prompt, str) else list(prompt)
    if not messages or messages[-1].role != "user":
        raise InvalidInputError("to answer from a knowledge base, end the messages with the user's question")
    kb, question = retrieval.knowledge_base, messages[-1].content
    found = kb.search(question, k=retrieval.k, mode=retrieval.mode)
    if not found.passages:
        raise InvalidInputError(
            f"the knowledge base {kb.name!r} holds no documents to answer from: add some first"
        )
    kept, quarantined, notes = screen_passages(policy, found.passages)
    sources = passage_sources(question, kept, history=messages[:-1]) if kept else None
    grounding = Grounding(kb.name, question, tuple(kept), sources, tuple(found.warnings), tuple(quarantined))
    return grounding, notes


def screen_passages(policy: Policy | None, passages) -> tuple[list, list, list[dict]]:
    """Indirect prompt injection and the like: each retrieved passage's text, title and headings are
    model input, so the input policy checks them (role "document") before they enter a prompt. A passage
    it blocks is quarantined (left out); what it redacts is redacted.

    Returns:
        (kept passages, quarantined passages, notes): one note per passage with findings,
        ``{"chunk_id", "path", "action", "results": [{"field", "scanner", "risk", "action", "findings"}]}``
        (findings give type, span and score, never the text).
    """
    if policy is None or not policy.spec.input:
        return list(passages), [], []
    kept, quarantined, notes, seen = [], [], [], {}

    def check(text: str):
        if text not in seen:
            seen[text] = policy.check(text, ScanContext("input", "document"))
        return seen[text]

    for p in passages:
        fields = {
            "text": p.text,
            "title": p.title,
            **{f"heading_path[{i}]": h for i, h in enumerate(p.heading_path)},
        }
        decisions = {name: check(text) for name, text in fields.items() if text.strip()}
        action = max((d.action for d in decisions.values()), key=lambda a: a.severity, default=Action.ALLOW)
        results = [{"field": name, **r} for name, d in decisions.items() for r in d.to_dict()["results"]]
        if results or action is not Action.ALLOW:
            notes.append({"chunk_id": p.chunk_id, "path": p.path, "action": action.value, "results": results})
        if action is Action.BLOCK:
            quarantined.append(p)
            continue

        used = {name: decisions[name].text if name in decisions else text for name, text in fields.items()}
        headings = tuple(used[f"heading_path[{i}]"] for i in range(len(p.heading_path)))
        kept.append(dataclasses.replace(p, text=used["text"], title=used["title"], heading_path=headings))
    return kept, quarantined, notes


def extracted(grounding: Grounding, knowledge_base) -> str:
    """The extractive answer to the grounding's question from its passages (after screening), ranked with
    the knowledge base's embedding model (``clearlm.knowledge.extractive``)."""
    from clearlm.knowledge.extractive import extractive_text, rank_sentences

    passages = list(grounding.passages)
    return extractive_text(rank_sentences(knowledge_base.embedder, grounding.question, passages), passages)
