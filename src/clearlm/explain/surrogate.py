"""ContextCite's surrogate: ablation masks, a sparse linear model of the score, and its held-out fit.

Cohen-Wang, Shah, Georgiev and Madry 2024, "ContextCite: Attributing Model Generation to Context"
(NeurIPS; code: github.com/MadryLab/context-cite). Each ablation keeps every source with probability 1/2;
the model's score of the response under each ablation is regressed on the keep/drop mask with LASSO
(scikit-learn's ``Lasso`` on standardised masks, weights mapped back to mask units, as their
``LassoRegression`` solver does). Fit quality is their linear datamodeling score (LDS): the Spearman rank
correlation between the surrogate's predictions and the real scores on ablations it was not fitted on;
here out-of-fold over the same ablations (k-fold cross-validation), so it costs no extra forward pass.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np

KEEP_PROBABILITY = 0.5


@dataclass(frozen=True, slots=True)
class SurrogateFit:
    """A linear surrogate score(mask) ~ intercept + weights @ mask, and how well it predicts.

    weights: float64[n_sources], the score's change when a source is kept rather than dropped (score units);
    intercept: the predicted score with every source dropped; lds: Spearman correlation of out-of-fold
    predictions with the real scores (NaN when undefined: too few ablations, or constant scores);
    r2: out-of-fold coefficient of determination (NaN likewise); folds: folds used (0: none).
    """

    weights: np.ndarray
    intercept: float
    lds: float
    r2: float
    folds: int


def ablation_masks(n_sources: int, budget: int, seed: int = 0) -> tuple[np.ndarray, bool]:
    """The ablations to score: every subset when 2^n_sources <= budget, else ``budget`` distinct random ones.

    Random masks keep each source with probability ``KEEP_PROBABILITY`` (drawn from
    ``numpy.random.default_rng(seed)``; repeats are redrawn, as a repeated mask adds no information); the
    first mask keeps every source, so the full context's score is always among them.

    Returns:
        (masks bool[m, n_sources], exact), exact True when every subset is there (m = 2^n_sources).

    Raises:
        ValueError: n_sources < 1 or budget < 2.
    """
    if n_sources < 1 or budget < 2:
        raise ValueError(f"need at least one source and two ablations, got {n_sources} and {budget}")
    if 2**n_sources <= budget:
        masks = np.array(list(itertools.product([True, False], repeat=n_sources)), dtype=bool)
        return masks, True
    rng = np.random.default_rng(seed)
    seen = {(True,) * n_sources}
    rows = [np.ones(n_sources, dtype=bool)]
    while len(rows) < budget:
        mask = rng.random(n_sources) < KEEP_PROBABILITY
        key = tuple(mask.tolist())
        if key not in seen:
            seen.add(key)
            rows.append(mask)
    return np.stack(rows), False


def lasso(masks: np.ndarray, scores: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, float]:
    """LASSO of ``scores`` (float[m]) on ``masks`` (bool[m, n]) standardised; (weights float64[n], intercept)
    in mask units. A source kept (or dropped) in every mask gets weight 0: its effect is not identifiable."""
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(masks, dtype=np.float64)
    y = np.asarray(scores, dtype=np.float64)
    scaler = StandardScaler().fit(x)
    model = Lasso(alpha=alpha, fit_intercept=True, max_iter=100_000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on degenerate (constant) data
        model.fit(scaler.transform(x), y)
    weights = model.coef_ / scaler.scale_
    intercept = float(model.intercept_ - (scaler.mean_ / scaler.scale_) @ model.coef_)
    return weights.astype(np.float64), intercept


def fit_surrogate(
    masks: np.ndarray, scores: np.ndarray, *, alpha: float = 0.01, folds: int = 4, seed: int = 0
) -> SurrogateFit:
    """Fit the surrogate on every ablation and measure it out-of-fold.

    Args:
        masks: bool[m, n_sources]; scores: float[m], the model's score under each mask.
        alpha: LASSO's L1 strength on standardised masks (ContextCite's default 0.01).
        folds: k of the k-fold cross-validation behind ``lds`` and ``r2`` (fewer when m is small; none
            below 4 ablations).

    Returns:
        A SurrogateFit.
    """
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold

    x = np.asarray(masks, dtype=bool)
    y = np.asarray(scores, dtype=np.float64)
    weights, intercept = lasso(x, y, alpha)
    k = min(folds, len(y))
    if len(y) < 4 or k < 2:
        return SurrogateFit(weights, intercept, float("nan"), float("nan"), 0)
    predicted = np.empty_like(y)
    for train, test in KFold(n_splits=k, shuffle=True, random_state=seed).split(x):
        w, b = lasso(x[train], y[train], alpha)
        predicted[test] = b + x[test] @ w
    spread = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - predicted) ** 2).sum()) / spread if spread > 0 else float("nan")
    if np.ptp(predicted) == 0 or np.ptp(y) == 0:
        lds = float("nan")
    else:
        lds = float(spearmanr(predicted, y).statistic)
    return SurrogateFit(weights, intercept, lds, r2, k)
