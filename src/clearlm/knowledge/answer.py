"""Cited answers: answer a question from numbered passages, map its [n] citations to the passages, and
measure how much the answer actually relied on each passage (context attribution).

The flow: the passages go into the prompt numbered [1], [2], ... under a system instruction to answer only
from them and cite them; the model answers (greedy); citations are parsed (``[1]``, ``[1, 2]``, ``[1][3]``,
``[1-3]``) and mapped to passages; ``clearlm.explain.context`` attributes the answer to every passage by
ablation (ContextCite) and, on request, by gradients; a passage cited but not relied on, or relied on but
not cited, is flagged. Retrieval is the caller's job: ``answer`` takes the passages.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.explain.context import ContextAttribution, ContextSources, context_attribution
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.quotes import NO_ANSWER, is_abstention, quoted_span, sentence_before
from clearlm.models.backends.base import SamplingParams, generate
from clearlm.models.chat import Message
from clearlm.models.tokens import encode_text
from clearlm.serialize import JsonResult

SCHEMA_VERSION = 2  # 2: citations' quoted spans, corrections, abstained
READ_VERSIONS = (1, 2)
DEFAULT_MAX_NEW_TOKENS = 80
# Defaults chosen to keep ``answer`` near a minute on 2 CPU cores with 5 passages of ~200 tokens (see the
# README's figures): 16 ablations (ablations are most of the time; shared prefixes already run once), and
# the gradient view off: its forward and backward pass over the whole prompt costs about a third of the
# total, and on the default model its per-passage sums often disagreed with the ablations and with the
# passage the answer quoted (pass gradient=True to have it).
DEFAULT_ABLATIONS = 16
DEFAULT_GRADIENT = False
# A passage is "relied on" when keeping it rather than dropping it raises the answer's score (the logit of
# its mean token probability, citation markers left out) by at least this much: the odds of the mean token
# probability multiplied by e^0.5 = 1.65 or more. In our first runs on the real default model (3 to 5
# passages, 8 to 16 ablations) passages the answer did not use got weights within +-0.3, and the passage
# whose fact the answer states 1.3 to 3.5. An answer that mostly restates the question dilutes the mean:
# a fact of 2 tokens in 20 moves it by about 0.75.
RELIED_THRESHOLD = 0.5

# The abstention is one fixed sentence, so that it can be recognised (``is_abstention``).
SYSTEM_PROMPT = (
    "Answer questions using only the numbered passages you are given. Keep the answer to one or two short "
    "sentences. Copy the exact words of the passage for every command, option, file path and value. End "
    "each sentence with the number of the passage it comes from in square brackets. Only if no passage is "
    f"about the question at all, answer exactly: {NO_ANSWER}"
)
# One worked example before the real question. Without it qwen2.5-0.5b-instruct echoed a passage block
# ("[1] Towns > Velmora\n...") or abstained instead of answering (measured 2026-12-02: 0 of 3 answerable
# questions answered without it, 3 of 3 with it). It can leak into an answer (the model copying "The Nile
# flows north" when lost): ``corrections.correct`` turns an answer that quotes the example into the
# abstention, so no answer returned carries its text. It precedes every passage, so each ablation shares it.
EXAMPLE_PASSAGES = (
    "Rivers > Nile\nThe Nile flows north through eleven countries into the Mediterranean Sea.",
    "Deserts > Sahara\nThe Sahara is the largest hot desert, covering most of North Africa.",
    "Mountains > Everest\nMount Everest is the highest mountain on Earth, 8,849 metres above sea level.",
)
EXAMPLE_QUESTION = "Where does the Nile flow?"
EXAMPLE_ANSWER = "The Nile flows north into the Mediterranean Sea [1]."
# Repeated after the question: with long passages, the system message alone is too far back.
INSTRUCTION = (
    "Answer from the passages, copying their exact words for commands, options, paths and values, and cite "
    "the passage number in square brackets."
)

# [1], [1, 2], [1;2], [1-3], [1–3]: a bracket holding numbers, commas, semicolons, dashes and spaces.
_CITATION = re.compile(r"\[(\s*\d+(?:\s*(?:[,;]|[-–])\s*\d+)*\s*)\]")
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")


@dataclass(frozen=True, slots=True)
class Citation:
    """One cited number in the answer: ``number`` as written, ``start``/``end`` the character span of its
    bracket in the answer (a bracket citing several numbers gives one Citation each, same span), and
    ``passage`` the 0-based index of the passage it names (None: no passage has that number).
    ``quote_start``/``quote_end``: [start, end) characters in that passage's text of the longest stretch of
    the sentence the citation closes found there verbatim (``clearlm.knowledge.quotes.quoted_span``),
    None when it quotes fewer than ``MIN_QUOTE`` characters of it."""

    number: int
    start: int
    end: int
    passage: int | None
    quote_start: int | None = None
    quote_end: int | None = None


@dataclass(frozen=True, slots=True)
class PassageSupport:
    """How the answer used one passage (``number`` = index + 1).

    cited: the answer cites it; weight: its ablation weight (logit units, ``ContextAttribution.weights``);
    gradient / gradient_share: input x gradient summed over its tokens (nats) and its share of the total
    |gradient|; relied: weight >= the answer's ``relied_threshold``; flag: "cited_not_relied",
    "relied_not_cited" or None. Without attribution the numbers are NaN and relied and flag None.
    """

    number: int
    cited: bool
    weight: float
    gradient: float
    gradient_share: float
    relied: bool | None
    flag: str | None


@dataclass(slots=True)
class CitedAnswer(JsonResult):
    """A question's answer from numbered passages, its citations, and what it relied on.

    Fields:
        question: the question; text: the answer as generated; model: the model's name;
        finish_reason: "stop" (the model ended its answer) or "length" (``max_new_tokens`` reached).
        passages: Passage[n], numbered [1]..[n] in the prompt in this order.
        citations: Citation[k] in order of appearance; unknown_citations: the cited numbers that name no
            passage (each once, in order of appearance).
        support: PassageSupport[n], one per passage.
        attribution: the ``ContextAttribution`` over the passages (None when not asked for, or when the
            answer is empty).
        relied_threshold: the ablation weight from which a passage counts as relied on (logit units).
        seconds: wall-clock seconds of "generate" and "attribute".
        corrections: what ``clearlm.knowledge.corrections.correct`` changed, in order: {"kind":
            "recited", "from": n, "to": m, "by": "quote" | "attribution"} (a citation re-pointed) or
            {"kind": "abstained", "by": ..., "text": the answer replaced by ``NO_ANSWER``}.
    """

    question: str
    text: str
    model: str
    finish_reason: str
    passages: list[Passage]
    citations: list[Citation]
    unknown_citations: list[int]
    support: list[PassageSupport]
    attribution: ContextAttribution | None = None
    relied_threshold: float = RELIED_THRESHOLD
    seconds: dict[str, float] = field(default_factory=dict)
    corrections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def abstained(self) -> bool:
        """True when the answer is the abstention: the passages do not answer the question."""
        return is_abstention(self.text)

    @property
    def cited(self) -> list[int]:
        """The passage numbers the answer cites (existing passages only), ascending."""
        return sorted({c.number for c in self.citations if c.passage is not None})

    @property
    def flagged(self) -> list[PassageSupport]:
        return [s for s in self.support if s.flag is not None]

    def passage(self, number: int) -> Passage | None:
        """The passage numbered ``number`` ([1] is the first), None if there is none."""
        return self.passages[number - 1] if 1 <= number <= len(self.passages) else None

    def top_attributed(self) -> int | None:
        """The number of the passage with the largest ablation weight; None without attribution, or when
        that weight is not positive (the answer relied on no passage) or several passages share it."""
        if self.attribution is None:
            return None
        weights = self.attribution.weights
        best = float(weights.max())
        if best <= 0 or int((weights == best).sum()) > 1:
            return None
        return int(weights.argmax()) + 1

    # ---- serialization -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as null); ``from_dict`` restores an equal CitedAnswer."""
        return {
            "schema_version": SCHEMA_VERSION,
            "question": self.question,
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "passages": [_passage_dict(p) for p in self.passages],
            "citations": [asdict(c) for c in self.citations],
            "unknown_citations": list(self.unknown_citations),
            "support": [{k: _nan_null(v) for k, v in asdict(s).items()} for s in self.support],
            "attribution": None if self.attribution is None else self.attribution.to_dict(),
            "relied_threshold": self.relied_threshold,
            "seconds": dict(self.seconds),
            "corrections": [dict(c) for c in self.corrections],
            "abstained": self.abstained,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CitedAnswer:
        """The CitedAnswer of a ``to_dict`` dict, of this schema version or version 1 (no quoted spans, no
        corrections). Raises ValueError for another version."""
        if data.get("schema_version") not in READ_VERSIONS:
            raise ValueError(f"unsupported cited answer schema version {data.get('schema_version')!r}")
        attribution = data.get("attribution")
        return cls(
            question=data["question"],
            text=data["text"],
            model=data["model"],
            finish_reason=data["finish_reason"],
            passages=[
                Passage(**{**p, "heading_path": tuple(p["heading_path"]), "ranks": dict(p["ranks"])})
                for p in data["passages"]
            ],
            citations=[Citation(**c) for c in data["citations"]],
            unknown_citations=list(data["unknown_citations"]),
            support=[
                PassageSupport(**{k: (math.nan if v is None and k in _FLOATS else v) for k, v in s.items()})
                for s in data["support"]
            ],
            attribution=None if attribution is None else ContextAttribution.from_dict(attribution),
            relied_threshold=float(data["relied_threshold"]),
            seconds=dict(data.get("seconds", {})),
            corrections=[dict(c) for c in data.get("corrections", [])],
        )


def answer(
    backend,
    question: str,
    passages: list[Passage],
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ablations: int = DEFAULT_ABLATIONS,
    attribute: bool = True,
    gradient: bool = DEFAULT_GRADIENT,
    relied_threshold: float = RELIED_THRESHOLD,
    seed: int = 0,
    correct: bool = True,
) -> CitedAnswer:
    """Answer ``question`` from ``passages`` with citations, and attribute the answer to each passage.

    Cost: one greedy generation of at most ``max_new_tokens`` tokens; with ``attribute``, the ablations
    (every subset of passages when 2^n fits in ``ablations``, else that many random ones; shared token
    prefixes run once) and, with ``gradient``, one forward and backward pass over prompt and answer. The
    README gives measured times on the default model.

    Args:
        backend: any backend to answer; attribution needs the torch backend.
        question: the question (non-empty).
        passages: the passages to answer from, in the order they are numbered (at least one).
        max_new_tokens: the answer's length limit in tokens.
        ablations: the ablation budget of the context attribution (>= 2).
        attribute: run context attribution by ablation.
        gradient: also attribute by input x gradient per passage (about half again the attribution time).
        relied_threshold: the ablation weight (logit units) from which a passage counts as relied on.
        seed: seeds the random ablations.
        correct: act on the evidence (``clearlm.knowledge.corrections.correct``): re-point a citation to
            the passage the sentence quotes (or, with attribution, relied on), and abstain when nothing
            supports the answer; an answer that abstains becomes exactly ``NO_ANSWER``.

    Returns:
        A ``CitedAnswer`` (``corrections`` lists what was changed).

    Raises:
        InvalidInputError: an empty question, no passages, a bad ``max_new_tokens`` or ``ablations``, a
            prompt longer than the model's context.
        BackendUnavailableError: ``attribute`` with a backend other than torch (pass ``attribute=False``
            or load the model with backend='torch').
    """
    if not question.strip():
        raise InvalidInputError("the question is empty: ask something")
    if not passages:
        raise InvalidInputError("no passages to answer from: retrieve some (or add documents) first")
    if attribute and getattr(backend, "kind", None) != "torch":
        raise BackendUnavailableError(
            "attributing the answer to passages needs the torch backend: load the model with "
            "backend='torch', or answer without attribution"
        )
    if attribute and ablations < 2:
        raise InvalidInputError(f"context attribution needs at least 2 ablations, got {ablations}")
    sources = passage_sources(question, passages)
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    started = time.perf_counter()
    completion = generate(backend, sources.render([True] * len(passages)), params)
    generated = time.perf_counter() - started
    cited = cite(
        backend if attribute else None,
        question,
        passages,
        backend.decode(list(completion.token_ids)),
        token_ids=completion.token_ids,
        sources=sources,
        model=backend.name,
        finish_reason=completion.finish_reason,
        ablations=ablations,
        gradient=gradient,
        relied_threshold=relied_threshold,
        seed=seed,
    )
    cited.seconds = {"generate": generated, **cited.seconds}
    if correct:
        from clearlm.knowledge.corrections import correct as act_on_evidence

        cited = act_on_evidence(cited)
    return cited


def cite(
    backend,
    question: str,
    passages: list[Passage],
    text: str,
    *,
    token_ids: Sequence[int] | None = None,
    sources: ContextSources | None = None,
    model: str | None = None,
    finish_reason: str = "stop",
    ablations: int = DEFAULT_ABLATIONS,
    gradient: bool = DEFAULT_GRADIENT,
    relied_threshold: float = RELIED_THRESHOLD,
    seed: int = 0,
) -> CitedAnswer:
    """The citations of an answer already generated from ``passages``, mapped to them; with a ``backend``
    (torch), also how much the answer relied on each passage (context attribution, holding its lock).

    Args:
        backend: a torch backend of the model that answered, or None for citations alone.
        text: the answer; token_ids: its tokens as generated (default: ``text`` tokenized again);
            sources: the prompt it answered (default: ``passage_sources(question, passages)``); model,
            finish_reason: recorded as given (model default: the backend's name).
        The other arguments are those of :func:`answer`.

    Raises:
        InvalidInputError: fewer than 2 ablations. BackendUnavailableError: a backend other than torch.
    """
    if backend is not None and getattr(backend, "kind", None) != "torch":
        raise BackendUnavailableError(
            "attributing the answer to passages needs the torch backend: load the model with "
            "backend='torch', or cite without attribution"
        )
    if backend is not None and ablations < 2:
        raise InvalidInputError(f"context attribution needs at least 2 ablations, got {ablations}")
    sources = sources if sources is not None else passage_sources(question, passages)
    citations, unknown = parse_citations(text, len(passages))
    citations = quote_citations(text, citations, passages)
    attribution, seconds = None, {}
    ids: list[int] = []
    if backend is not None:
        ids = list(token_ids) if token_ids is not None else encode_text(backend.tokenizer, text)
    if ids:
        started = time.perf_counter()
        counted = _outside(token_char_spans(backend, ids), [(c.start, c.end) for c in citations])
        with backend.lock:
            attribution = context_attribution(
                backend,
                sources,
                ids,
                ablations=ablations,
                seed=seed,
                gradient=gradient,
                counted=counted if any(counted) else None,
            )
        seconds["attribute"] = time.perf_counter() - started
    return CitedAnswer(
        question=question,
        text=text,
        model=model or (backend.name if backend is not None else ""),
        finish_reason=finish_reason,
        passages=list(passages),
        citations=citations,
        unknown_citations=unknown,
        support=support(len(passages), citations, attribution, relied_threshold),
        attribution=attribution,
        relied_threshold=relied_threshold,
        seconds=seconds,
    )


def passage_sources(
    question: str, passages: list[Passage], history: Sequence[Message] = ()
) -> ContextSources:
    """The prompt of ``answer``, with the passages as its sources.

    Messages: ``SYSTEM_PROMPT`` (followed by the text of any system message in ``history``); the worked
    example (its passages and question, and its cited answer); the rest of ``history`` (earlier turns of a
    conversation, kept as they are); then a user message with the passages, each a block ``[n] heading``
    (the heading path, else the title) over its text, the question and ``INSTRUCTION``. Leaving a passage
    out removes its block and keeps the others' numbers, so a citation names the same passage in every
    ablation.
    """
    blocks = tuple(_block(n, p.heading or p.title, p.text) for n, p in enumerate(passages, start=1))
    example = _user(EXAMPLE_QUESTION, [f"[{n}] {t}" for n, t in enumerate(EXAMPLE_PASSAGES, start=1)])
    question = question.strip()
    system = "\n\n".join([SYSTEM_PROMPT, *(m.content for m in history if m.role == "system")])
    earlier = [m for m in history if m.role != "system"]

    def render(mask) -> list[Message]:
        kept = [b for b, keep in zip(blocks, mask, strict=True) if keep]
        return [
            Message("system", system),
            Message("user", example),
            Message("assistant", EXAMPLE_ANSWER),
            *earlier,
            Message("user", _user(question, kept)),
        ]

    return ContextSources(blocks, render)


def _block(number: int, label: str, text: str) -> str:
    return f"[{number}] {label}\n{text.strip()}" if label else f"[{number}] {text.strip()}"


def _user(question: str, blocks: list[str]) -> str:
    return "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}\n{INSTRUCTION}"


def parse_citations(text: str, n_passages: int) -> tuple[list[Citation], list[int]]:
    """The citations in ``text``: ``[1]``, ``[1, 2]``, ``[1;2]``, ``[1][3]``, ``[1-3]`` (a range of at
    most ``n_passages`` numbers). Returns (citations in order, the numbers naming no passage, each once)."""
    citations: list[Citation] = []
    unknown: list[int] = []
    for match in _CITATION.finditer(text):
        numbers: list[int] = []
        for part in re.split(r"\s*[,;]\s*", match.group(1).strip()):
            if span := _RANGE.fullmatch(part):
                lo, hi = int(span.group(1)), int(span.group(2))
                numbers += list(range(lo, hi + 1)) if lo <= hi <= lo + max(n_passages, 1) else [lo, hi]
            else:
                numbers.append(int(part))
        for number in dict.fromkeys(numbers):
            known = 1 <= number <= n_passages
            citations.append(Citation(number, match.start(), match.end(), number - 1 if known else None))
            if not known and number not in unknown:
                unknown.append(number)
    return citations, unknown


def quote_citations(text: str, citations: list[Citation], passages: list[Passage]) -> list[Citation]:
    """``citations`` with their quoted spans: for each one naming a passage, the longest stretch of the
    sentence it closes (``quotes.sentence_before``) found verbatim in that passage's text
    (``quotes.quoted_span``); None when under ``quotes.MIN_QUOTE`` characters or naming no passage."""
    out = []
    for c in citations:
        span = None
        if c.passage is not None and c.passage < len(passages):
            span = quoted_span(sentence_before(text, c.start), passages[c.passage].text)
        start, end = span if span is not None else (None, None)
        out.append(Citation(c.number, c.start, c.end, c.passage, start, end))
    return out


def support(
    n_passages: int,
    citations: list[Citation],
    attribution: ContextAttribution | None,
    relied_threshold: float = RELIED_THRESHOLD,
) -> list[PassageSupport]:
    """One PassageSupport per passage: cited or not, its attribution, and its flag."""
    cited = {c.passage for c in citations if c.passage is not None}
    out = []
    for i in range(n_passages):
        if attribution is None:
            out.append(PassageSupport(i + 1, i in cited, math.nan, math.nan, math.nan, None, None))
            continue
        weight = float(attribution.weights[i])
        relied = weight >= relied_threshold
        flag = None
        if i in cited and not relied:
            flag = "cited_not_relied"
        elif relied and i not in cited:
            flag = "relied_not_cited"
        grad = attribution.gradient
        share = attribution.gradient_shares
        out.append(
            PassageSupport(
                number=i + 1,
                cited=i in cited,
                weight=weight,
                gradient=math.nan if grad is None else float(grad[i]),
                gradient_share=math.nan if share is None else float(share[i]),
                relied=relied,
                flag=flag,
            )
        )
    return out


def token_char_spans(backend, ids: list[int]) -> list[tuple[int, int]]:
    """[start, end) characters of each token in ``backend.decode(ids)``, by decoding growing prefixes (a
    token that completes a multi-byte character owns it)."""
    spans, previous = [], 0
    for k in range(1, len(ids) + 1):
        text = backend.decode(ids[:k])
        end = len(text.rstrip("\ufffd")) if k < len(ids) else len(text)
        end = max(end, previous)
        spans.append((previous, end))
        previous = end
    return spans


def _outside(token_spans: list[tuple[int, int]], marked: list[tuple[int, int]]) -> list[bool]:
    """For each token, True when it overlaps none of the ``marked`` character spans."""
    return [not any(s < b and e > a for a, b in marked) for s, e in token_spans]


_FLOATS = {"weight", "gradient", "gradient_share"}


def _nan_null(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _passage_dict(p: Passage) -> dict[str, Any]:
    out = asdict(p)
    out["heading_path"] = list(p.heading_path)
    return out
