"""Extractive answers: the sentences of the retrieved passages closest in meaning to the question, quoted
word for word and cited, or the abstention when none is close enough. No text is generated, so the answer
states the passage's exact commands, options and values, and every citation points at the span it quotes.

Answer-sentence selection (Yang et al. 2015, WikiQA) without a trained reader: a sentence's score is the
cosine similarity of its embedding and the question's (the knowledge base's own embedding model, a
bi-encoder trained on question-answer pairs, Reimers and Gurevych 2019), plus ``LEXICAL_WEIGHT`` times the
question's words it shares (stop words aside, over the square root of the question's word count: commands,
options and file names the embedding blurs), less ``RANK_WEIGHT`` per place its passage sits below the
first in retrieval's order. The answer quotes the best ``SENTENCES`` sentences in the order the passages
give them; it abstains when the best score is under ``MIN_SCORE``.

On issue 14's questions over the Debian Reference (``benchmarks/bench_answers.py``) this states the key
fact more often than qwen2.5-0.5b-instruct generating from the same passages, in well under a second; the
README gives the figures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from clearlm.knowledge.index.embedded import STOP_WORDS
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.quotes import NO_ANSWER

SENTENCES = 2  # sentences quoted
# The weights and the abstention threshold were chosen on all-MiniLM-L6-v2 (the default embedder) over
# benchmarks/data/kb_questions.jsonl and kb_unanswerable.jsonl (``bench_answers.py --extractive``): 0.1
# and 0.02 raised "the key fact among the two sentences" from 0.67 to 0.73 there; MIN_SCORE is the best
# score's 5th percentile over the answerable questions (so about 5% of them abstain). The README has the
# figures, and those on the held-back questions.
LEXICAL_WEIGHT = 0.1
RANK_WEIGHT = 0.02
MIN_SCORE = 0.6
MIN_CHARS = 12  # shorter pieces ("Note", "foo login:") are not sentences worth quoting
MAX_CHARS = 400  # a longer piece (a table, a code block) is not quoted whole
_BOUNDARY = re.compile(r"(?<=[.!?:])\s+|\n+")
_WORD = re.compile(r"[\w\-./]+")


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    """A sentence of a passage: ``passage`` its 0-based index, [``start``, ``end``) its characters in the
    passage's text, ``similarity`` the cosine similarity of its embedding and the question's, ``score``
    what ranks it (see the module docstring)."""

    passage: int
    start: int
    end: int
    similarity: float
    score: float


def words(text: str) -> set[str]:
    """The distinct words of ``text`` (letters, digits, "-", ".", "/": "apt-get", "/etc/hosts"),
    lower-cased, "." and "/" trimmed at their ends, stop words (``STOP_WORDS``) and single characters
    left out."""
    found = {w.lower().strip("./") for w in _WORD.findall(text)}
    return {w for w in found if len(w) > 1 and w not in STOP_WORDS}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of ``text``: pieces between ". ", "! ", "? ", ": " and line breaks,
    white space trimmed, ``MIN_CHARS`` to ``MAX_CHARS`` characters long."""
    spans, start = [], 0
    for m in [*_BOUNDARY.finditer(text), None]:
        end = m.start() if m else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        s, e = start + lead, start + len(piece.rstrip())
        if MIN_CHARS <= e - s <= MAX_CHARS:
            spans.append((s, e))
        start = m.end() if m else len(text)
    return spans


def rank_sentences(embedder, question: str, passages: list[Passage]) -> list[ScoredSentence]:
    """Every sentence of ``passages`` (``sentence_spans``, passages in retrieval's order) scored against
    ``question``, best first (ties: earlier passage, earlier sentence). ``embedder``: a
    ``clearlm.models.embeddings.Embedder`` (one ``encode`` call of 1 + the number of sentences texts)."""
    spans = [(i, s, e) for i, p in enumerate(passages) for s, e in sentence_spans(p.text)]
    if not spans:
        return []
    texts = [passages[i].text[s:e] for i, s, e in spans]
    vectors = np.asarray(embedder.encode([question, *texts]))
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = vectors[1:] @ vectors[0]
    asked = words(question)
    shared = [len(asked & words(t)) / math.sqrt(len(asked) or 1) for t in texts]
    score = [
        float(similarity[j]) + LEXICAL_WEIGHT * shared[j] - RANK_WEIGHT * spans[j][0]
        for j in range(len(spans))
    ]
    order = sorted(range(len(spans)), key=lambda j: (-score[j], j))
    return [ScoredSentence(*spans[j], float(similarity[j]), score[j]) for j in order]


def extractive_text(
    ranked: list[ScoredSentence],
    passages: list[Passage],
    *,
    sentences: int = SENTENCES,
    min_score: float = MIN_SCORE,
) -> str:
    """The answer: the ``sentences`` best of ``ranked``, each as its passage writes it followed by
    ``[n]`` (its passage's number), in passage order; ``NO_ANSWER`` when ``ranked`` is empty or its best
    score is under ``min_score``."""
    if not ranked or ranked[0].score < min_score:
        return NO_ANSWER
    chosen = sorted(ranked[:sentences], key=lambda s: (s.passage, s.start))
    return " ".join(f"{passages[s.passage].text[s.start : s.end]} [{s.passage + 1}]" for s in chosen)
