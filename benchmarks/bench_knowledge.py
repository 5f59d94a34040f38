"""Knowledge-base figures on a real document set: the Debian Reference manual (Debian package
debian-reference-en, HTML in /usr/share/debian-reference; `make docs-corpus` installs it) and the
questions in benchmarks/data/kb_questions.jsonl (see benchmarks/data/README.md).

retrieval   recall@5 and MRR@10 of `KnowledgeBase.search` per mode: vector only, BM25 only, hybrid (reciprocal
            rank fusion), hybrid with MMR; overall and for lexical and paraphrased questions apart.
ask         on a subset of questions, cited answers (`clearlm.knowledge.answer.answer`) over the top hybrid
            passages: how often the known answer passage was among them, how often the passage with the highest
            context attribution (ablation) is it, and how often the answer cites it.
ingest      files, chunks, seconds and chunks per second (embedding included) of building the knowledge base.

The answer passage. Each question's "answer" is a short verbatim quote of the manual; after whitespace
normalisation (NFKC, every run of white space one space) it occurs exactly once in the text clearlm extracts
from its file and in no other file of the set (`check_questions`; the script stops if one does not). A
retrieved passage counts as the answer passage when its normalised text contains the normalised quote, or
when it comes from the quote's file and its character span covers at least half of the quote's span in
that file's extracted text. The same rule (`is_answer_passage`) applies to every mode and to `ask`.

python benchmarks/bench_knowledge.py                           # a fresh KB in a temporary folder
python benchmarks/bench_knowledge.py --home /tmp/kb-home       # build once there, reuse it after (it is
                                                               # then $CLEARLM_HOME=/tmp/kb-home's KB too)
python benchmarks/bench_knowledge.py --questions 40 --ask 5 --json out.json
python benchmarks/bench_knowledge.py --chapters ch03,ch05,ch08 --ask 0   # a subset of the manual
python benchmarks/bench_knowledge.py --check                   # only check the three question files

It installs nothing: the manual, the embedding model and (for --ask) the packaged chat model must be there.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"
QUESTIONS = DATA / "kb_questions.jsonl"
HELDBACK = DATA / "kb_heldback.jsonl"  # held back from prompt tuning (benchmarks/data/README.md)
UNANSWERABLE = DATA / "kb_unanswerable.jsonl"  # questions the manual does not answer
MANUAL = Path("/usr/share/debian-reference")
# The preface, the twelve chapters and the appendix; not index.en.html (a table of contents).
FILES = ("pr01", *(f"ch{i:02d}" for i in range(1, 13)), "apa")
KB_NAME = "debian-reference"
QUOTE_WORDS = (5, 20)
KEY_STRINGS = (1, 4)  # strings in an answer key
_QUOTES = str.maketrans("", "", "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f")  # removed from keys
K = 10  # passages retrieved per question; MRR is computed over these
RECALL_AT = 5
MODES = ("vector", "bm25", "hybrid", "hybrid+mmr")
MMR_LAMBDA = 0.5  # relevance against diversity, for hybrid+mmr


@dataclass(frozen=True, slots=True)
class Question:
    """One line of kb_questions.jsonl or kb_heldback.jsonl (answerable) or of kb_unanswerable.jsonl.
    ``answer`` is the verbatim quote; ``style`` is "lexical" (shares the passage's key terms), "paraphrase"
    (asks in other words) or "unanswerable"; ``key`` holds the strings of which a right answer states at
    least one (`states_key`). An unanswerable question has no file, quote or key; ``absent_terms`` are
    terms that occur in no file of the manual."""

    id: str
    question: str
    file: str
    answer: str
    style: str
    key: tuple[str, ...] = ()
    answerable: bool = True
    absent_terms: tuple[str, ...] = ()


# ---- the question set and the answer passages


def normalise(text: str) -> str:
    """Each character in NFKC, every run of white space one space, stripped."""
    if text.isascii():
        return re.sub(r"\s+", " ", text).strip()
    return _normalised_with_offsets(text)[0]


def _normalised_with_offsets(text: str) -> tuple[str, list[int]]:
    """``normalise(text)`` and, for each of its characters, the offset in ``text`` it came from."""
    out: list[str] = []
    where: list[int] = []
    space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            space = space or bool(out)
            continue
        if space:
            out.append(" ")
            where.append(i - 1)
            space = False
        for c in unicodedata.normalize("NFKC", ch):
            if c.isspace():  # NFKC turns a few characters (e.g. U+00A0) into a space
                if out and out[-1] != " ":
                    out.append(" ")
                    where.append(i)
            else:
                out.append(c)
                where.append(i)
    return "".join(out), where


def locate(quote: str, text: str) -> list[tuple[int, int]]:
    """Every (start, end) span of ``text`` whose normalised form is ``normalise(quote)``, as offsets into
    ``text``. Occurrences are found without overlap, left to right."""
    needle = normalise(quote)
    if not needle:
        return []
    flat, where = _normalised_with_offsets(text)
    spans, at = [], flat.find(needle)
    while at >= 0:
        spans.append((where[at], where[at + len(needle) - 1] + 1))
        at = flat.find(needle, at + len(needle))
    return spans


def key_normalise(text: str) -> str:
    """``text`` as key strings are compared: NFKC, lower case, straight and curly quotes and backticks
    removed, every run of white space one space, stripped."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_QUOTES)
    return re.sub(r"\s+", " ", text).strip()


def states_key(answer_text: str, key: Sequence[str]) -> bool:
    """True when ``answer_text`` states the key fact: after `key_normalise`, it contains at least one of
    the ``key`` strings (alternatives that are equally right). False for an empty key."""
    flat = key_normalise(answer_text)
    return any(k and k in flat for k in map(key_normalise, key))


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    """Every question in the file, in order: answerable ones (kb_questions.jsonl, kb_heldback.jsonl: id,
    question, file, answer, style, key) and unanswerable ones (kb_unanswerable.jsonl: id, question, style
    "unanswerable", why, absent_terms). Raises ValueError naming the line of a malformed one."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row.get("style") == "unanswerable":
                absent = _strings(row["absent_terms"], "absent_terms")
                out.append(Question(row["id"], row["question"], "", "", "unanswerable", (), False, absent))
            else:
                key = _strings(row.get("key", []), "key")
                out.append(
                    Question(row["id"], row["question"], row["file"], row["answer"], row["style"], key)
                )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path.name} line {n}: {exc!r}") from None
    return out


def _strings(value: object, field: str) -> tuple[str, ...]:
    """``value`` (a JSON list of strings) as a tuple. Raises TypeError naming ``field`` otherwise."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{field} must be a list of strings, not {value!r}")
    return tuple(value)


def select(
    questions: Sequence[Question], n: int | None, files: Iterable[str] | None = None
) -> list[Question]:
    """The first ``n`` questions taken in turn from each file (so a short run still covers every chapter),
    keeping only those on ``files`` (file names, e.g. "ch03.en.html") when given; all of them if n is None."""
    keep = set(files) if files is not None else None
    by_file: dict[str, list[Question]] = {}
    for q in questions:
        if keep is None or q.file in keep:
            by_file.setdefault(q.file, []).append(q)
    order: list[Question] = []
    queues = list(by_file.values())
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order if n is None else order[:n]


def check_questions(
    questions: Sequence[Question], texts: dict[str, str], *, require_keys: bool = False
) -> list[str]:
    """Problems with the question set against ``texts`` (file name: extracted text); empty when it is sound:
    unique ids, a known file, a quote of 5-20 words found exactly once in its file and in no other, and
    1-4 key strings (required when ``require_keys``), each found after `key_normalise` in the quote or in
    its file. An unanswerable question needs absent terms, none of which occurs (after `key_normalise`)
    in any of ``texts``."""
    problems = []
    flat = {name: normalise(text) for name, text in texts.items()}
    keyed: dict[str, str] = {}  # file name: its text as key strings are compared, made when first needed
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            problems.append(f"{q.id}: duplicate id")
        seen.add(q.id)
        if not q.answerable:
            problems += _check_unanswerable(q, texts, keyed)
            continue
        if q.style not in ("lexical", "paraphrase"):
            problems.append(f"{q.id}: style {q.style!r} is neither lexical nor paraphrase")
        words = len(q.answer.split())
        if not QUOTE_WORDS[0] <= words <= QUOTE_WORDS[1]:
            problems.append(f"{q.id}: the quote has {words} words, not {QUOTE_WORDS[0]}-{QUOTE_WORDS[1]}")
        if q.file not in texts:
            problems.append(f"{q.id}: {q.file} is not in the document set")
            continue
        needle = normalise(q.answer)
        found = flat[q.file].count(needle)
        if found != 1:
            problems.append(f"{q.id}: the quote occurs {found} times in {q.file}, not once")
        others = [name for name, text in flat.items() if name != q.file and needle in text]
        if others:
            problems.append(f"{q.id}: the quote also occurs in {', '.join(sorted(others))}")
        if q.key or require_keys:
            if not KEY_STRINGS[0] <= len(q.key) <= KEY_STRINGS[1]:
                problems.append(f"{q.id}: {len(q.key)} key strings, not {KEY_STRINGS[0]}-{KEY_STRINGS[1]}")
            if q.file not in keyed:
                keyed[q.file] = key_normalise(texts[q.file])
            quote = key_normalise(q.answer)
            for k in q.key:
                needle = key_normalise(k)
                if not needle or (needle not in quote and needle not in keyed[q.file]):
                    problems.append(f"{q.id}: key {k!r} is neither in the quote nor in {q.file}")
    return problems


def _check_unanswerable(q: Question, texts: dict[str, str], keyed: dict[str, str]) -> list[str]:
    """`check_questions` for one unanswerable question (``keyed`` caches each file's `key_normalise`)."""
    problems = []
    if q.style != "unanswerable":
        problems.append(f"{q.id}: style {q.style!r} of an unanswerable question is not 'unanswerable'")
    if not q.absent_terms:
        problems.append(f"{q.id}: no absent terms")
    for term in q.absent_terms:
        needle = key_normalise(term)
        if not needle:
            problems.append(f"{q.id}: an empty absent term")
            continue
        for name in texts.keys() - keyed.keys():
            keyed[name] = key_normalise(texts[name])
        found = [name for name in sorted(texts) if needle in keyed[name]]
        if found:
            problems.append(f"{q.id}: absent term {term!r} occurs in {', '.join(found)}")
    return problems


def check_all(texts: dict[str, str], paths: Sequence[Path] = (QUESTIONS, HELDBACK, UNANSWERABLE)) -> int:
    """`--check`: every question of ``paths`` (those on files outside ``texts`` left out) checked against
    ``texts``, keys required, ids unique across the files. Prints OK and the counts, or every problem on
    stderr; returns the exit status (0 or 1)."""
    questions, counts = [], []
    for path in paths:
        held = [q for q in load_questions(path) if not q.answerable or q.file in texts]
        questions += held
        counts.append(f"{len(held)} from {path.name}")
    version = manual_version()
    if not _matches(check_questions(questions, texts, require_keys=True), version):
        return 1
    print(f"OK: {', '.join(counts)} checked against {len(texts)} files of debian-reference-en {version}")
    return 0


def _matches(problems: list[str], version: str) -> bool:
    """True when there are no problems; else prints them (to stderr) and returns False."""
    if problems:
        print(f"the questions do not match the manual (debian-reference-en {version}):", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
    return not problems


def answer_spans(questions: Sequence[Question], texts: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Each question's answer span (start, end) in its file's extracted text. Raises ValueError for a quote
    not found exactly once (run `check_questions` first for the full list)."""
    spans = {}
    for q in questions:
        found = locate(q.answer, texts[q.file])
        if len(found) != 1:
            raise ValueError(f"{q.id}: the quote occurs {len(found)} times in {q.file}, not once")
        spans[q.id] = found[0]
    return spans


def is_answer_passage(passage, question: Question, span: tuple[int, int]) -> bool:
    """True when ``passage`` (any object with ``text``, ``path``, ``start``, ``end``) is the question's answer
    passage: its normalised text contains the normalised quote, or it comes from the quote's file and its
    span covers at least half of the quote's ``span``."""
    if normalise(question.answer) in normalise(passage.text):
        return True
    if Path(passage.path).name != question.file:
        return False
    covered = min(passage.end, span[1]) - max(passage.start, span[0])
    return covered * 2 >= span[1] - span[0]


def first_rank(flags: Iterable[bool]) -> int | None:
    """1-based position of the first True in ``flags``, or None."""
    return next((i for i, hit in enumerate(flags, 1) if hit), None)


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose answer passage is among the first ``k`` (ranks are 1-based, None = missed)."""
    return sum(r is not None and r <= k for r in ranks) / len(ranks) if ranks else float("nan")


def mrr(ranks: Sequence[int | None], k: int = K) -> float:
    """Mean reciprocal rank at ``k``: 1/rank when the answer passage is among the first ``k``, else 0."""
    return sum(1 / r for r in ranks if r is not None and r <= k) / len(ranks) if ranks else float("nan")


# ---- the document set


def manual_paths(chapters: Sequence[str] | None = None, root: Path = MANUAL) -> list[Path]:
    """The manual's HTML files (``chapters`` as stems such as "ch03"; all of FILES when None). Raises
    SystemExit saying how to install the manual when one is missing."""
    stems = list(chapters) if chapters else list(FILES)
    unknown = [s for s in stems if s not in FILES]
    if unknown:
        raise SystemExit(f"unknown chapters {', '.join(unknown)}: choose among {', '.join(FILES)}")
    paths = [root / f"{stem}.en.html" for stem in stems]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(
            f"the Debian Reference manual is not installed ({', '.join(missing)} missing in {root}): "
            "run `make docs-corpus` (apt-get install debian-reference-en, as root)"
        )
    return paths


def manual_version() -> str:
    """The installed debian-reference-en version (from dpkg's status file), or "unknown"."""
    try:
        status = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    m = re.search(r"^Package: debian-reference-en\n(?:[^\n]+\n)*?Version: (\S+)", status, re.MULTILINE)
    return m.group(1) if m else "unknown"


def extracted_texts(paths: Sequence[Path]) -> dict[str, str]:
    """File name: the text clearlm extracts from it (the text chunk offsets refer to)."""
    from clearlm.knowledge.documents import read_document

    return {p.name: read_document(p).text for p in paths}


# ---- building the knowledge base


def build(paths: Sequence[Path], home: Path, name: str = KB_NAME) -> tuple[object, dict]:
    """Open knowledge base ``name`` (the embedded index) under ``home``/knowledge, creating it when missing,
    and add ``paths`` (files held unchanged are skipped by content hash). Returns the knowledge base and
    the ingest figures: files, chunks held, chunks written now, seconds, chunks per second (embedding
    included; 0 when nothing was new)."""
    from clearlm.knowledge import KnowledgeBase, KnowledgeBaseNotFoundError

    root = home / "knowledge"
    try:
        kb = KnowledgeBase.open(name, root=root)
    except KnowledgeBaseNotFoundError:
        kb = KnowledgeBase.create(name, root=root)
    report = kb.add([str(p) for p in paths], progress=_progress)
    if report.skipped:
        raise SystemExit("\n".join(report.warnings))
    return kb, {
        "files": len(paths),
        "chunks": sum(s.chunks for s in kb.sources()),
        "chunks_added": report.chunks,
        "chunk_tokens": kb.settings.chunk_tokens,
        "overlap": kb.settings.overlap,
        "seconds": round(report.seconds, 2),
        "chunks_per_s": round(report.chunks / report.seconds, 1) if report.chunks else 0.0,
    }


def _progress(done: int, total: int, path: str) -> None:
    print(f"  added {done}/{total}: {Path(path).name}", file=sys.stderr, flush=True)


# ---- retrieval


def search(kb, query: str, mode: str, k: int = K, mmr: float = MMR_LAMBDA) -> list:
    """The passages ``kb`` returns for ``query`` under one of MODES, best first."""
    if mode == "hybrid+mmr":
        return kb.search(query, k=k, mode="hybrid", mmr=mmr).passages
    return kb.search(query, k=k, mode=mode).passages


def retrieval_scores(
    kb,
    questions: Sequence[Question],
    spans: dict[str, tuple[int, int]],
    modes: Sequence[str] = MODES,
    mmr: float = MMR_LAMBDA,
) -> dict:
    """Per mode: recall@5 and MRR@10 over all questions and per style, the median search latency (ms) and
    every question's rank of its answer passage (None when it is not among the first K)."""
    out = {}
    for mode in modes:
        ranks: dict[str, int | None] = {}
        ms = []
        for q in questions:
            t0 = time.perf_counter()
            passages = search(kb, q.question, mode, mmr=mmr)
            ms.append((time.perf_counter() - t0) * 1000)
            ranks[q.id] = first_rank(is_answer_passage(p, q, spans[q.id]) for p in passages)
        row = {"n": len(questions), **_scores(list(ranks.values()))}
        for style in ("lexical", "paraphrase"):
            sub = [ranks[q.id] for q in questions if q.style == style]
            row[style] = {"n": len(sub), **_scores(sub)}
        row["latency_ms_p50"] = round(statistics.median(ms), 1) if ms else None
        row["ranks"] = ranks
        out[mode] = row
    return out


def _scores(ranks: Sequence[int | None]) -> dict:
    return {f"recall@{RECALL_AT}": recall_at(ranks, RECALL_AT), f"mrr@{K}": mrr(ranks, K)}


# ---- cited answers


def ask_scores(
    kb,
    questions: Sequence[Question],
    spans: dict[str, tuple[int, int]],
    n_passages: int,
    gradient: bool = False,
) -> dict:
    """Cited answers by the packaged chat model (torch backend) over the top ``n_passages`` hybrid passages.

    Per question: the numbers of the passages that are its answer passage; the top-attributed passage
    (``CitedAnswer.top_attributed``: the largest ablation weight of ContextCite's surrogate, None when it is
    not positive or is shared); with ``gradient``, the passage with the largest input x gradient sum; the
    cited numbers; seconds. Rates are over all asked questions, and over those whose answer passage was among
    the passages given ("when retrieved"). ``top1_baseline`` is how often the answer passage was passage [1],
    the share a position-biased attribution could score without reading."""
    from clearlm.knowledge.answer import answer
    from clearlm.models import DEFAULT_MODEL, load_backend

    backend = load_backend(DEFAULT_MODEL)
    rows = []
    for q in questions:
        passages = kb.search(q.question, k=n_passages, mode="hybrid").passages
        known = [i for i, p in enumerate(passages, 1) if is_answer_passage(p, q, spans[q.id])]
        result = answer(backend, q.question, passages, gradient=gradient)
        att = result.attribution
        top = result.top_attributed()
        grad_top = None if att is None or att.gradient is None else int(att.gradient.argmax()) + 1
        lds = None if att is None or att.lds != att.lds else round(float(att.lds), 3)
        rows.append(
            {
                "id": q.id,
                "answer_passages": known,
                "top_attributed": top,
                "top_gradient": grad_top,
                "cited": result.cited,
                "lds": lds,
                "flags": [f"[{s.number}] {s.flag}" for s in result.flagged],
                "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
                "answer": result.text,
            }
        )
        print(
            f"  ask {q.id}: answer passage {known or '-'}, top-attributed {top or '-'}, cited {result.cited}",
            file=sys.stderr,
            flush=True,
        )
    return {"passages": n_passages, "model": backend.name, **ask_rates(rows), "rows": rows}


def ask_rates(rows: Sequence[dict]) -> dict:
    """The rates ``ask_scores`` reports, from its per-question rows."""

    def rate(hit: Callable[[dict], bool], among: Sequence[dict]) -> float:
        return sum(map(hit, among)) / len(among) if among else float("nan")

    def given(r: dict) -> bool:
        return bool(r["answer_passages"])

    def top_is(r: dict) -> bool:
        return r["top_attributed"] in r["answer_passages"]

    def gradient_is(r: dict) -> bool:
        return r["top_gradient"] in r["answer_passages"]

    def cites(r: dict) -> bool:
        return bool(set(r["cited"]) & set(r["answer_passages"]))

    def first(r: dict) -> bool:
        return 1 in r["answer_passages"]

    retrieved = [r for r in rows if given(r)]
    seconds = [sum(r["seconds"].values()) for r in rows]
    return {
        "n": len(rows),
        "retrieved": rate(given, rows),
        "top_attributed_is_answer": rate(top_is, rows),
        "top_attributed_is_answer_when_retrieved": rate(top_is, retrieved),
        "top_gradient_is_answer_when_retrieved": rate(
            gradient_is, [r for r in retrieved if r["top_gradient"] is not None]
        ),
        "cites_answer": rate(cites, rows),
        "cites_answer_when_retrieved": rate(cites, retrieved),
        "top1_baseline_when_retrieved": rate(first, retrieved),
        "seconds_per_answer_p50": round(statistics.median(seconds), 1) if seconds else None,
    }


def print_ask(ask: dict) -> None:
    n, got = ask["n"], round(ask["retrieved"] * ask["n"])
    print(
        f"\n| cited answers ({ask['model']}, top {ask['passages']} hybrid passages) | all {n} "
        f"| answer passage given ({got}) |\n|---|---|---|"
    )
    print(f"| answer passage among the passages | {fmt(ask['retrieved'])} | 1.00 |")
    print(
        f"| top-attributed passage (ablation) is it | {fmt(ask['top_attributed_is_answer'])} "
        f"| {fmt(ask['top_attributed_is_answer_when_retrieved'])} |"
    )
    gradient = ask["top_gradient_is_answer_when_retrieved"]
    if gradient == gradient:  # only with --gradient
        print(f"| top passage by gradient (input x gradient) is it | - | {fmt(gradient)} |")
    print(f"| the answer cites it | {fmt(ask['cites_answer'])} | {fmt(ask['cites_answer_when_retrieved'])} |")
    print(f"| (it was passage [1]) | - | {fmt(ask['top1_baseline_when_retrieved'])} |")
    print(f"\nseconds per cited answer (generate + attribute), p50: {ask['seconds_per_answer_p50']}")


# ---- the script


def fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.2f}"


def print_retrieval(retrieval: dict) -> None:
    n = next(iter(retrieval.values()))
    print(
        f"\n| mode | recall@{RECALL_AT} | MRR@{K} | lexical recall@{RECALL_AT} ({n['lexical']['n']}) "
        f"| paraphrase recall@{RECALL_AT} ({n['paraphrase']['n']}) | search p50 ms |\n|---|---|---|---|---|---|"
    )
    for mode, r in retrieval.items():
        print(
            f"| {mode} | {fmt(r[f'recall@{RECALL_AT}'])} | {fmt(r[f'mrr@{K}'])} "
            f"| {fmt(r['lexical'][f'recall@{RECALL_AT}'])} | {fmt(r['paraphrase'][f'recall@{RECALL_AT}'])} "
            f"| {r['latency_ms_p50']} |",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--questions", type=int, default=None, help="use N questions, taken in turn per chapter"
    )
    parser.add_argument("--ask", type=int, default=5, help="cited answers for the first N of them (0: none)")
    parser.add_argument("--ask-passages", type=int, default=5, help="hybrid passages given to each answer")
    parser.add_argument(
        "--gradient", action="store_true", help="also attribute by input x gradient (a third more time)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--home", type=Path, default=None, help="keep the knowledge base under HOME/knowledge and reuse it"
    )
    parser.add_argument("--chapters", default=None, help=f"comma-separated subset of {','.join(FILES)}")
    parser.add_argument("--mmr", type=float, default=MMR_LAMBDA, help="MMR lambda of the hybrid+mmr mode")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check the question files (kb_questions, kb_heldback, kb_unanswerable) against the manual",
    )
    args = parser.parse_args(argv)

    paths = manual_paths(args.chapters.split(",") if args.chapters else None)
    texts = extracted_texts(paths)
    if args.check:
        return check_all(texts)
    questions = select(load_questions(), None, files=texts)
    version = manual_version()
    if not _matches(check_questions(questions, texts), version):
        return 1
    print(f"{len(questions)} questions checked against {len(paths)} files of debian-reference-en {version}")
    questions = select(questions, args.questions)

    with tempfile.TemporaryDirectory(prefix="clearlm-kb-bench-") as tmp:
        home = args.home or Path(tmp)
        print(f"knowledge base {KB_NAME!r} in {home / 'knowledge'}", flush=True)
        kb, ingest = build(paths, home)
        with kb:
            # Passages' offsets index into the text the knowledge base stored when it read each file (a
            # reused base may have been built by another version of the reader): the spans come from it.
            held = {Path(s.path).name: kb.source_text(s.path) for s in kb.sources()}
            held = {name: held[name] for name in texts}
            problems = check_questions(questions, held)
            if problems:
                print(f"the questions do not match the text held in {kb.location}:", file=sys.stderr)
                print("\n".join(problems), file=sys.stderr)
                print("build it afresh (another --home, or none)", file=sys.stderr)
                return 1
            figures = evaluate(kb, questions, answer_spans(questions, held), ingest, args)
    figures["manual"] = {
        "package": "debian-reference-en",
        "version": version,
        "files": [p.name for p in paths],
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def evaluate(
    kb, questions: Sequence[Question], spans: dict[str, tuple[int, int]], ingest: dict, args
) -> dict:
    """Print and return the figures of one run on an open knowledge base."""
    print(
        f"ingest: {ingest['files']} files, {ingest['chunks']} chunks ({ingest['chunks_added']} new) in "
        f"{ingest['seconds']} s, {ingest['chunks_per_s']} chunks/s",
        flush=True,
    )
    retrieval = retrieval_scores(kb, questions, spans, mmr=args.mmr)
    print_retrieval(retrieval)
    figures = {"questions": len(questions), "ingest": ingest, "retrieval": retrieval}
    if args.ask > 0:
        figures["ask"] = ask_scores(kb, questions[: args.ask], spans, args.ask_passages, args.gradient)
        print_ask(figures["ask"])
    return figures


if __name__ == "__main__":
    sys.exit(main())
