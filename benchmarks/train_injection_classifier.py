"""Train the prompt-injection scanner's classifiers: logistic regression (scikit-learn, balanced classes) on
sentence-embedding features (the embedding of the whole text next to the element-wise maximum over its
sentences' embeddings, ``clearlm.govern.injection.features``), and a second one on character n-grams
(``clearlm.govern.injection_ngrams``: it reads scripts the English embedding model does not). The scanner
scores the text and each of its sentences alone and keeps the highest score (``unit_features``,
``injection_ngrams.units``); the cross-validation here scores the same way. Writes
src/clearlm/govern/data/injection_classifier.json (all-mpnet-base-v2, 1,536 values),
injection_classifier_minilm.json (all-MiniLM-L6-v2, 768 values: the fallback when all-mpnet-base-v2 is not
installed) and injection_ngrams.json (n-gram -> weight). Each embedding classifier's file also holds the
weights ("stack") that combine its score with the n-gram score: a logistic regression on the two
cross-validated scores, its bias shifted like the others'.

Training data (benchmarks/data, see its README):
    injection_prompts.jsonl        the issue-5 development set (attacks and benign look-alikes)
    known_attacks.txt              the attacks shipped with clearlm (src/clearlm/govern/data)
    injection_train_attacks.jsonl  attacks of the public families, written for issue 11
    injection_train_benign.jsonl   real benign sentences (build_injection_benign.py's training half)
    injection_train_extra.jsonl    more attacks (tool hijacking, many languages, ...) and hard benign
                                   look-alikes, written for issue 11's last goal
    injection_train_multilingual.jsonl  attacks in 25+ languages and code-mixed text, tool hijacking, and
                                   benign look-alikes in the same languages and ordinary tool requests

Never used here: injection_benign.jsonl (the benign evaluation set) and the held-out sets
(injection_heldout*.jsonl); bench_governance.py measures on them.

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
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from clearlm.govern import injection_encoder, injection_ngrams
from clearlm.govern.injection import INVISIBLE, JOINERS, known_attacks, unit_features
from clearlm.models.embeddings import load_embedder

HERE = Path(__file__).parent
OUT = HERE.parent / "src" / "clearlm" / "govern" / "data"
TRAIN = (
    "injection_prompts.jsonl",
    "injection_train_attacks.jsonl",
    "injection_train_benign.jsonl",
    "injection_train_extra.jsonl",
    "injection_train_multilingual.jsonl",
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


def _first_rows(units: list) -> np.ndarray | sparse.csr_matrix:
    """Row 0 (the whole text) of each example's feature rows, dense or sparse."""
    if sparse.issparse(units[0]):
        return sparse.vstack([u[0] for u in units]).tocsr()
    return np.stack([u[0] for u in units])


def cross_validated_scores(units: list, y: np.ndarray, c: float) -> np.ndarray:
    """Each example's decision value (the highest over its rows, ``unit_features``) from the model of the
    fold that did not train on it; models train on row 0 (the whole text) of each example."""
    x = _first_rows(units)
    out = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=11).split(x, y):
        model = _model(c).fit(x[train], y[train])
        out[test] = [model.decision_function(units[i]).max() for i in test]
    return out


def _shift(z: np.ndarray, y: np.ndarray) -> float:
    """The bias shift that puts THRESHOLD at the benign texts' (1 - BENIGN_RATE) quantile, never upwards."""
    logit = float(np.log(THRESHOLD / (1 - THRESHOLD)))
    return min(0.0, logit - float(np.quantile(z[~y], 1 - BENIGN_RATE)))


def fit(units: list, y: np.ndarray, encoder: str) -> dict:
    """The classifier's JSON body for per-example feature rows ``units`` (``unit_features``) and labels
    ``y`` (bool[n], True = attack): C chosen by cross-validated detection at THRESHOLD once the bias is
    shifted for the benign rate."""
    logit = float(np.log(THRESHOLD / (1 - THRESHOLD)))
    scores = {c: cross_validated_scores(units, y, c) for c in C_GRID}

    def detected(c: float) -> float:
        return float(np.mean(scores[c][y] + _shift(scores[c], y) >= logit))

    c = max(C_GRID, key=detected)
    z, shift = scores[c], _shift(scores[c], y)
    clf = _model(c).fit(_first_rows(units), y)
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
        "_cross_validated_z": z + shift,  # for the stack; removed before writing
        "_model": clf,
    }


def ngram_units(texts: list[str]) -> tuple[list[sparse.csr_matrix], list[str]]:
    """Per text, its ``injection_ngrams.units`` as rows of unit-length binary n-gram vectors, and the
    vocabulary (n-grams of at least two training texts; the others only memorise one text)."""
    seen = [[injection_ngrams.grams(u) for u in injection_ngrams.units(t)] for t in texts]
    df: dict[str, int] = {}
    for rows in seen:
        for g in set().union(*rows):
            df[g] = df.get(g, 0) + 1
    vocab = sorted(g for g, n in df.items() if n >= 2)
    index = {g: i for i, g in enumerate(vocab)}
    out = []
    for rows in seen:
        data, cols, ptr = [], [], [0]
        for g in rows:
            scale = 1 / np.sqrt(len(g)) if g else 0.0  # the scanner divides by all the unit's n-grams
            hits = [index[x] for x in g if x in index]
            cols += hits
            data += [scale] * len(hits)
            ptr.append(len(cols))
        out.append(sparse.csr_matrix((data, cols, ptr), shape=(len(rows), len(vocab))))
    return out, vocab


def stack(z_embedding: np.ndarray, z_ngrams: np.ndarray, y: np.ndarray) -> dict:
    """Weights that combine the two classifiers' (cross-validated, calibrated) decision values, with the
    bias shifted for the benign rate, and the combination's cross-validated figures."""
    x = np.stack([z_embedding, z_ngrams], axis=1)
    clf = LogisticRegression(C=1.0, class_weight="balanced").fit(x, y)
    z = clf.decision_function(x)
    shift = _shift(z, y)
    logit = float(np.log(THRESHOLD / (1 - THRESHOLD)))
    return {
        "embedding": round(float(clf.coef_[0][0]), 6),
        "ngrams": round(float(clf.coef_[0][1]), 6),
        "intercept": round(float(clf.intercept_[0]) + shift, 6),
        "cross_validated": {
            "attacks_detected": round(float(np.mean(z[y] + shift >= logit)), 4),
            "benign_flagged": round(float(np.mean(z[~y] + shift >= logit)), 4),
            "threshold": THRESHOLD,
        },
    }


def main() -> None:
    rows = [r for r in training_rows() if normalise(r["text"]).strip()]  # hidden-only texts: not classified
    y = np.array([r["label"] == "attack" for r in rows])
    texts = [normalise(r["text"]) for r in rows]
    units, vocab = ngram_units(texts)
    ngrams = fit(units, y, "character n-grams")
    z_ngrams = ngrams.pop("_cross_validated_z")
    weights = ngrams.pop("_model").coef_[0]
    ngrams.pop("coef")
    ngrams["weights"] = {g: round(float(w), 5) for g, w in zip(vocab, weights, strict=True) if abs(w) >= 1e-4}
    (OUT / "injection_ngrams.json").write_text(json.dumps(ngrams, ensure_ascii=False))
    print(
        f"wrote injection_ngrams.json: C={ngrams['C']}, {len(ngrams['weights'])} n-grams, {ngrams['cross_validated']}"
    )
    for embedder, name in (
        (injection_encoder.load(), "injection_classifier.json"),
        (load_embedder(), "injection_classifier_minilm.json"),
    ):
        body = fit([unit_features(embedder, t) for t in texts], y, embedder.name)
        body["stack"] = stack(body.pop("_cross_validated_z"), z_ngrams, y)
        body.pop("_model")
        (OUT / name).write_text(json.dumps(body))
        print(
            f"wrote {OUT / name}: C={body['C']}, bias shift {body['bias_shift']:.3f}, {body['cross_validated']}, "
            f"with n-grams {body['stack']}"
        )


if __name__ == "__main__":
    main()
