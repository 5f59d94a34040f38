"""Cited answers that answer: key-fact accuracy, correct citation and abstention of
`clearlm.knowledge.answer.answer` on the Debian Reference (issue 14).

For each model (--models) on --backend, over the question sets (--sets; --n per set, taken in turn across
chapters with `bench_knowledge.select`), the top --passages hybrid passages of a knowledge base built once
under --home (`bench_knowledge.build`) are given to `answer(..., attribute=False)`. Per model it prints:

key fact          the answer states the question's key (`bench_knowledge.states_key`)
key + citation    ... and a passage it cites contains the key too (states_key on the passage's text)
retrieved         a given passage contains the key (the ceiling of "key + citation")
abstains          on kb_unanswerable.jsonl: the answer is the abstention (correct)
false abstention  on answerable questions: the answer abstains
leaks             answers holding prompt-example text (the old Nile example's words, any EXAMPLE_* text)
corrections       how often `answer` re-pointed a citation ("recited") or turned the answer into the
                  abstention ("abstained")
s/answer p50      wall-clock seconds of one answer (generation and citation handling)

--attribute K: for the first K answerable questions, also attribute the answer on torch (`cite` with a
torch backend, then `correct`) and report its seconds p50 and what the attribution corrected.

--extractive: also the extractive answer (``clearlm.knowledge.extractive``, `kb ask --answer extract`):
the sentences of the same passages closest to the question, quoted and cited, no model.

Five passages by default: hybrid recall@5 is 0.95 on kb_questions (bench_knowledge.py) against about 0.85
at 3, and five passages of ~200 tokens keep the prompt near 1,300 tokens, so generation stays short.

python benchmarks/bench_answers.py --home /tmp/kb-home --n 20 --sets questions,unanswerable
python benchmarks/bench_answers.py --models qwen2.5-0.5b-instruct --attribute 5 --json out.json
python benchmarks/bench_answers.py --models '' --extractive     # the extractive answer alone (seconds)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_knowledge import (  # noqa: E402
    HELDBACK,
    QUESTIONS,
    UNANSWERABLE,
    build,
    load_questions,
    manual_paths,
    select,
    states_key,
)

SETS = {"questions": QUESTIONS, "heldback": HELDBACK, "unanswerable": UNANSWERABLE}
MODELS = ("qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct")
# The words of the worked example the prompt used to carry (the Nile): an answer holding one leaked it.
OLD_EXAMPLE_WORDS = ("Nile", "Sahara", "Everest", "Mediterranean")
# Before the explicit abstention existed, an answer that says the passages do not tell counts as one.
_SAYS_NOTHING = re.compile(
    r"\b(do|does|did)(n't| not) (say|mention|contain|provide|specify|describe|include)|not (mentioned|"
    r"provided|specified|stated)|no (information|mention)|cannot (be )?answer",
    re.IGNORECASE,
)


def leak_texts() -> list[str]:
    """Texts whose presence in an answer means the prompt's example leaked into it."""
    import clearlm.knowledge.answer as module

    texts = [v for k, v in vars(module).items() if k.startswith("EXAMPLE_") and isinstance(v, str)]
    for k, v in vars(module).items():
        if k.startswith("EXAMPLE_") and isinstance(v, tuple):
            texts += [t for t in v if isinstance(t, str)]
    return [*OLD_EXAMPLE_WORDS, *texts]


def abstained(result) -> bool:
    """The answer is the abstention: ``CitedAnswer.abstained`` where it exists, else a sentence saying
    the passages do not tell (for the old prompt, which had no explicit abstention)."""
    flag = getattr(result, "abstained", None)
    return bool(flag) if flag is not None else bool(_SAYS_NOTHING.search(result.text))


def row(q, result, seconds: float, leaks: Sequence[str]) -> dict:
    cited_text = " ".join(result.passages[n - 1].text for n in result.cited)
    key = bool(q.key) and states_key(result.text, q.key)
    return {
        "id": q.id,
        "answerable": q.answerable,
        "key": key,
        "key_cited": key and states_key(cited_text, q.key),
        "retrieved": bool(q.key) and any(states_key(p.text, q.key) for p in result.passages),
        "abstained": abstained(result),
        "leak": any(t.lower() in result.text.lower() for t in leaks),
        "corrections": [c["kind"] for c in getattr(result, "corrections", [])],
        "seconds": round(seconds, 2),
        "cited": result.cited,
        "answer": result.text,
    }


def rates(rows: Sequence[dict]) -> dict:
    def share(hits: Sequence[bool]) -> float | None:
        return round(sum(hits) / len(hits), 3) if hits else None

    ans = [r for r in rows if r["answerable"]]
    un = [r for r in rows if not r["answerable"]]
    kinds = [k for r in rows for k in r["corrections"]]
    return {
        "answerable": len(ans),
        "unanswerable": len(un),
        "key": share([r["key"] for r in ans]),
        "key_cited": share([r["key_cited"] for r in ans]),
        "retrieved": share([r["retrieved"] for r in ans]),
        "abstains": share([r["abstained"] for r in un]),
        "false_abstention": share([r["abstained"] for r in ans]),
        "leaks": sum(r["leak"] for r in rows),
        "recited": kinds.count("recited"),
        "abstained_by_correction": kinds.count("abstained"),
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 1) if rows else None,
    }


def attribute_times(model: str, kb, questions, n_passages: int, answers: dict) -> dict:
    """Context attribution on torch for ``questions`` (answers already given): seconds p50, corrections."""
    from clearlm.knowledge import answer as module
    from clearlm.models import load_backend

    torch_backend = load_backend(model, "torch")
    seconds, kinds = [], []
    for q in questions:
        passages = kb.search(q.question, k=n_passages, mode="hybrid").passages
        t0 = time.perf_counter()
        cited = module.cite(torch_backend, q.question, passages, answers[q.id])
        if hasattr(module, "correct"):
            cited = module.correct(cited)
            kinds += [c["kind"] for c in cited.corrections]
        seconds.append(time.perf_counter() - t0)
    return {
        "n": len(seconds),
        "seconds_p50": round(statistics.median(seconds), 1) if seconds else None,
        "recited": kinds.count("recited"),
        "abstained": kinds.count("abstained"),
    }


def run_model(model: str, backend_kind: str, kb, questions, args) -> dict:
    from clearlm.knowledge.answer import answer
    from clearlm.models import load_backend, resolve_backend

    kind = resolve_backend(model, backend_kind)
    backend = load_backend(model, kind)
    leaks = leak_texts()
    rows = []
    for q in questions:
        passages = kb.search(q.question, k=args.passages, mode="hybrid").passages
        t0 = time.perf_counter()
        result = answer(backend, q.question, passages, attribute=False)
        rows.append(row(q, result, time.perf_counter() - t0, leaks))
        r = rows[-1]
        print(
            f"  {model} {q.id}: key {r['key']:d} cited-key {r['key_cited']:d} abstained {r['abstained']:d} "
            f"{r['seconds']:.1f}s {result.text[:90]!r}",
            file=sys.stderr,
            flush=True,
        )
    out = {"model": model, "backend": kind, "passages": args.passages, **rates(rows), "rows": rows}
    if args.attribute:
        first = [q for q in questions if q.answerable][: args.attribute]
        answers = {r["id"]: r["answer"] for r in rows}
        out["attribution"] = attribute_times(model, kb, first, args.passages, answers)
    return out


def run_extractive(kb, questions, args) -> dict:
    """The extractive answer (``clearlm.knowledge.extractive``: the passages' sentences closest to the
    question, quoted and cited; no model) on the same passages, with the knowledge base's embedder."""
    from clearlm.knowledge.answer import cite
    from clearlm.knowledge.extractive import extractive_text, rank_sentences

    leaks, rows = leak_texts(), []
    for q in questions:
        passages = kb.search(q.question, k=args.passages, mode="hybrid").passages
        t0 = time.perf_counter()
        text = extractive_text(rank_sentences(kb.embedder, q.question, passages), passages)
        result = cite(None, q.question, passages, text, model="extractive")
        rows.append(row(q, result, time.perf_counter() - t0, leaks))
    name = f"extractive ({kb.embedder.name})"
    return {"model": name, "backend": "-", "passages": args.passages, **rates(rows), "rows": rows}


def print_table(results: Sequence[dict]) -> None:
    print(
        "\n| model | backend | key fact | key + citation | retrieved | abstains | false abstention | leaks "
        "| recited / abstained by correction | s/answer p50 | attribution s p50 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        att = r.get("attribution", {}).get("seconds_p50", "-")
        print(
            f"| {r['model']} | {r['backend']} | {_f(r['key'])} | {_f(r['key_cited'])} | {_f(r['retrieved'])} "
            f"| {_f(r['abstains'])} | {_f(r['false_abstention'])} | {r['leaks']} "
            f"| {r['recited']} / {r['abstained_by_correction']} | {r['seconds_p50']} | {att} |"
        )
    n = results[0] if results else {}
    print(f"\n{n.get('answerable', 0)} answerable, {n.get('unanswerable', 0)} unanswerable questions")


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    parser.add_argument("--backend", default="auto", help="auto (what the CLI uses), llamacpp or torch")
    parser.add_argument("--sets", default="questions,heldback,unanswerable", help=", ".join(SETS))
    parser.add_argument("--n", type=int, default=None, help="questions per set (default: all)")
    parser.add_argument("--passages", type=int, default=5, help="hybrid passages given to each answer")
    parser.add_argument("--home", type=Path, default=None, help="build the KB under HOME/knowledge, reuse it")
    parser.add_argument("--attribute", type=int, default=0, help="also time attribution for K answers")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures and rows here")
    parser.add_argument(
        "--extractive",
        action="store_true",
        help="also the extractive answer (no model; --models '' for it alone)",
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.sets.split(",") if s not in SETS]
    if unknown:
        parser.error(f"unknown sets {unknown}: choose among {', '.join(SETS)}")
    questions = [q for s in args.sets.split(",") for q in select(load_questions(SETS[s]), args.n)]

    with tempfile.TemporaryDirectory(prefix="clearlm-answers-") as tmp:
        kb, _ = build(manual_paths(), args.home or Path(tmp))
        with kb:
            models = [m for m in args.models.split(",") if m]
            results = [run_model(m, args.backend, kb, questions, args) for m in models]
            if args.extractive:
                results.append(run_extractive(kb, questions, args))
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"sets": args.sets, "n": args.n, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
