"""Faithfulness of every attribution method, averaged over a prompt set, against a random floor.

For each prompt the model's greedy continuation (``--target-tokens`` tokens) is generated once and reused as
the forced target of every method. Each method's token-level result is scored with
``clearlm.explain.metrics.evaluate``: comprehensiveness and sufficiency (AOPC over the top 1/5/10/20/50% of
the sources), Soft-NC and Soft-NS. The random floor is a uniformly random attribution of the same sequence.
Each figure is averaged over the target tokens of a prompt, then over the prompts (mean and standard error).

    python benchmarks/bench_faithfulness.py                                 # 52 prompts, every method
    python benchmarks/bench_faithfulness.py --prompts 8 --methods input_x_gradient,occlusion
    python benchmarks/bench_faithfulness.py --markdown faithfulness.md --json faithfulness.json

Directions: comprehensiveness higher is more faithful, sufficiency lower, Soft-NC and Soft-NS higher.
``contrastive`` is left out: it explains log p(target) - log p(foil) and needs a foil per prompt, and the
metrics measure the drop in p(target) alone, which is not what a contrastive score ranks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from clearlm.explain import explain
from clearlm.explain.metrics import FRACTIONS, evaluate, random_attribution
from clearlm.models import Message, SamplingParams, generate

PROMPTS = Path(__file__).parent / "prompts" / "faithfulness.jsonl"
METHODS = (
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "attention",
    "attention_rollout",
    "occlusion",
)
RANDOM = "random"
METRICS = ("comprehensiveness", "sufficiency", "soft_nc", "soft_ns")
BETTER = {"comprehensiveness": "higher", "sufficiency": "lower", "soft_nc": "higher", "soft_ns": "higher"}


@dataclass(frozen=True)
class Case:
    """One benchmark prompt: plain text to continue, or chat messages; ``target`` once generated."""

    id: str
    category: str
    prompt: str | tuple[Message, ...]
    target: str | None = None


@dataclass
class Row:
    """One method's figures: per-prompt values of each metric (NaN where undefined), and seconds."""

    method: str
    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    explain_s: list[float] = field(default_factory=list)
    evaluate_s: list[float] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        v = np.asarray(self.values[metric], dtype=np.float64)
        return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan

    def sem(self, metric: str) -> float:
        """Standard error of the mean over the prompts where the metric is defined."""
        v = np.asarray(self.values[metric], dtype=np.float64)
        v = v[np.isfinite(v)]
        return float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan

    def count(self, metric: str) -> int:
        return int(np.isfinite(np.asarray(self.values[metric], dtype=np.float64)).sum())

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "mean": {m: self.mean(m) for m in METRICS},
            "sem": {m: self.sem(m) for m in METRICS},
            "n": {m: self.count(m) for m in METRICS},
            "explain_seconds_per_prompt": float(np.mean(self.explain_s)) if self.explain_s else None,
            "evaluate_seconds_per_prompt": float(np.mean(self.evaluate_s)) if self.evaluate_s else None,
            "per_prompt": self.values,
        }


def load_cases(path: Path = PROMPTS) -> list[Case]:
    """Read the JSONL prompt set: each line has id, category, and either "prompt" or "messages"."""
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if ("prompt" in rec) == ("messages" in rec):
            raise ValueError(f"{path}:{n}: give exactly one of 'prompt' and 'messages'")
        prompt = rec.get("prompt") or tuple(Message(m["role"], m["content"]) for m in rec["messages"])
        cases.append(Case(rec["id"], rec["category"], prompt))
    return cases


def select(cases: Sequence[Case], n: int | None) -> list[Case]:
    """The first ``n`` cases taken round-robin over the categories, so a small run still mixes them."""
    by_category: dict[str, list[Case]] = {}
    for c in cases:
        by_category.setdefault(c.category, []).append(c)
    mixed = [c for group in _zip_longest(by_category.values()) for c in group]
    return mixed if n is None else mixed[:n]


def _zip_longest(groups):
    groups = list(groups)
    for i in range(max((len(g) for g in groups), default=0)):
        yield [g[i] for g in groups if i < len(g)]


def with_targets(
    backend, cases: Sequence[Case], target_tokens: int, log: Callable[[str], None]
) -> list[Case]:
    """Generate every prompt's greedy continuation once; drop prompts where the model says nothing."""
    out = []
    for c in cases:
        ids = list(generate(backend, c.prompt, SamplingParams(max_new_tokens=target_tokens)).token_ids)
        if not ids:
            log(f"  {c.id}: the model generated nothing, left out")
            continue
        text = backend.tokenizer.decode(ids)
        if backend.tokenizer(text, add_special_tokens=False)["input_ids"] != ids:
            log(f"  {c.id}: the continuation re-tokenizes differently; its text is explained as re-tokenized")
        out.append(Case(c.id, c.category, c.prompt, text))
    return out


def method_options(method: str, steps: int) -> dict:
    # Fixed Gauss-Legendre nodes, as the published table was measured (adaptive placement costs more).
    return {"steps": steps, "placement": "gauss-legendre"} if method == "integrated_gradients" else {}


def run(
    backend,
    cases: Sequence[Case],
    methods: Sequence[str],
    *,
    steps: int = 16,
    samples: int = 2,
    seed: int = 0,
    on_row: Callable[[Row], None] = lambda row: None,
    log: Callable[[str], None] = lambda msg: None,
) -> list[Row]:
    """Score every method (and the random floor, if ``RANDOM`` is among ``methods``) on every case.

    Rows come in the order of ``methods``, each passed to ``on_row`` as soon as it is complete; ``log`` gets
    a line per prompt. The random floor scores a random attribution of the same sequence as the methods'
    (it copies the shape of a token-level result of that sequence: a method's already computed, or an
    attention result when it comes first). One ``evaluate`` cache per prompt lets the methods share the
    forward passes of identical perturbations (values unchanged).
    """
    rows, base, caches = [], {}, {}
    for method in methods:
        row = Row(method)
        for i, c in enumerate(cases):
            if method == RANDOM:
                if c.id not in base:
                    base[c.id] = explain(backend, c.prompt, c.target, method="attention")
                result, seconds = random_attribution(base[c.id], seed=seed + i), 0.0
            else:
                t0 = time.perf_counter()
                result = explain(backend, c.prompt, c.target, method=method, **method_options(method, steps))
                seconds = time.perf_counter() - t0
                base.setdefault(c.id, result)
            t0 = time.perf_counter()
            cache = caches.setdefault(c.id, {})  # forward passes shared by the methods' evaluations
            summary = evaluate(backend, result, samples=samples, seed=seed, cache=cache).summary()
            row.evaluate_s.append(time.perf_counter() - t0)
            row.explain_s.append(seconds)
            for m in METRICS:
                row.values[m].append(summary[m])
            log(
                f"  {method} {i + 1}/{len(cases)} {c.id}: explain {seconds:.1f} s, evaluate {row.evaluate_s[-1]:.1f} s"
            )
        on_row(row)
        rows.append(row)
    return rows


# ---- output ----------------------------------------------------------------------------------------------

_COLUMNS = ("method", *METRICS, "explain s/prompt")
_WIDTHS = (22, 19, 19, 19, 19, 16)


def header_lines(settings: dict) -> list[str]:
    pct = "/".join(f"{100 * k:g}" for k in settings["fractions"])
    return [
        f"model {settings['model']} float32, {settings['threads']} threads; {settings['n_prompts']} prompts "
        f"({settings['categories']}); greedy targets of up to {settings['target_tokens']} tokens "
        f"({settings['n_targets']} target tokens in all)",
        f"integrated gradients {settings['steps']} steps; AOPC over top {pct}% of sources; Soft-NC/NS "
        f"{settings['samples']} samples; seed {settings['seed']}; mean +- standard error over prompts",
        "better: comprehensiveness higher, sufficiency lower, soft_nc higher, soft_ns higher",
    ]


def _cell(row: Row, metric: str) -> str:
    mean, sem = row.mean(metric), row.sem(metric)
    return f"{mean:.3f} +- {sem:.3f}" if math.isfinite(sem) else f"{mean:.3f}"


def _seconds(row: Row) -> str:
    return "-" if row.method == RANDOM else f"{np.mean(row.explain_s):.2f}"


def text_header() -> str:
    return " ".join(
        f"{c:{'<' if i == 0 else '>'}{w}}" for i, (c, w) in enumerate(zip(_COLUMNS, _WIDTHS, strict=True))
    )


def text_row(row: Row) -> str:
    cells = [row.method, *(_cell(row, m) for m in METRICS), _seconds(row)]
    return " ".join(
        f"{c:{'<' if i == 0 else '>'}{w}}" for i, (c, w) in enumerate(zip(cells, _WIDTHS, strict=True))
    )


def markdown(rows: Sequence[Row], settings: dict) -> str:
    names = ["method", *(f"{m} ({BETTER[m]})" for m in METRICS), "explain s/prompt"]
    lines = [*(f"{h}  " for h in header_lines(settings)[:2]), ""]
    lines += ["| " + " | ".join(names) + " |", "|---" + "|---:" * (len(names) - 1) + "|"]
    for r in rows:
        cells = [f"`{r.method}`", *(_cell(r, m).replace("+-", "±") for m in METRICS), _seconds(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-0.5b-instruct")
    parser.add_argument("--prompts-file", type=Path, default=PROMPTS)
    parser.add_argument("--prompts", type=int, default=None, help="how many prompts (default: all)")
    parser.add_argument(
        "--methods",
        default=",".join((RANDOM, *METHODS)),
        help=f"comma-separated, from: {RANDOM}, {', '.join(METHODS)}",
    )
    parser.add_argument("--target-tokens", type=int, default=8, help="greedy tokens generated per prompt")
    parser.add_argument("--steps", type=int, default=16, help="integrated gradients' steps")
    parser.add_argument("--samples", type=int, default=2, help="Soft-NC/NS random masks per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads (default: every core; 1 is faster where other jobs share the cores)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="a progress line per prompt on stderr")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--json", type=Path, help="also write settings, rows and per-prompt values here")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in (RANDOM, *METHODS)]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}: choose from {RANDOM}, {', '.join(METHODS)}")
    if args.prompts is not None and args.prompts < 1:
        parser.error("--prompts must be at least 1")
    for path in (args.markdown, args.json):
        if path is not None and not path.parent.is_dir():
            parser.error(f"cannot write {path}: the folder {path.parent} does not exist")
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    from clearlm.models import load_backend

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    backend = load_backend(args.model)
    cases = select(load_cases(args.prompts_file), args.prompts)
    log(f"generating {len(cases)} targets ...")
    cases = with_targets(backend, cases, args.target_tokens, log)
    n_targets = sum(len(backend.tokenizer(c.target, add_special_tokens=False)["input_ids"]) for c in cases)
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.category] = counts.get(c.category, 0) + 1
    settings = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "n_prompts": len(cases),
        "categories": ", ".join(f"{n} {k}" for k, n in counts.items()),
        "target_tokens": args.target_tokens,
        "n_targets": n_targets,
        "steps": args.steps,
        "samples": args.samples,
        "seed": args.seed,
        "fractions": list(FRACTIONS),
        "prompts_file": str(args.prompts_file),
    }
    print("\n".join(header_lines(settings)), flush=True)
    print("\n" + text_header(), flush=True)
    done: list[Row] = []

    def save() -> None:  # after every row, so a stopped run keeps what it measured
        settings["wall_seconds"] = round(time.perf_counter() - start, 1)
        if args.markdown:
            args.markdown.write_text(markdown(done, settings), encoding="utf-8")
        if args.json:
            doc = {
                "settings": settings,
                "targets": {c.id: c.target for c in cases},
                "rows": [r.to_json() for r in done],
            }
            args.json.write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n", encoding="utf-8")

    def on_row(row: Row) -> None:
        print(text_row(row), flush=True)
        done.append(row)
        save()

    run(
        backend,
        cases,
        args.methods,
        steps=args.steps,
        samples=args.samples,
        seed=args.seed,
        on_row=on_row,
        log=log if args.verbose else lambda msg: None,
    )
    save()
    print(f"\nwall time {settings['wall_seconds'] / 60:.1f} min", flush=True)
    return done


if __name__ == "__main__":
    main()
