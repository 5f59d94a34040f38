"""Minimum Bayes risk (MBR) selection among candidate translations.

Of ``k`` candidates for one sentence, MBR keeps the one with the highest expected utility against the others
taken as pseudo-references: ``argmax_i sum_{j != i} chrF(c_i, c_j)`` (Kumar & Byrne 2004; with candidates
sampled from the model and a string-overlap utility: Freitag et al. 2022, "High quality rather than high
model probability: minimum Bayes risk decoding with neural metrics", and 2023, "Epsilon sampling rocks").
The utility is sacrebleu's sentence chrF (character 6-grams, beta 2), the same chrF the benchmark reports.
It picks the consensus translation: an error one sample makes and the others do not loses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """The chosen candidate: ``index`` into the candidates, ``text``, and ``scores`` (per candidate, its mean
    chrF in 0-100 against the other candidates)."""

    index: int
    text: str
    scores: tuple[float, ...]


def mbr_select(candidates: list[str]) -> Selection:
    """The MBR choice among ``candidates`` (k >= 1 strings; empty ones are never chosen while another is
    not empty). Ties go to the earliest candidate, so put the greedy translation first. O(k^2) chrF calls.

    Raises:
        ValueError: no candidates.
    """
    from sacrebleu.metrics import CHRF

    if not candidates:
        raise ValueError("mbr_select needs at least one candidate")
    chrf = CHRF()
    k = len(candidates)
    pair = {}
    for i in range(k):
        for j in range(i + 1, k):
            # chrF is not symmetric (recall weighs twice precision): the hypothesis i against reference j
            pair[i, j] = chrf.sentence_score(candidates[i], [candidates[j]]).score
            pair[j, i] = chrf.sentence_score(candidates[j], [candidates[i]]).score
    scores = tuple(
        (sum(pair[i, j] for j in range(k) if j != i) / (k - 1) if k > 1 else 0.0)
        if candidates[i].strip() else -1.0
        for i in range(k)
    )  # fmt: skip
    best = max(range(k), key=lambda i: (scores[i], -i))
    return Selection(best, candidates[best], scores)
