"""Train the prompt-injection scanner's classifier: logistic regression (scikit-learn, balanced classes) on
all-MiniLM-L6-v2 features (the embedding of the whole text next to the element-wise maximum over its
sentences' embeddings: 768 values, ``clearlm.govern.injection.features``). Writes
src/clearlm/govern/data/injection_classifier.json.

Training data (benchmarks/data, see its README):
    injection_prompts.jsonl        the issue-5 development set (attacks and benign look-alikes)
    known_attacks.txt              the attacks shipped with clearlm (src/clearlm/govern/data)
    injection_train_attacks.jsonl  attacks of the public families, written for issue 11
    injection_train_benign.jsonl   real benign sentences (build_injection_benign.py's training half)

Never used here: injection_benign.jsonl (the benign evaluation set), injection_heldout.jsonl and
injection_heldout2.jsonl (the held-out sets); bench_governance.py measures on them.

The regularisation ``C`` is chosen by 5-fold cross-validation on the training data (the log-loss of
held-out folds). The bias is then shifted so that, in that cross-validation, at most 1% of the benign
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

from clearlm.govern.injection import INVISIBLE, JOINERS, features, known_attacks
from clearlm.models.embeddings import load_embedder

HERE = Path(__file__).parent
OUT = HERE.parent / "src" / "clearlm" / "govern" / "data" / "injection_classifier.json"
TRAIN = ("injection_prompts.jsonl", "injection_train_attacks.jsonl", "injection_train_benign.jsonl")
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


def cross_validated_scores(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    """Decision values of every example from the model of the fold that did not train on it."""
    out = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=11).split(x, y):
        out[test] = _model(c).fit(x[train], y[train]).decision_function(x[test])
    return out


def fit(x: np.ndarray, y: np.ndarray) -> dict:
    """The classifier's JSON body for features ``x`` (float[n, 768]) and labels ``y`` (bool[n], True =
    attack): C chosen by cross-validated log-loss, the bias shifted for the benign rate at THRESHOLD."""

    def log_loss(z: np.ndarray) -> float:
        p = np.clip(1 / (1 + np.exp(-z)), 1e-9, 1 - 1e-9)
        return float(-np.mean(y * np.log(p) + (~y) * np.log(1 - p)))

    scores = {c: cross_validated_scores(x, y, c) for c in C_GRID}
    c = min(C_GRID, key=lambda k: log_loss(scores[k]))
    z = scores[c]
    # the bias shift that puts the threshold at the benign texts' (1 - BENIGN_RATE) quantile, never lower
    logit = float(np.log(THRESHOLD / (1 - THRESHOLD)))
    shift = min(0.0, logit - float(np.quantile(z[~y], 1 - BENIGN_RATE)))
    clf = _model(c).fit(x, y)
    return {
        "about": "Logistic regression on all-MiniLM-L6-v2 features; see benchmarks/train_injection_classifier.py",
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
    embedder = load_embedder()
    x = np.stack([features(embedder, normalise(r["text"])) for r in rows])
    y = np.array([r["label"] == "attack" for r in rows])
    body = fit(x, y)
    OUT.write_text(json.dumps(body))
    print(f"wrote {OUT}: C={body['C']}, bias shift {body['bias_shift']:.3f}, {body['cross_validated']}")


if __name__ == "__main__":
    main()
