"""A counterfactual bias probe: prompts that differ only in a demographic term (gender, names, nationality)
and the difference it makes to the model's output probability of a fixed continuation, and to the
attribution that the term itself receives (input x gradient).

Follows the counterfactual token fairness idea of Garg et al. (2019) and the paired-names design of
Bertrand and Mullainathan (2004). The pairs live in ``clearlm/govern/data/bias_pairs.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from clearlm.explain.api import explain


@dataclass(frozen=True, slots=True)
class PairResult:
    """One template filled with terms A and B: log p(target) under each (nats), and the share of the
    absolute attribution over the prompt that the term's tokens receive (0-1), under each."""

    category: str
    template: str
    a: str
    b: str
    logprob_a: float
    logprob_b: float
    share_a: float
    share_b: float

    @property
    def gap(self) -> float:
        """log p(target | A) - log p(target | B), in nats."""
        return self.logprob_a - self.logprob_b


def load_pairs(path: str | Path | None = None) -> dict:
    if path is None:
        text = resources.files("clearlm.govern").joinpath("data/bias_pairs.json").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _one(backend, template: str, term: str, target: str) -> tuple[float, float]:
    """(log p(target), the term's share of |attribution|) for the template filled with ``term``."""
    prompt = template.replace("{X}", term)
    result = explain(backend, prompt, target, method="input_x_gradient")
    logprob = float(np.log(result.target_probs).sum())
    lo = template.index("{X}")
    hi = lo + len(term)
    scores = np.abs(np.nan_to_num(result.scores[:, : result.n_prompt])).sum(axis=0)
    offsets = np.cumsum([0] + [len(t) for t in result.source_tokens[: result.n_prompt]])
    on_term = [(a < hi and lo < b) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    return logprob, float(scores[on_term].sum() / max(scores.sum(), 1e-12))


def probe(backend, pairs: dict | None = None, categories: tuple[str, ...] | None = None) -> list[PairResult]:
    """Run every template with every pair of the chosen categories (None = all).

    Raises:
        InvalidInputError: from the explanation (e.g. a template longer than the context).
    """
    pairs = pairs or load_pairs()
    out = []
    for category, items in pairs["pairs"].items():
        if categories and category not in categories:
            continue
        for t in pairs["templates"]:
            for a, b in items:
                lp_a, share_a = _one(backend, t["text"], a, t["target"])
                lp_b, share_b = _one(backend, t["text"], b, t["target"])
                out.append(PairResult(category, t["text"], a, b, lp_a, lp_b, share_a, share_b))
    return out


def summary(results: list[PairResult]) -> list[dict]:
    """Per category: pairs, mean |gap| and mean gap (nats), the largest |gap| and its pair, mean |share
    difference| of attribution on the term."""
    rows = []
    for category in dict.fromkeys(r.category for r in results):
        rs = [r for r in results if r.category == category]
        worst = max(rs, key=lambda r: abs(r.gap))
        rows.append(
            {
                "category": category,
                "pairs": len(rs),
                "mean_abs_gap": float(np.mean([abs(r.gap) for r in rs])),
                "mean_gap": float(np.mean([r.gap for r in rs])),
                "max_abs_gap": abs(worst.gap),
                "max_pair": f"{worst.a} / {worst.b}",
                "mean_abs_share_diff": float(np.mean([abs(r.share_a - r.share_b) for r in rs])),
            }
        )
    return rows


def plot(results: list[PairResult], path: str | Path) -> Path:
    """A bar chart of each pair's log-probability gap, grouped by category (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(10, 0.22 * len(results) + 1.5))
    labels = [f"{r.category}: {r.a} / {r.b} · {r.template[:28].replace('{X}', '…')}" for r in results]
    colors = ["#1f77b4" if r.gap >= 0 else "#d62728" for r in results]
    ax.barh(range(len(results)), [r.gap for r in results], color=colors)
    ax.set_yticks(range(len(results)), labels, fontsize=6)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("log p(target | A) - log p(target | B)  (nats)")
    ax.set_title("Counterfactual bias probe")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
