"""Fusing and diversifying rankings: reciprocal rank fusion and maximal marginal relevance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from clearlm.knowledge.passage import Passage

RRF_K = 60  # Cormack, Clarke & Büttcher (2009) found k = 60 robust across collections
MODES = ("hybrid", "vector", "bm25")


@dataclass(slots=True)
class SearchResult:
    """What ``KnowledgeBase.search`` returns: ``passages`` best first (``score`` and ``ranks`` filled in),
    and ``warnings`` for the reader (e.g. a query cut to the embedding model's input length)."""

    query: str
    mode: str
    passages: list[Passage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[str]], k: int = RRF_K
) -> list[tuple[str, float, dict[str, int]]]:
    """Fuse rankings (retriever name -> ids, best first) by reciprocal rank fusion (Cormack et al. 2009):
    ``score(d) = sum over rankings of 1 / (k + rank(d))``, ranks 1-based.

    Returns (id, fused score, {retriever: rank}) best first; ties keep the order in which ids were first
    met, reading the rankings in turn.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ids in rankings.items():
        for rank, doc in enumerate(ids, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
            ranks.setdefault(doc, {})[name] = rank
    order = sorted(scores, key=lambda d: -scores[d])  # stable: first-met order breaks ties
    return [(d, scores[d], ranks[d]) for d in order]


def maximal_marginal_relevance(
    relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float = 0.5
) -> list[int]:
    """Pick ``k`` of n candidates by maximal marginal relevance (Carbonell & Goldstein 1998): each step takes
    ``argmax lambda * rel(d) - (1 - lambda) * max_{s picked} cos(d, s)``.

    Args:
        relevance: float[n], the candidates' relevance to the query (e.g. cosine similarity).
        vectors: float32[n, d], L2-normalised embeddings of the candidates.
        k: how many to pick (at most n).
        lambda_: 1 = pure relevance (the input order), 0 = pure diversity.

    Returns the chosen candidates' indices in the order picked.
    """
    n = len(relevance)
    if n == 0 or k <= 0:
        return []
    sims = vectors @ vectors.T
    chosen: list[int] = []
    redundancy = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        score = lambda_ * relevance - (1.0 - lambda_) * penalty
        score[~available] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, sims[best])
    return chosen
