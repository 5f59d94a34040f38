"""Translation quality and speed of every engine and hybrid (issue 17) on the parallel test set
(benchmarks/data/translation/: 160 English sentences with Spanish and Portuguese references, written for
clearlm; see its README).

For each pair (--pairs) and each engine, it translates the split's sentences (``--split test``: 119
held back from prompt choices; ``dev``: the other 41; ``all``; --limit N: the first N) and prints
corpus BLEU and chrF (sacrebleu's defaults: BLEU 13a tokenisation, chrF n=6, beta=2), chrF per domain,
and seconds per sentence (wall clock, engine calls only: the model's load is not counted).

Engines: ``apertium`` (Debian's pairs; en-pt through Spanish), ``bergamot`` (en <-> pt), and per model
in --models: ``llm:<model>`` (the chat model, a pipeline turn per sentence, prompt --styles; ``:mbrK`` with --samples:
the minimum-Bayes-risk choice among the greedy translation and K samples) and
``hybrid:<draft>:<model>`` (the draft engine's translation post-edited by the model; --drafts).

python benchmarks/bench_translation.py                                    # Apertium and Bergamot only
python benchmarks/bench_translation.py --models qwen2.5-1.5b-instruct --limit 40 --json out.json
python benchmarks/bench_translation.py --models qwen2.5-0.5b-instruct,qwen2.5-1.5b-instruct \
    --styles plain,fewshot --drafts apertium,bergamot --split dev
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

DATA = Path(__file__).parent / "data" / "translation"
DOMAINS = ("general", "support", "classroom")


def load_set(split: str = "test", limit: int | None = None) -> list[dict]:
    """The set's rows ({id, domain, en, es, pt}) of ``split`` (dev: every fourth row of each file from
    the first; test: the others; all), interleaved across domains, at most ``limit``."""
    per_domain = []
    for domain in DOMAINS:
        with open(DATA / f"{domain}.tsv", encoding="utf-8", newline="") as f:
            rows = [dict(r, domain=domain) for r in csv.DictReader(f, delimiter="\t")]
        if split != "all":
            rows = [r for i, r in enumerate(rows) if (i % 4 == 0) == (split == "dev")]
        per_domain.append(rows)
    mixed = [r for group in zip(*per_domain, strict=False) for r in group]
    mixed += [r for rows in per_domain for r in rows[min(map(len, per_domain)) :]]
    return mixed[:limit] if limit else mixed


def score(hypotheses: list[str], references: list[str]) -> tuple[float, float]:
    """(corpus BLEU, corpus chrF), sacrebleu's defaults."""
    import sacrebleu

    return (
        sacrebleu.corpus_bleu(hypotheses, [references]).score,
        sacrebleu.corpus_chrf(hypotheses, [references]).score,
    )


def engines(args, pair: str):
    """(label, engine, llm or None) for every engine to run on ``pair``."""
    from clearlm.translate import LLMEngine
    from clearlm.translate.apertium import ApertiumEngine
    from clearlm.translate.base import Pair
    from clearlm.translate.bergamot import BergamotEngine
    from clearlm.translate.llm import HybridEngine

    src, dst = pair.split("-")
    plain = {"apertium": ApertiumEngine(), "bergamot": BergamotEngine()}
    out = [
        (name, e, None) for name, e in plain.items() if name in args.engines and Pair(src, dst) in e.pairs()
    ]
    for model in [m for m in args.models.split(",") if m]:
        backend = load_model(model, args)
        llm = LLMEngine(backend)
        for draft in args.drafts.split(","):
            if draft in plain and Pair(src, dst) in plain[draft].pairs() and "hybrid" in args.engines:
                out.append((f"hybrid:{draft}:{model}", HybridEngine(plain[draft], llm), llm))
        for style in args.styles.split(","):
            for samples in map(int, args.samples.split(",")):
                llm = LLMEngine(backend, style=style, samples=samples)
                tag = (
                    model + ("" if style == "plain" else f":{style}") + (f":mbr{samples}" if samples else "")
                )
                if "llm" in args.engines:
                    out.append((f"llm:{tag}", llm, llm))
    return out


_models: dict[str, object] = {}


def load_model(model: str, args):
    if model not in _models:
        from clearlm.models import load_backend

        _models[model] = load_backend(model, args.backend, threads=args.threads)
    return _models[model]


def run(args) -> list[dict]:
    """Every engine on every pair; prints a line per (pair, engine) and returns the results."""
    rows = load_set(args.split, args.limit)
    results = []
    for pair in args.pairs.split(","):
        src, dst = pair.split("-")
        sources, refs = [r[src] for r in rows], [r[dst] for r in rows]
        for label, engine, _ in engines(args, pair):
            times, hyps = [], []
            for i in range(0, len(sources), args.batch):
                started = time.perf_counter()
                hyps += engine.translate(sources[i : i + args.batch], src, dst)
                times.append((time.perf_counter() - started) / len(sources[i : i + args.batch]))
            bleu, chrf = score(hyps, refs)
            by_domain = {
                d: round(score([h for h, r in zip(hyps, rows, strict=True) if r["domain"] == d],
                               [x for x, r in zip(refs, rows, strict=True) if r["domain"] == d])[1], 1)
                for d in DOMAINS if any(r["domain"] == d for r in rows)
            }  # fmt: skip
            result = {
                "pair": pair, "engine": label, "n": len(sources), "bleu": round(bleu, 1), "chrf": round(chrf, 1),
                "chrf_by_domain": by_domain, "s_per_sentence_median": round(statistics.median(times), 3),
                "s_per_sentence_mean": round(sum(times) / len(times), 3), "outputs": hyps,
            }  # fmt: skip
            results.append(result)
            if args.json:  # after each engine: a long run keeps what it measured
                args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
            print(
                f"{pair}  {label:<42} n={len(sources):<4} BLEU {bleu:5.1f}  chrF {chrf:5.1f}  "
                f"{' '.join(f'{d} {v}' for d, v in by_domain.items())}  "
                f"s/sentence {result['s_per_sentence_median']:.3f} (median of batches)",
                flush=True,
            )
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="en-es,en-pt")
    parser.add_argument("--engines", default="apertium,bergamot,llm,hybrid")
    parser.add_argument("--models", default="", help="comma-separated catalog names (none: no LLM)")
    parser.add_argument("--styles", default="plain", help="LLM prompt styles: plain, fewshot")
    parser.add_argument(
        "--samples", default="0", help="LLM: sampled candidates for MBR selection, e.g. 0,8 (0: greedy)"
    )
    parser.add_argument("--drafts", default="apertium,bergamot", help="the hybrids' draft engines")
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--split", default="test", choices=("test", "dev", "all"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch", type=int, default=8, help="sentences per engine call (timing unit)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results (with outputs) here")
    args = parser.parse_args(argv)
    run(args)


if __name__ == "__main__":
    main()
