"""Word-level aggregation of sub-word token attributions (as inseq's ``SubwordAggregator``)."""

from __future__ import annotations

import numpy as np

from clearlm.errors import InvalidInputError
from clearlm.explain.result import Attribution

REDUCTIONS = ("sum", "abs_sum", "mean", "max_abs")


def word_spans(tokens: list[str], special: list[bool], message: list[int]) -> list[tuple[int, int]]:
    """[start, end) token spans of words.

    A token continues the previous word when neither is special, both come from the same message, it does
    not start with whitespace, the previous one does not end with whitespace, and the two meet between
    alphanumeric characters (so "Eiff" + "el" join, while "Paris" + "," stay apart); a lone space token
    joins the word that follows it (" " + "Eiffel").
    """
    spans: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else ""
        joins = (
            i > 0
            and not special[i]
            and not special[i - 1]
            and message[i] == message[i - 1]
            and tok[:1].isalnum()
            and (
                prev[-1:].isalnum()
                or (prev.isspace() and "\n" not in prev and spans[-1][1] - spans[-1][0] == 1)
            )
        )
        if joins:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def aggregate_words(result: Attribution, reduce: str = "sum") -> Attribution:
    """The same attribution with one source per word.

    Args:
        reduce: how a word's score is made from its tokens' scores: "sum" (keeps completeness of linear
            methods), "abs_sum" (sum of absolute values), "mean", "max_abs" (the largest magnitude, signed).
            NaN tokens (not earlier than the target) are left out; a word with none left is NaN.

    Returns:
        An ``Attribution`` with granularity "word"; ``source_spans`` give each word's token-level span.

    Raises:
        InvalidInputError: unknown reduction; ValueError: the result is already word-level.
    """
    if reduce not in REDUCTIONS:
        raise InvalidInputError(f"unknown word reduction {reduce!r}: choose one of {', '.join(REDUCTIONS)}")
    if result.granularity != "token":
        raise ValueError("the attribution is already word-level")
    spans = word_spans(result.source_tokens, result.source_special, result.source_message)
    columns = [_reduce(result.scores[:, a:b], reduce) for a, b in spans]
    scores = np.stack(columns, axis=1) if columns else result.scores[:, :0]
    lh = result.layer_head_scores
    if lh is not None:
        lh = np.stack([_reduce(lh[..., a:b], reduce) for a, b in spans], axis=-1)
    return Attribution(
        method=result.method,
        model=result.model,
        source_tokens=["".join(result.source_tokens[a:b]) for a, b in spans],
        target_tokens=list(result.target_tokens),
        scores=scores,
        target_probs=result.target_probs,
        source_roles=[result.source_roles[a] for a, _ in spans],
        source_message=[result.source_message[a] for a, _ in spans],
        source_special=[any(result.source_special[a:b]) for a, b in spans],
        n_prompt=sum(1 for a, _ in spans if a < result.n_prompt),
        source_spans=[tuple(result.source_spans[a][:1]) + (result.source_spans[b - 1][1],) for a, b in spans],
        params={**result.params, "word_reduce": reduce},
        granularity="word",
        completeness_gap=result.completeness_gap,
        contrast_tokens=result.contrast_tokens,
        contrast_probs=result.contrast_probs,
        layer_head_scores=lh,
        token_ids=list(result.token_ids),
    )


def _reduce(block: np.ndarray, how: str) -> np.ndarray:
    """Reduce the last axis of ``block`` ignoring NaN; all-NaN gives NaN."""
    empty = np.isnan(block).all(-1)
    filled = np.nan_to_num(block, nan=0.0)
    if how == "sum":
        out = filled.sum(-1)
    elif how == "abs_sum":
        out = np.abs(filled).sum(-1)
    elif how == "mean":
        out = filled.sum(-1) / np.maximum((~np.isnan(block)).sum(-1), 1)
    else:
        idx = np.abs(filled).argmax(-1)
        out = np.take_along_axis(filled, idx[..., None], -1)[..., 0]
    out = out.astype(np.float32)
    out[empty] = np.nan
    return out
