"""Fit the classroom grader's calibration (``clearlm.apps.classroom.grading_calibration``) on the grading
set's dev split (benchmarks/data/grading, see its README) and write
src/clearlm/apps/classroom/data/grader.json (one entry per model; other models' entries are kept).

Each answer is graded once by ``Grader`` (screening, one pipeline turn per criterion, the text features);
its feature vector is cached in ``--cache`` (a JSON file per model) so that ``bench_grading.py`` reuses it.
The test split is never used here.

    nice -n 5 python benchmarks/train_grader.py [--model qwen2.5-1.5b-instruct] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
DATA = HERE / "data" / "grading"
OUT = HERE.parent / "src" / "clearlm" / "apps" / "classroom" / "data" / "grader.json"


def load_set() -> tuple[dict, list[dict]]:
    from clearlm.apps.classroom import load_rubrics

    rows = [json.loads(line) for line in (DATA / "answers.jsonl").read_text().splitlines() if line.strip()]
    return load_rubrics(DATA / "rubrics"), rows


def subset(rows: list[dict], split: str, limit: int | None) -> list[dict]:
    """The ``split``'s rows; with ``limit``, every k-th so that about ``limit`` remain (kinds spread)."""
    chosen = [r for r in rows if r["split"] == split]
    if limit and limit < len(chosen):
        step = len(chosen) / limit
        chosen = [chosen[int(i * step)] for i in range(limit)]
    return chosen


def graded(grader, rubrics: dict, rows: list[dict], cache_path: Path, baseline: bool = False) -> dict:
    """{answer id: {"features", "score", "review", "baseline"?}} for ``rows``, from and into the cache.
    Empty answers and answers of instructions only get features None (the grader scores them 0 itself)."""
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    started = time.time()
    for n, r in enumerate(rows):
        entry = cache.get(r["id"])
        if entry is None or entry.get("answer") != r["answer"]:
            g = grader.grade(rubrics[r["rubric"]], r["answer"])
            entry = {
                "answer": r["answer"],
                "features": g.features or None,
                "grader_score": g.score,
                "reasons": g.review_reasons,
            }
        if baseline and "baseline" not in entry:
            entry["baseline"] = grader.reader.zero_shot(
                rubrics[r["rubric"]], r["answer"] or "(empty)", "bench"
            )
        cache[r["id"]] = entry
        if n % 10 == 9:
            cache_path.write_text(json.dumps(cache))
            print(f"  {n + 1}/{len(rows)} in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    cache_path.write_text(json.dumps(cache))
    return cache


def make_grader(model: str, backend: str, threads: int | None = None, scanner: str = "full"):
    from clearlm.apps.classroom.grading import Grader
    from clearlm.apps.classroom.grading_calibration import FEATURES, Calibration
    from clearlm.models import load_backend

    # the features do not depend on the calibration; an identity-like one keeps the grader usable
    # before any file exists
    n = len(FEATURES)
    identity = Calibration({"mean": [0] * n, "scale": [1] * n, "coef": [[0] * n] * 3, "intercept": [0] * 3})
    from clearlm.govern.injection import InjectionScanner
    from clearlm.knowledge.base import default_embedder

    # "patterns": the scanner's patterns (and the grader's) without its all-mpnet-base-v2 classifier,
    # which costs about an LLM turn per sentence on 2 cores; on this set both remove the same spans
    chosen = InjectionScanner(default_embedder() if scanner == "full" else None)
    backend_ = load_backend(model, backend, threads=threads)
    return Grader(backend_, calibration=identity, scanner=chosen)


def fit_entry(cache: dict, rows: list[dict]) -> dict:
    from clearlm.apps.classroom.grading_calibration import fit

    usable = [r for r in rows if cache[r["id"]]["features"] is not None]
    x = np.array([cache[r["id"]]["features"] for r in usable], dtype=np.float64)
    y = np.array([r["score"] for r in usable])
    return fit(x, y) | {"fitted_on": f"dev split, {len(usable)} answers"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-0.5b-instruct")
    ap.add_argument("--backend", default="llamacpp", help="torch, llamacpp (faster on CPU), ...")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp's CPU threads")
    ap.add_argument("--scanner", choices=("full", "patterns"), default="full")
    ap.add_argument("--limit", type=int, default=None, help="at most about this many dev answers")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    cache_path = args.cache or Path(f"/tmp/clearlm-grading-{args.model}.json")
    rubrics, rows = load_set()
    dev = subset(rows, "dev", args.limit)
    cache = graded(
        make_grader(args.model, args.backend, args.threads, args.scanner), rubrics, dev, cache_path
    )
    write_entry(args.model, fit_entry(cache, dev))


def write_entry(model: str, entry: dict) -> None:
    from clearlm.apps.classroom.grading_calibration import FEATURES

    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data["features"] = list(FEATURES)
    data.setdefault("models", {})[model] = entry
    data["source"] = "benchmarks/train_grader.py on benchmarks/data/grading (dev split)"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT} ({model})")


if __name__ == "__main__":
    main()
