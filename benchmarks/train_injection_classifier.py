"""Train the prompt-injection scanner's classifiers: logistic regression (scikit-learn, balanced classes) on
sentence-embedding features (the embedding of the whole text next to the element-wise maximum over its
sentences' embeddings, ``clearlm.govern.injection.features``). The scanner scores the text and each of its
sentences alone and keeps the highest score (``unit_features``); the cross-validation here scores the same
way. Writes src/clearlm/govern/data/injection_classifier.json (all-mpnet-base-v2, 1,536 values) and
injection_classifier_minilm.json (all-MiniLM-L6-v2, 768 values: the fallback when all-mpnet-base-v2 is not
installed).

Training data (benchmarks/data, see its README):
    injection_prompts.jsonl        the issue-5 development set (attacks and benign look-alikes)
    known_attacks.txt              the attacks shipped with clearlm (src/clearlm/govern/data)
    injection_train_attacks.jsonl  attacks of the public families, written for issue 11
    injection_train_benign.jsonl   real benign sentences (build_injection_benign.py's training half)
    injection_train_extra.jsonl    more attacks (tool hijacking, many languages, ...) and hard benign
                                   look-alikes, written for issue 11's last goal

Never used here: injection_benign.jsonl (the benign evaluation set), injection_heldout.jsonl,
injection_heldout2.jsonl and injection_heldout3.jsonl (the held-out sets); bench_governance.py measures on them.

The regularisation ``C`` is chosen by 5-fold cross-validation on the training data (the share of attacks
of the held-out folds detected at the calibrated threshold). The bias is then shifted so that, in that cross-validation, at most 1% of the benign
training texts score 0.8 or more (the threshold policies use): the probabilities stay monotone in the
model's score, and the default threshold holds the false-positive rate the issue asks for.

    python benchmarks/train_injection_classifier.py
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from clearlm.govern import injection_encoder
from clearlm.govern.injection import INVISIBLE, JOINERS, known_attacks, unit_features
from clearlm.models.embeddings import load_embedder

HERE = Path(__file__).parent
OUT = HERE.parent / "src" / "clearlm" / "govern" / "data"
TRAIN = (
    "injection_prompts.jsonl",
    "injection_train_attacks.jsonl",
    "injection_train_benign.jsonl",
    "injection_train_extra.jsonl",
)
C_GRID = (0.3, 1.0, 3.0, 10.0)
THRESHOLD = 0.8  # the policy threshold the bias is set for
BENIGN_RATE = 0.01  # the share of benign training texts allowed to reach it (cross-validated)


def training_rows() -> list[dict]:
    rows = []
    for name in TRAIN:
        text = (HERE / "data" / name).read_text(encoding="utf-8")
        rows += [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows + [{"text": t, "label": "attack", "family": "known"} for t in known_attacks()]


def normalise(text: str) -> str:
    """The text the scanner classifies (InjectionScanner.findings: hidden characters removed, NFKC)."""
    return unicodedata.normalize("NFKC", INVISIBLE.sub("", JOINERS.sub("", text)).replace("\xad", ""))


def _model(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=5000, class_weight="balanced")


def cross_validated_scores(units: list[np.ndarray], y: np.ndarray, c: float) -> np.ndarray:
    """Each example's decision value (the highest over its rows, ``unit_features``) from the model of the
    fold that did not train on it; models train on row 0 (the whole text) of each example."""
    x = np.stack([u[0] for u in units])
    out = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=11).split(x, y):
        model = _model(c).fit(x[train], y[train])
        out[test] = [model.decision_function(units[i]).max() for i in test]
    return out


def _shift(z: np.ndarray, y: np.ndarray) -> float:
    """The bias shift that puts THRESHOLD at the benign texts' (1 - BENIGN_RATE) quantile, never upwards."""
    logit = float(np.log(THRESHOLD / (1 - THRESHOLD)))
    return min(0.0, logit - float(np.quantile(z[~y], 1 - BENIGN_RATE)))


def fit(units: list[np.ndarray], y: np.ndarray, encoder: str) -> dict:
    """The classifier's JSON body for per-example feature rows ``units`` (``unit_features``) and labels
    ``y`` (bool[n], True = attack): C chosen by cross-validated detection at THRESHOLD once the bias is
    shifted for the benign rate."""
    logit = float(np.log(THRESHOLD / (1 - THRESHOLD)))
    scores = {c: cross_validated_scores(units, y, c) for c in C_GRID}

    def detected(c: float) -> float:
        return float(np.mean(scores[c][y] + _shift(scores[c], y) >= logit))

    c = max(C_GRID, key=detected)
    z, shift = scores[c], _shift(scores[c], y)
    clf = _model(c).fit(np.stack([u[0] for u in units]), y)
    return {
        "about": f"Logistic regression on {encoder} features; see benchmarks/train_injection_classifier.py",
        "encoder": encoder,
        "trained_on": f"{int(y.sum())} attacks and {int((~y).sum())} benign texts from {', '.join(TRAIN)} "
        "and known_attacks.txt",
        "C": c,
        "bias_shift": round(shift, 6),
        "cross_validated": {
            "attacks_detected": round(float(np.mean(z[y] + shift >= logit)), 4),
            "benign_flagged": round(float(np.mean(z[~y] + shift >= logit)), 4),
            "threshold": THRESHOLD,
        },
        "coef": [round(float(v), 6) for v in clf.coef_[0]],
        "intercept": float(clf.intercept_[0]) + shift,
    }


def main() -> None:
    rows = [r for r in training_rows() if normalise(r["text"]).strip()]  # hidden-only texts: not classified
    y = np.array([r["label"] == "attack" for r in rows])
    for embedder, name in (
        (injection_encoder.load(), "injection_classifier.json"),
        (load_embedder(), "injection_classifier_minilm.json"),
    ):
        units = [unit_features(embedder, normalise(r["text"])) for r in rows]
        body = fit(units, y, embedder.name)
        (OUT / name).write_text(json.dumps(body))
        print(
            f"wrote {OUT / name}: C={body['C']}, bias shift {body['bias_shift']:.3f}, {body['cross_validated']}"
        )


if __name__ == "__main__":
    main()
