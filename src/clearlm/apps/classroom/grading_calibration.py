"""The grader's calibrated combination: a multinomial logistic regression (scikit-learn, fitted by
``benchmarks/train_grader.py`` on the grading set's dev split) from the features of one answer to
P(score = 0, 1, 2).

The features (:data:`FEATURES`), each traced to the rubric:

- ``model_expected``, ``model_p0``, ``model_p2``: the 0-2 score the language model's level probabilities
  imply (criteria taken as independent: the distribution of the total points, mapped through the rubric's
  ``scale``): its mean, P(0) and P(2);
- ``model_fraction``: the mean over criteria of the expected points over the criterion's top points;
- ``key_points_mean``, ``key_points_min``: the mean and the least of the model's probabilities that the
  answer makes each key point (``model_fraction`` for a rubric without key points);
- ``similarity``: cosine of the answer and the reference answer (all-MiniLM-L6-v2);
- ``coverage``: the key points' mean best-sentence similarity;
- ``log_words``: log(1 + words); ``english``: 1 when lingua reads English (or cannot tell), else 0.

The file ``data/grader.json`` holds per model the standardisation (``mean``, ``scale``) and the
regression (``coef`` float[3][10], ``intercept`` float[3]); a model it does not name uses the default
model's entry (the grade then asks for review: "uncalibrated model").
"""

from __future__ import annotations

import functools
import itertools
import json
from importlib import resources

import numpy as np

from clearlm.apps.classroom.rubrics import Rubric

FEATURES = (
    "model_expected",
    "model_p0",
    "model_p2",
    "model_fraction",
    "key_points_mean",
    "key_points_min",
    "similarity",
    "coverage",
    "log_words",
    "english",
)
DEFAULT_ENTRY = "qwen2.5-0.5b-instruct"


def score_distribution(rubric: Rubric, levels: dict[str, np.ndarray]) -> np.ndarray:
    """float64[3]: P(score = 0, 1, 2) when each criterion's level is drawn from its probabilities
    (``levels``: criterion id -> float[n levels], the rubric's level order), independently."""
    totals = {0: 1.0}
    for c in rubric.criteria:
        nxt: dict[int, float] = {}
        for total, p in totals.items():
            for lv, q in zip(c.levels, levels[c.id], strict=True):
                nxt[total + lv.points] = nxt.get(total + lv.points, 0.0) + p * float(q)
        totals = nxt
    out = np.zeros(3)
    for total, p in totals.items():
        out[rubric.score(total)] += p
    return out


def model_features(rubric: Rubric, levels: dict[str, np.ndarray], made: list[float]) -> list[float]:
    """The four ``model_*`` and the two ``key_points_*`` features (see the module docstring); ``made``:
    the model's probability that the answer makes each key point (the rubric's order)."""
    dist = score_distribution(rubric, levels)
    fraction = float(
        np.mean(
            [
                float(np.dot([lv.points for lv in c.levels], levels[c.id])) / c.max_points
                for c in rubric.criteria
            ]
        )
    )
    points = [float(np.mean(made)), float(np.min(made))] if made else [fraction, fraction]
    return [float(dist @ [0, 1, 2]), float(dist[0]), float(dist[2]), fraction, *points]


def consistent_levels(rubric: Rubric, levels: dict[str, np.ndarray], score: int) -> dict[str, int]:
    """{criterion id: level index}: the likeliest combination of levels (by the model's probabilities)
    whose rubric score is ``score``, so the feedback agrees with the grade; the likeliest levels when no
    combination gives it."""
    best, best_p = None, -1.0
    for combo in itertools.product(*(range(len(c.levels)) for c in rubric.criteria)):
        total = sum(c.levels[i].points for c, i in zip(rubric.criteria, combo, strict=True))
        if rubric.score(total) != score:
            continue
        p = float(np.prod([levels[c.id][i] for c, i in zip(rubric.criteria, combo, strict=True)]))
        if p > best_p:
            best, best_p = combo, p
    if best is None:
        best = tuple(int(np.argmax(levels[c.id])) for c in rubric.criteria)
    return {c.id: i for c, i in zip(rubric.criteria, best, strict=True)}


@functools.cache
def _packaged() -> dict:
    path = resources.files("clearlm.apps.classroom").joinpath("data/grader.json")
    return json.loads(path.read_text(encoding="utf-8"))


class Calibration:
    """The fitted regression for one model: ``predict(features)`` -> float64[3]. ``calibrated``: False
    when the packaged file has no entry for the model (the default model's is used)."""

    def __init__(self, entry: dict, calibrated: bool = True) -> None:
        self.mean = np.asarray(entry["mean"], dtype=np.float64)
        self.scale = np.asarray(entry["scale"], dtype=np.float64)
        self.coef = np.asarray(entry["coef"], dtype=np.float64)
        self.intercept = np.asarray(entry["intercept"], dtype=np.float64)
        self.calibrated = calibrated

    @classmethod
    def for_model(cls, model: str, data: dict | None = None) -> Calibration:
        """The entry for ``model`` in ``data`` (default: the packaged ``data/grader.json``)."""
        models = (data or _packaged())["models"]
        if model in models:
            return cls(models[model])
        return cls(models[DEFAULT_ENTRY], calibrated=False)

    def predict(self, features: list[float]) -> np.ndarray:
        z = self.coef @ ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) + self.intercept
        e = np.exp(z - z.max())
        return e / e.sum()


def fit(features: np.ndarray, scores: np.ndarray, c: float = 1.0) -> dict:
    """A :class:`Calibration` entry fitted on ``features`` (float[n, len(FEATURES)]) and author ``scores`` (int[n],
    each of 0, 1, 2 present): standardised features, multinomial logistic regression (L2, ``c``)."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000)
    lr.fit((features - mean) / scale, scores)
    assert list(lr.classes_) == [0, 1, 2], "every score 0, 1, 2 must occur in the fitting data"
    return {
        "mean": mean.round(6).tolist(),
        "scale": scale.round(6).tolist(),
        "coef": lr.coef_.round(6).tolist(),
        "intercept": lr.intercept_.round(6).tolist(),
    }
