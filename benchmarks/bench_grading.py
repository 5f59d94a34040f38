"""Benchmark the classroom grader (issue 16) on the grading set's test split (benchmarks/data/grading).

The calibration is fitted on the dev split in the same run (``train_grader.fit_entry``; with ``--write``
it is also saved to the packaged grader.json), then the test answers are graded and compared with the
author's scores: quadratic weighted kappa (Cohen 1968; scikit-learn's ``cohen_kappa_score``), exact
agreement, mean absolute error, the share sent to review, and the same by kind. The zero-shot baseline of
issue 16 (the same model, a plain "score 0, 1 or 2" prompt, the likeliest first token) is measured on the
same test answers in the same run. Features are cached per model (``--cache``), so a rerun only fits.

    nice -n 5 python benchmarks/bench_grading.py [--model qwen2.5-1.5b-instruct] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

sys.path.insert(0, str(Path(__file__).parent))
from train_grader import fit_entry, graded, load_set, make_grader, subset, write_entry  # noqa: E402


def review(score: int, confidence: float, reasons: list[str], threshold: float) -> bool:
    """The grader's review rule on cached reasons (the calibration-dependent ones recomputed)."""
    fixed = [r for r in reasons if not r.startswith(("low confidence", "partial", "uncalibrated"))]
    fixed = [r for r in fixed if r != "empty answer"]
    return bool(fixed) or score == 1 or confidence < threshold


def figures(truth: list[int], pred: list[int]) -> str:
    t, p = np.array(truth), np.array(pred)
    both = len(set(t) | set(p)) > 1  # one score everywhere: kappa is undefined
    qwk = f"{cohen_kappa_score(t, p, weights='quadratic', labels=[0, 1, 2]):5.2f}" if both else "  n/a"
    return f"QWK {qwk}  exact {np.mean(t == p):4.0%}  MAE {np.mean(np.abs(t - p)):.2f}"


def main() -> None:
    from clearlm.apps.classroom.grading import REVIEW_BELOW
    from clearlm.apps.classroom.grading_calibration import Calibration

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-0.5b-instruct")
    ap.add_argument("--backend", default="llamacpp", help="torch, llamacpp (faster on CPU), ...")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp's CPU threads")
    ap.add_argument("--scanner", choices=("full", "patterns"), default="full", help="see train_grader")
    ap.add_argument("--limit", type=int, default=None, help="about this many test answers (a subset)")
    ap.add_argument("--limit-dev", type=int, default=None, help="about this many dev answers to fit on")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--write", action="store_true", help="save the dev fit to the packaged grader.json")
    args = ap.parse_args()
    cache_path = args.cache or Path(f"/tmp/clearlm-grading-{args.model}.json")
    rubrics, rows = load_set()
    dev, test = subset(rows, "dev", args.limit_dev), subset(rows, "test", args.limit)
    started = time.time()
    grader = make_grader(args.model, args.backend, args.threads, args.scanner)
    cache = graded(grader, rubrics, dev, cache_path)
    cache = graded(grader, rubrics, test, cache_path, baseline=True)
    entry = fit_entry(cache, dev)
    if args.write:
        write_entry(args.model, entry)
    calibration = Calibration(entry)
    by_kind: dict[str, list[tuple[int, int, int, bool]]] = defaultdict(list)
    for r in test:
        c = cache[r["id"]]
        if c["features"] is None:
            score, confidence = 0, 1.0
        else:
            probs = calibration.predict(c["features"])
            score, confidence = int(np.argmax(probs)), float(probs.max())
        sent = review(score, confidence, c["reasons"], REVIEW_BELOW)
        by_kind[r["kind"]].append((r["score"], score, c["baseline"], sent))
    every = [x for xs in by_kind.values() for x in xs]
    print(
        f"grading set, test split: {len(test)} answers (fit on {len(dev)} dev answers); model {args.model}"
        f" ({args.backend}, scanner {args.scanner}); {time.time() - started:.0f} s"
    )
    print(f"{'':15} {'grader':38} {'review':>7}   zero-shot baseline")
    for kind, xs in [("all", every), *sorted(by_kind.items())]:
        truth = [x[0] for x in xs]
        print(
            f"{kind:10} {len(xs):4} {figures(truth, [x[1] for x in xs]):38} "
            f"{np.mean([x[3] for x in xs]):6.0%}   {figures(truth, [x[2] for x in xs])}"
        )


if __name__ == "__main__":
    main()
