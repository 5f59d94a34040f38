"""Governance figures on the project's own evaluation sets (benchmarks/data, see its README):

PII          precision and recall per entity type of the `pii` scanner (Presidio on spaCy's
             en_core_web_md, plus clearlm's recognisers: dates of birth, street addresses, checked SSNs,
             passports and national IDs). A found span counts when it overlaps an annotated span of the
             same type. Also all types on the tuning lines and on the held-out slice separately.
injection    detection rate per attack family, false-positive rate (with counts) and median latency of
             the `prompt_injection` scanner, with and without the embedding classifier, at a threshold,
             on the development set, the three held-out sets and the benign set of real sentences
             (issue 11).
overhead     per-scanner latency (p50, p95 ms) on a 1 KB prompt, and a whole input policy.

python benchmarks/bench_governance.py                  # everything
python benchmarks/bench_governance.py --json out.json  # also the figures as JSON
python benchmarks/bench_governance.py --limit 40 --runs 5   # a quick run (CI)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

DATA = Path(__file__).parent / "data"
TAG = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]")


PII_SPLITS = ("all", "tuning", "held-out")


def pii_examples(
    limit: int | None = None, split: str = "all"
) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """(plain text, [(type, start, end)]) per line of pii_sentences.txt. ``split``: "all", "tuning" (the
    lines the recognisers were revised against) or "held-out" (those after the ``# held-out`` comment)."""
    if split not in PII_SPLITS:
        raise ValueError(f"unknown PII split {split!r}: choose one of {', '.join(PII_SPLITS)}")
    out, held = [], False
    for line in (DATA / "pii_sentences.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# held-out"):
            held = True
        if not line.strip() or line.startswith("#") or split == ("tuning" if held else "held-out"):
            continue
        text, spans, pos = [], [], 0
        for m in TAG.finditer(line):
            text.append(line[pos : m.start()])
            start = sum(len(t) for t in text)
            text.append(m.group(2))
            spans.append((m.group(1), start, start + len(m.group(2))))
            pos = m.end()
        text.append(line[pos:])
        out.append(("".join(text), spans))
    return out[:limit] if limit else out


INJECTION_SETS = {
    # the set the patterns were revised against once, after a first run, and the classifier trains on
    # (so its figures are optimistic)
    "development": "injection_prompts.jsonl",
    # written afterwards by someone who saw neither the patterns nor the other set
    "held-out": "injection_heldout.jsonl",
    # issue 11: real benign sentences (support and classroom questions, manuals, docstrings, hard
    # negatives); the patterns were revised against it, the classifier never trained on it
    "benign": "injection_benign.jsonl",
    # issue 11: written after the patterns were revised, before the detector was run on it
    "held-out 2": "injection_heldout2.jsonl",
    # issue 11: written by hand and committed before the detector ran on it (its figures before and after
    # the all-mpnet-base-v2 classifier are in benchmarks/data/README.md)
    "held-out 3": "injection_heldout3.jsonl",
    # issue 11: written by hand before the multilingual and tool-hijacking patterns, measured once before
    # and once after them (benchmarks/data/README.md)
    "held-out 4": "injection_heldout4.jsonl",
}
INJECTION_MODES = ("patterns", "patterns+classifier")


def injection_examples(limit: int | None = None, name: str = "development") -> list[dict]:
    text = (DATA / INJECTION_SETS[name]).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if limit:  # keep both labels in a short run
        attacks = [r for r in rows if r["label"] == "attack"][: limit // 2]
        benign = [r for r in rows if r["label"] == "benign"][: limit // 2]
        rows = attacks + benign
    return rows


def pii_scores(limit: int | None = None, split: str = "all") -> dict:
    from clearlm.govern.base import ScanContext
    from clearlm.govern.pii import ENTITIES, PiiScanner

    scanner = PiiScanner()
    tp_pred, n_pred, tp_gold, n_gold = Counter(), Counter(), Counter(), Counter()
    for text, gold in pii_examples(limit, split):
        found = scanner.findings(text, ScanContext())
        for f in found:
            n_pred[f.type] += 1
            tp_pred[f.type] += any(t == f.type and f.start < e and s < f.end for t, s, e in gold)
        for t, s, e in gold:
            n_gold[t] += 1
            tp_gold[t] += any(f.type == t and f.start < e and s < f.end for f in found)
    rows = {}
    for t in (*ENTITIES, "all"):
        tp_p = sum(tp_pred.values()) if t == "all" else tp_pred[t]
        n_p = sum(n_pred.values()) if t == "all" else n_pred[t]
        tp_g = sum(tp_gold.values()) if t == "all" else tp_gold[t]
        n_g = sum(n_gold.values()) if t == "all" else n_gold[t]
        rows[t] = {
            "precision": tp_p / n_p if n_p else None,
            "recall": tp_g / n_g if n_g else None,
            "found": n_p,
            "annotated": n_g,
        }
    return rows


def injection_scores(
    threshold: float, limit: int | None = None, name: str = "development", modes=INJECTION_MODES
) -> dict:
    """Per mode ("patterns", "patterns+classifier"): detection rate per attack family and overall, the
    false-positive rate on benign texts, the counts, and the scanner's median latency in ms."""
    from clearlm.govern.base import ScanContext
    from clearlm.govern.injection import InjectionScanner
    from clearlm.models.embeddings import load_embedder

    rows = injection_examples(limit, name)
    out = {}
    for mode in modes:
        scanner = InjectionScanner(load_embedder() if mode == "patterns+classifier" else None)
        times = []
        hit, total = Counter(), Counter()
        for r in rows:
            start = time.perf_counter()
            found = scanner.findings(r["text"], ScanContext())
            times.append((time.perf_counter() - start) * 1000)
            flagged = any(f.score >= threshold for f in found)
            key = r["family"] if r["label"] == "attack" else "benign"
            hit[key] += flagged
            total[key] += 1
        attacks = [k for k in total if k != "benign"]
        n_attacks = sum(total[k] for k in attacks)
        out[mode] = {
            "families": {k: hit[k] / total[k] for k in sorted(attacks)},
            "detection_rate": sum(hit[k] for k in attacks) / n_attacks if n_attacks else None,
            "false_positive_rate": hit["benign"] / total["benign"] if total["benign"] else None,
            "attacks": n_attacks,
            "detected": sum(hit[k] for k in attacks),
            "benign": total["benign"],
            "false_positives": hit["benign"],
            "p50_ms": statistics.median(times) if times else None,
        }
    return out


def overhead(runs: int) -> dict:
    from clearlm.govern import ScanContext, parse_policy

    sentences = [t for t, _ in pii_examples()]
    prompt = ""
    for s in sentences:
        if len(prompt) + len(s) > 1024:
            break
        prompt += s + " "
    policy = parse_policy(
        """
input:
  - {scanner: prompt_injection, threshold: 0.8, action: block}
  - {scanner: secrets, action: redact}
  - {scanner: pii, action: warn}
  - {scanner: toxicity, threshold: 0.8, action: warn}
  - {scanner: language, allowed: [en, fr, de, es]}
""",
        "overhead policy",
    )
    policy.build_all()
    ctx = ScanContext()
    timings: dict[str, list[float]] = defaultdict(list)
    for rule in policy.rules("input"):
        scanner = policy._scanner(rule)
        scanner.findings(prompt, ctx)  # warm
        for _ in range(runs):
            t = time.perf_counter()
            scanner.findings(prompt, ctx)
            timings[scanner.name].append((time.perf_counter() - t) * 1000)
    for _ in range(runs):
        t = time.perf_counter()
        policy.check(prompt, ctx)
        timings["whole input policy"].append((time.perf_counter() - t) * 1000)
    return {
        "prompt_chars": len(prompt),
        "ms": {
            k: {"p50": statistics.median(v), "p95": sorted(v)[max(0, int(0.95 * len(v)) - 1)]}
            for k, v in timings.items()
        },
    }


def fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N examples of each set")
    parser.add_argument(
        "--threshold", type=float, default=0.8, help="injection score that counts as detected"
    )
    parser.add_argument("--runs", type=int, default=50, help="timed runs per scanner")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    pii = pii_scores(args.limit)
    print("| PII type | precision | recall | found | annotated |\n|---|---|---|---|---|")
    for t, r in pii.items():
        print(
            f"| {t} | {fmt(r['precision'])} | {fmt(r['recall'])} | {r['found']} | {r['annotated']} |",
            flush=True,
        )
    if not args.limit:  # the recognisers were revised against the tuning lines, never the held-out ones
        print("\n| PII split, all types | lines | precision | recall |\n|---|---|---|---|")
        for split in ("tuning", "held-out"):
            r = pii_scores(split=split)["all"]
            lines = len(pii_examples(split=split))
            print(f"| {split} | {lines} | {fmt(r['precision'])} | {fmt(r['recall'])} |", flush=True)
    inj = {name: injection_scores(args.threshold, args.limit, name) for name in INJECTION_SETS}
    families = list(inj["development"]["patterns"]["families"])
    header = f"| injection set, checks (threshold {args.threshold}) | detection | false positives | p50 ms | "
    print("\n" + header + " | ".join(families) + " |")
    print("|---|---|---|---|" + "---|" * len(families))
    for name, modes in inj.items():
        for mode, r in modes.items():
            fams = " | ".join(fmt(r["families"].get(f)) for f in families)
            label = f"{name} ({r['attacks']} attacks, {r['benign']} benign), {mode}"
            det = f"{fmt(r['detection_rate'])} ({r['detected']}/{r['attacks']})" if r["attacks"] else "-"
            fp = (
                f"{fmt(r['false_positive_rate'])} ({r['false_positives']}/{r['benign']})"
                if r["benign"]
                else "-"
            )
            print(f"| {label} | {det} | {fp} | {r['p50_ms']:.0f} | {fams} |", flush=True)
    over = overhead(args.runs)
    print(f"\n| scanner ({over['prompt_chars']}-character prompt) | p50 ms | p95 ms |\n|---|---|---|")
    for k, v in over["ms"].items():
        print(f"| {k} | {v['p50']:.1f} | {v['p95']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"pii": pii, "injection": inj, "overhead": over}, indent=2))


if __name__ == "__main__":
    main()
