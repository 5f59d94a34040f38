"""LoRA tuning figures on a real domain corpus: the Debian Reference manual (Debian package
debian-reference-en, HTML in /usr/share/debian-reference; `make docs-corpus` installs it and Debian's
fortunes-min, the general text).

Continued pretraining (``clearlm.tune.tune``) on some chapters, measured on other, held-out chapters:

train       tokens/s and wall time of the training steps
domain      perplexity of the held-out chapters before and after (goal: at least 20% lower)
general     perplexity of general text (Debian's fortunes file) before and after (goal: at most 3% higher)
memorised   whether the base model had learned the manual by heart: greedy continuations of held-out
            passages compared token by token with the real text (a memorised text continues verbatim),
            and the base's perplexity on the manual next to its perplexity on general text
questions   the four-way question answering after training (``clearlm.tune.answers``): the questions of
            benchmarks/data/tune_questions.jsonl (about the held-out chapter, written by hand with reference
            answers and key phrases; see benchmarks/data/README.md) answered by the base, the tuned model,
            the base with the knowledge base and the tuned model with it, each a pipeline turn; mean token
            F1 against the reference and key-phrase recall per set-up. The knowledge base is the knowledge
            benchmark's (bench_knowledge.py: "debian-reference", the whole manual, under --kb-home; built
            there when missing, which takes minutes the first time)

python benchmarks/bench_tuning.py                               # defaults below, the default model
python benchmarks/bench_tuning.py --steps 10 --seq-len 128       # shorter
python benchmarks/bench_tuning.py --json out.json
python benchmarks/bench_tuning.py --kb-home /tmp/kb-home         # reuse bench_knowledge.py --home /tmp/kb-home
python benchmarks/bench_tuning.py --limit-questions 2 --kb-chapters ch08 --steps 2   # a quick check

It installs nothing: the manual, fortunes and the packaged model must be there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

MANUAL = Path("/usr/share/debian-reference")
FORTUNES = Path("/usr/share/games/fortunes/fortunes")
QUESTIONS = Path(__file__).parent / "data" / "tune_questions.jsonl"
TRAIN = ("ch03", "ch04", "ch05")  # system initialization, authentication, network setup
HELD_OUT = ("ch08",)  # i18n and l10n: the same manual's language, other content


def chapters(names, dest: Path) -> Path:
    """Copy the chapters' HTML files into ``dest`` (a folder the tuner reads)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        src = MANUAL / f"{name}.en.html"
        if not src.is_file():
            sys.exit(f"{src} is missing: run `make docs-corpus` (Debian package debian-reference-en)")
        shutil.copy(src, dest / src.name)
    return dest


def general_text(dest: Path) -> Path:
    """Debian's fortunes file as plain text (quotes separated by blank lines)."""
    if not FORTUNES.is_file():
        sys.exit(f"{FORTUNES} is missing: run `make docs-corpus` (Debian package fortunes-min)")
    text = FORTUNES.read_text(encoding="utf-8", errors="replace").replace("\n%\n", "\n\n")
    dest.write_text(text, encoding="utf-8")
    return dest


def memorised(backend, held_out: Path, passages: int, prompt_tokens: int = 48, new_tokens: int = 16) -> dict:
    """Greedy continuations of ``passages`` held-out passages against the real next tokens: the mean share of
    continuation tokens that match position by position, and how many continue verbatim to the end."""
    from clearlm.knowledge.documents import read_document
    from clearlm.models import SamplingParams
    from clearlm.models.backends.base import generate

    tok = backend.tokenizer
    ids = []
    for f in sorted(held_out.iterdir()):
        ids += tok(read_document(f).text, add_special_tokens=False)["input_ids"]
    span = prompt_tokens + new_tokens
    step = max(span, (len(ids) - span) // max(1, passages))
    matches, verbatim = [], 0
    for start in range(0, len(ids) - span, step)[:passages]:
        prompt = tok.decode(ids[start : start + prompt_tokens])
        truth = ids[start + prompt_tokens : start + span]
        out = generate(backend, prompt, SamplingParams(max_new_tokens=new_tokens)).token_ids
        same = sum(a == b for a, b in zip(out, truth, strict=False))
        matches.append(same / new_tokens)
        verbatim += same == new_tokens
    return {
        "passages": len(matches),
        "token_match": sum(matches) / max(1, len(matches)),
        "verbatim": verbatim,
    }


def question_set(args, work: Path):
    """The questions to ask after training, over the knowledge benchmark's knowledge base (opened under
    ``--kb-home``, built there from the manual when missing) unless ``--no-kb``."""
    from clearlm.tune.answers import QuestionSet
    from clearlm.tune.questions import load_questions

    questions = load_questions(args.questions)
    if args.limit_questions:
        questions = questions[: args.limit_questions]
    kb = None
    if not args.no_kb:
        sys.path.insert(0, str(Path(__file__).parent))
        import bench_knowledge

        paths = bench_knowledge.manual_paths(args.kb_chapters.split(",") if args.kb_chapters else None)
        t0 = time.perf_counter()
        kb, ingest = bench_knowledge.build(paths, args.kb_home or work / "kb-home")
        print(
            f"knowledge base {kb.name}: {ingest['chunks']} chunks ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return QuestionSet(tuple(questions), kb, args.kb_passages, args.answer_tokens)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="qwen2.5-0.5b-instruct")
    p.add_argument("--train", default=",".join(TRAIN), help="chapters to train on")
    p.add_argument("--held-out", default=",".join(HELD_OUT), help="chapters to measure on")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--eval-tokens", type=int, default=4096)
    p.add_argument("--passages", type=int, default=8, help="held-out passages for the memorisation check")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (1 on a busy machine)"
    )
    p.add_argument("--questions", type=Path, default=QUESTIONS, help="domain questions (JSONL) for the table")
    p.add_argument("--limit-questions", type=int, default=0, help="ask only the first N (0: all)")
    p.add_argument("--no-questions", action="store_true", help="skip the four-way question answering")
    p.add_argument(
        "--kb-home",
        type=Path,
        help="bench_knowledge.py's --home holding the debian-reference KB (default: temp)",
    )
    p.add_argument("--kb-chapters", default="", help="chapters the KB holds when built here (default: all)")
    p.add_argument(
        "--no-kb", action="store_true", help="answer without a knowledge base (base and tuned only)"
    )
    p.add_argument("--kb-passages", type=int, default=3, help="passages retrieved per question")
    p.add_argument("--answer-tokens", type=int, default=64, help="most tokens per answer")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    from clearlm.tune import TuneConfig, tune
    from clearlm.tune.base import load_base

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-tuning-"))
    train_dir = chapters(args.train.split(","), work / "train")
    held_dir = chapters(args.held_out.split(","), work / "held-out")
    general = general_text(work / "fortunes.txt")
    config = TuneConfig(
        steps=args.steps,
        seq_len=args.seq_len,
        grad_accum=args.grad_accum,
        rank=args.rank,
        learning_rate=args.learning_rate,
        warmup_steps=min(5, args.steps // 5),
        eval_tokens=args.eval_tokens,
        checkpoint_every=0,
    )
    t0 = time.perf_counter()
    base = load_base(args.model)
    print(f"loaded {args.model} in {time.perf_counter() - t0:.1f} s", flush=True)
    os.environ["CLEARLM_HOME"] = str(work / "home")  # the adapter goes there (the model came from the cache)
    t0 = time.perf_counter()
    check = memorised(base, held_dir, args.passages)
    print(f"memorisation check: {check} ({time.perf_counter() - t0:.0f} s)", flush=True)

    def on_step(info) -> None:
        if info.step == 1 or info.step % 5 == 0 or info.step == info.steps:
            print(
                f"  step {info.step}/{info.steps} loss {info.loss:.3f} {info.tokens_per_s:.0f} tok/s",
                flush=True,
            )

    asked = None if args.no_questions else question_set(args, work)
    t0 = time.perf_counter()
    result = tune(
        "debian-reference",
        base,
        train_dir,
        config,
        eval_data=held_dir,
        general_data=general,
        on_stage=lambda s: print(f"{s} ...", flush=True),
        on_step=on_step,
        questions=asked,
        on_answer=lambda done, total: print(f"  answered {done}/{total}", flush=True),
    )
    wall = time.perf_counter() - t0
    if asked is not None and asked.knowledge_base is not None:
        asked.knowledge_base.close()
    f = result.card["figures"]
    figures = {
        "model": args.model,
        "train_chapters": args.train.split(","),
        "held_out_chapters": args.held_out.split(","),
        "hyperparameters": config.to_dict(),
        "train_tokens_seen": f["tokens"],
        "train_seconds": round(f["train_seconds"], 1),
        "tokens_per_s": round(f["tokens_per_s"], 1),
        "run_seconds": round(wall, 1),
        "domain_perplexity": [f["domain"]["before"]["perplexity"], f["domain"]["after"]["perplexity"]],
        "domain_change": f["domain"]["change"],
        "general_perplexity": [f["general"]["before"]["perplexity"], f["general"]["after"]["perplexity"]],
        "general_change": f["general"]["change"],
        "pii": result.card["data"]["pii"],
        "memorisation": check,
        "questions": result.report.get("questions"),
        "goals_met": {
            "domain_-20%": f["domain"]["change"] <= -0.20,
            "general_+3%": f["general"]["change"] <= 0.03,
        },
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "questions"}, indent=2))
    if figures["questions"]:
        from clearlm.tune.answers import markdown

        print("\n".join(markdown(figures["questions"])))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
