"""Train the prompt-injection scanner's classifier: logistic regression (scikit-learn, C=3, balanced
classes) on all-MiniLM-L6-v2 features of the development set (benchmarks/data/injection_prompts.jsonl) and
the known attacks shipped with clearlm. Features: the embedding of the whole text next to the element-wise
maximum over its sentences' embeddings (768 values). Writes src/clearlm/govern/data/injection_classifier.json.
The held-out set (injection_heldout.jsonl) is never used here; bench_governance.py measures on it.

    python benchmarks/train_injection_classifier.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from clearlm.govern.injection import features, known_attacks
from clearlm.models.embeddings import load_embedder

HERE = Path(__file__).parent
OUT = HERE.parent / "src" / "clearlm" / "govern" / "data" / "injection_classifier.json"


def main() -> None:
    rows = [
        json.loads(x)
        for x in (HERE / "data" / "injection_prompts.jsonl").read_text().splitlines()
        if x.strip()
    ]
    texts = [r["text"] for r in rows] + known_attacks()
    labels = np.array([r["label"] == "attack" for r in rows] + [True] * len(known_attacks()))
    embedder = load_embedder()
    x = np.stack([features(embedder, t) for t in texts])
    clf = LogisticRegression(C=3.0, max_iter=5000, class_weight="balanced").fit(x, labels)
    body = {
        "about": "Logistic regression on all-MiniLM-L6-v2 features; see benchmarks/train_injection_classifier.py",
        "trained_on": f"{len(rows)} development examples + {len(known_attacks())} known attacks",
        "training_accuracy": float(clf.score(x, labels)),
        "coef": [round(float(v), 6) for v in clf.coef_[0]],
        "intercept": float(clf.intercept_[0]),
    }
    OUT.write_text(json.dumps(body))
    print(f"wrote {OUT} (training accuracy {body['training_accuracy']:.3f})")


if __name__ == "__main__":
    main()
