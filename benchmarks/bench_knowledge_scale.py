"""Speed and scale of the embedded knowledge-base index (SQLite FTS5 + usearch HNSW).

For each size N (default 10,000 and 100,000 chunks) it builds a knowledge base from N real text chunks
(Python's standard-library docstrings, then the text under /usr/share/doc, packed into chunks of 40-150
words) and reports:

- ingest throughput, chunks per second: embedding with the packaged all-MiniLM-L6-v2 (batched) plus
  writing the chunks (SQLite rows, FTS5) plus building the HNSW graph; each part is also given alone;
- query latency (p50, p95, milliseconds) of ``KnowledgeBase.search`` in each mode, query embedding
  (on one thread) included and also given alone, over sentences taken from random chunks (each query has a passage that holds it);
- recall@10 of the approximate (HNSW) vector search against exact search (every vector scored), over the
  same queries.

Embeddings are cached under $CLEARLM_HOME/bench (keyed by the chunks' content), so a rerun measures the
index without re-embedding; the embedding rate reported is then the one measured when they were made.

    python benchmarks/bench_knowledge_scale.py                  # 10k and 100k chunks (long: embeds 100k)
    python benchmarks/bench_knowledge_scale.py --sizes 10000    # one size
    python benchmarks/bench_knowledge_scale.py --small          # 200 chunks, seconds (the test runs this)
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import re
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from clearlm.knowledge import KnowledgeBase
from clearlm.knowledge.base import default_embedder
from clearlm.knowledge.chunking import Chunk
from clearlm.knowledge.index.protocol import SourceRecord
from clearlm.paths import clearlm_home

CHUNKS_PER_SOURCE = 100
MIN_WORDS, MAX_WORDS = 40, 150
MODES = ("hybrid", "vector", "bm25")


# ---- real text


def stdlib_docstrings() -> Iterator[str]:
    """Docstrings of Python's standard library (modules, classes, functions), read with ast (no imports)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for f in sorted(root.rglob("*.py")):
        if {"test", "tests", "site-packages", "idlelib"} & set(f.parts):
            continue
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def debian_docs() -> Iterator[str]:
    """Text files under /usr/share/doc (READMEs, changelogs, plain-text manuals), gzipped ones included."""
    root = Path("/usr/share/doc")
    if not root.is_dir():
        return
    for f in sorted(root.rglob("*")):
        if not f.is_file() or f.suffix in (".html", ".htm", ".pdf", ".png", ".svg", ".jpg", ".js", ".css"):
            continue
        try:
            data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        except (OSError, EOFError):
            continue
        if b"\x00" in data[:4096]:
            continue
        yield data.decode("utf-8", errors="replace")


def real_chunks(n: int) -> list[str]:
    """``n`` distinct chunks of 40-150 words: consecutive paragraphs packed together."""
    seen: set[str] = set()
    out: list[str] = []

    def texts() -> Iterator[str]:
        yield from stdlib_docstrings()
        yield from debian_docs()

    for text in texts():
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
        current: list[str] = []
        for p in paragraphs:
            if not p:
                continue
            current.append(p)
            words = sum(len(c.split()) for c in current)
            if words >= MIN_WORDS:
                chunk = " ".join(" ".join(current).split()[:MAX_WORDS])
                current = []
                if chunk not in seen:
                    seen.add(chunk)
                    out.append(chunk)
                    if len(out) == n:
                        return out
    raise SystemExit(f"found only {len(out)} chunks of real text on this machine, {n} asked for")


def sample_queries(chunks: list[str], count: int, seed: int = 0) -> list[str]:
    """Queries: one sentence (6-30 words) taken from random chunks, so each has a right answer nearby."""
    rng = np.random.default_rng(seed)
    queries: list[str] = []
    for i in rng.permutation(len(chunks)):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", chunks[i]) if 6 <= len(s.split()) <= 30]
        if sentences:
            queries.append(sentences[int(rng.integers(len(sentences)))])
        if len(queries) == count:
            break
    return queries


# ---- measuring


def embeddings(chunks: list[str], embedder) -> tuple[np.ndarray, float]:
    """float32[n, 384] and the embedding rate (chunks/s) when they were computed; cached on disk."""
    key = hashlib.sha256("\0".join(chunks).encode()).hexdigest()[:16]
    cache = clearlm_home() / "bench" / f"kb-scale-{len(chunks)}-{key}"
    if cache.with_suffix(".npy").exists():
        rate = json.loads(cache.with_suffix(".json").read_text())["chunks_per_s"]
        return np.load(cache.with_suffix(".npy")), rate
    began = time.perf_counter()
    parts = [embedder.encode(chunks[i : i + 1024], batch_size=64) for i in range(0, len(chunks), 1024)]
    rate = len(chunks) / (time.perf_counter() - began)
    vectors = np.concatenate(parts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache.with_suffix(".npy"), vectors)
    cache.with_suffix(".json").write_text(json.dumps({"chunks_per_s": rate}))
    return vectors, rate


def build(kb: KnowledgeBase, chunks: list[str], vectors: np.ndarray) -> tuple[float, float, list[str]]:
    """Write the chunks as sources of 100 chunks each, then build the HNSW graph.
    Returns (seconds writing, seconds building the graph, chunk ids in order)."""
    from clearlm.knowledge.index.protocol import chunk_id

    ids: list[str] = []
    began = time.perf_counter()
    with kb.index.write_lock():
        for s in range(0, len(chunks), CHUNKS_PER_SOURCE):
            part = chunks[s : s + CHUNKS_PER_SOURCE]
            text, pieces = "", []
            for i, c in enumerate(part):
                start = len(text) + (2 if text else 0)
                text = f"{text}\n\n{c}" if text else c
                pieces.append(Chunk(i, c, start, start + len(c), (f"part {s // CHUNKS_PER_SOURCE}",), 0))
            path = f"/bench/source-{s // CHUNKS_PER_SOURCE:05d}.txt"
            digest = hashlib.sha256(text.encode()).hexdigest()
            record = SourceRecord(
                path, "txt", path, digest, len(text), len(part), "2026-01-01T00:00:00+00:00"
            )
            kb.index.replace_source(record, text, pieces, vectors[s : s + len(part)])
            ids += [chunk_id(path, digest, i) for i in range(len(part))]
        written = time.perf_counter()
        kb.index.flush()
    return written - began, time.perf_counter() - written, ids


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def run_size(n: int, queries_n: int, embedder, folder: Path) -> dict:
    chunks = real_chunks(n)
    queries = sample_queries(chunks, queries_n)
    vectors, embed_rate = embeddings(chunks, embedder)
    kb = KnowledgeBase.create(f"scale-{n}", root=folder, embedder=embedder)
    write_s, graph_s, ids = build(kb, chunks, vectors)
    embed_s = n / embed_rate
    ingest = n / (embed_s + write_s + graph_s)

    # One short query gains nothing from more threads, and on a shared machine torch's spinning threads
    # can make it 20x slower (measured: 430 ms against 18 ms), so queries are embedded on one thread.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    kb.search(queries[0], k=10)  # warm: tokenizer copy, the graph's memory map, SQLite's cache
    times = []
    for q in queries:
        began = time.perf_counter()
        embedder.encode([q])
        times.append((time.perf_counter() - began) * 1000)
    embed_query = percentiles(times)
    latency = {}
    for mode in MODES:
        times = []
        for q in queries:
            began = time.perf_counter()
            kb.search(q, k=10, mode=mode)
            times.append((time.perf_counter() - began) * 1000)
        latency[mode] = percentiles(times)

    qv = embedder.encode(queries)
    exact = np.argsort(-(qv @ vectors.T), axis=1, kind="stable")[:, :10]
    recalls = []
    from clearlm.knowledge.index.protocol import Filters

    for row, q in enumerate(qv):
        got = {cid for cid, _ in kb.index.vector_search(q, 10, Filters())}
        recalls.append(len(got & {ids[j] for j in exact[row]}) / 10)
    kb.close()
    torch.set_num_threads(threads)
    return {
        "chunks": n,
        "ingest_chunks_per_s": ingest,
        "embed_chunks_per_s": embed_rate,
        "write_chunks_per_s": n / write_s,
        "graph_build_s": graph_s,
        "latency_ms": {m: {"p50": p50, "p95": p95} for m, (p50, p95) in latency.items()},
        "query_embedding_ms": {"p50": embed_query[0], "p95": embed_query[1]},
        "recall_at_10": float(np.mean(recalls)),
        "queries": len(queries),
        "index_bytes": sum(f.stat().st_size for f in (folder / f"scale-{n}").iterdir()),
    }


def print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="embedded knowledge-base index (SQLite FTS5 + usearch HNSW), all-MiniLM-L6-v2")
    for col in ("chunks", "ingest/s", "embed/s", "write/s", "graph s"):
        table.add_column(col, justify="right")
    table.add_column("query embedding p50/p95 ms", justify="right")
    for m in MODES:
        table.add_column(f"{m} p50/p95 ms", justify="right")
    table.add_column("recall@10", justify="right")
    table.add_column("size MB", justify="right")
    for r in results:
        lat = r["latency_ms"]
        table.add_row(
            f"{r['chunks']:,}",
            f"{r['ingest_chunks_per_s']:.0f}",
            f"{r['embed_chunks_per_s']:.0f}",
            f"{r['write_chunks_per_s']:.0f}",
            f"{r['graph_build_s']:.1f}",
            f"{r['query_embedding_ms']['p50']:.1f} / {r['query_embedding_ms']['p95']:.1f}",
            *(f"{lat[m]['p50']:.1f} / {lat[m]['p95']:.1f}" for m in MODES),
            f"{r['recall_at_10']:.3f}",
            f"{r['index_bytes'] / 1e6:.0f}",
        )
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--small", action="store_true", help="200 chunks and 20 queries: a quick check")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sizes = [200] if args.small else [int(s) for s in args.sizes.split(",")]
    queries = 20 if args.small else args.queries
    embedder = default_embedder()
    results = []
    with tempfile.TemporaryDirectory(prefix="kb-scale-") as tmp:
        for n in sizes:
            results.append(run_size(n, queries, embedder, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
