"""The public API of knowledge bases: create or open one, add files, search it (hybrid, vector or BM25).

    kb = KnowledgeBase.create("handbook")                      # $CLEARLM_HOME/knowledge/handbook/
    kb.add(["docs/"])                                          # txt, md, html, pdf; skips unchanged files
    result = kb.search("how do I reset my password?", k=5)     # BM25 + vectors, reciprocal rank fusion
    for p in result.passages:
        print(p.score, p.path, p.heading, kb.source_text(p.path)[p.start:p.end])

``url="postgresql://..."`` keeps the same knowledge bases in PostgreSQL with pgvector instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from clearlm.errors import InvalidInputError
from clearlm.knowledge.chunking import Chunk, check_sizes, chunk_document, tokenizer_offsets
from clearlm.knowledge.documents import Document, kind_of, read_document
from clearlm.knowledge.errors import (
    DocumentError,
    KnowledgeBaseNotFoundError,
    SourceNotFoundError,
)
from clearlm.knowledge.index import Filters, Index, IndexStore, Settings, SourceRecord, open_store
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.retrieval import (
    MODES,
    SearchResult,
    maximal_marginal_relevance,
    reciprocal_rank_fusion,
)
from clearlm.knowledge.tenants import DEFAULT_TENANT

log = logging.getLogger("clearlm.knowledge")

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP = 40
MAX_CHUNK_TOKENS = 254  # all-MiniLM-L6-v2 reads 256 tokens, two of them [CLS] and [SEP]
MAX_K = 100
CANDIDATES = 50  # how deep each retriever looks before fusion or MMR
FLUSH_EVERY = 20_000  # chunks written between saves of the approximate index during one add
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Progress = Callable[[int, int, str], None]  # (files done, files in all, the file just done)

_embedder = None
_embedder_lock = threading.Lock()


def default_embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per process (a few seconds the first time)."""
    global _embedder
    with _embedder_lock:
        if _embedder is None:
            from clearlm.models.embeddings import load_embedder

            _embedder = load_embedder()
        return _embedder


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file ``add`` did not ingest, and why (the message names what to do)."""

    path: str
    reason: str


@dataclass(slots=True)
class AddReport:
    """What ``add`` did: files ingested for the first time, changed files re-ingested (their old chunks
    replaced), unchanged files skipped by content hash, unreadable files skipped; chunks written; seconds."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    @property
    def warnings(self) -> list[str]:
        return [f"skipped {s.path}: {s.reason}" for s in self.skipped]


@dataclass(frozen=True, slots=True)
class KnowledgeBaseInfo:
    """One line of ``list_knowledge_bases``: name, counts, chunking settings, where it lives."""

    name: str
    sources: int
    chunks: int
    chunk_tokens: int
    overlap: int
    location: str


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"a knowledge base name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit; got {name!r}"
        )
    return name


def _resolve(path: str | os.PathLike) -> str:
    """The absolute form a source is stored under (symbolic links resolved)."""
    return str(Path(path).expanduser().resolve())


def _prefix(path: str | os.PathLike) -> str:
    """A path prefix filter: absolute; an existing folder ends with a separator (so ``docs`` does not
    match ``docs2``)."""
    resolved = _resolve(path)
    return resolved.rstrip(os.sep) + os.sep if Path(resolved).is_dir() else resolved


def _store(
    url: str | None, root: str | Path | None, tenant: str, store: IndexStore | None
) -> tuple[IndexStore, bool]:
    """The store to use, and whether it was opened here (then it is closed with the knowledge base)."""
    if store is not None:
        return store, False
    return open_store(url, root, tenant), True


def list_knowledge_bases(
    url: str | None = None,
    *,
    root: str | Path | None = None,
    tenant: str = DEFAULT_TENANT,
    store: IndexStore | None = None,
) -> list[KnowledgeBaseInfo]:
    """Every knowledge base of ``tenant`` in the embedded store (``root``, default
    ``$CLEARLM_HOME/knowledge``) or in the PostgreSQL database at ``url`` (or in ``store``, an open store as
    one tenant sees it), by name."""
    store, owned = _store(url, root, tenant, store)
    out = []
    try:
        for name in store.names():
            index = store.open(name)
            if index is None:
                continue
            try:
                n_sources, n_chunks = index.counts()
                s = index.settings
                out.append(
                    KnowledgeBaseInfo(name, n_sources, n_chunks, s.chunk_tokens, s.overlap, index.location)
                )
            finally:
                index.close()
    finally:
        if owned:
            store.close()
    return out


class KnowledgeBase:
    """A named collection of documents, chunked, embedded and indexed for retrieval.

    Use :meth:`create` or :meth:`open`; ``embedder`` (default: the packaged all-MiniLM-L6-v2, loaded on first
    use) must be the model the base was created with.
    """

    def __init__(self, index: Index, embedder=None, store: IndexStore | None = None) -> None:
        self.index = index
        self._embedder = embedder
        self._token_offsets = None
        self._store = store  # closed with the knowledge base (a store opened for it alone)

    @property
    def name(self) -> str:
        return self.index.name

    @property
    def settings(self) -> Settings:
        return self.index.settings

    @property
    def location(self) -> str:
        return self.index.location

    @classmethod
    def create(
        cls,
        name: str,
        *,
        url: str | None = None,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
        overlap: int = DEFAULT_OVERLAP,
        embedder=None,
        root: str | Path | None = None,
        tenant: str = DEFAULT_TENANT,
        store: IndexStore | None = None,
    ) -> KnowledgeBase:
        """Create an empty knowledge base.

        Args:
            name: 1-64 letters, digits, '.', '_', '-'.
            url: None for the embedded index under ``root`` (default ``$CLEARLM_HOME/knowledge``), or a
                PostgreSQL URL (pgvector).
            chunk_tokens: chunk size in the embedding model's tokens (16 to 254).
            overlap: tokens repeated from the end of one chunk at the start of the next (0 to half a chunk).
            tenant: whose knowledge base it is (see :mod:`clearlm.knowledge.tenants`).
            store: an open store (as one tenant sees it) to use instead of ``url``, ``root`` and ``tenant``,
                so that a server keeps one connection pool per database.

        Raises:
            InvalidInputError: a bad name, tenant or sizes, or a URL that is not PostgreSQL or cannot be
                reached.
            KnowledgeBaseExistsError: the name is taken (in that tenant).
        """
        from clearlm.models.embeddings import DEFAULT_EMBEDDING_MODEL, EMBEDDING_MODELS

        _check_name(name)
        check_sizes(chunk_tokens, overlap)
        if chunk_tokens > MAX_CHUNK_TOKENS:
            raise InvalidInputError(
                f"chunk size must be at most {MAX_CHUNK_TOKENS} tokens (the embedding model reads 256), "
                f"got {chunk_tokens}"
            )
        model = embedder.name if embedder is not None else DEFAULT_EMBEDDING_MODEL
        dims = embedder.dimensions if embedder is not None else EMBEDDING_MODELS[model].dimensions
        settings = Settings(chunk_tokens, overlap, model, dims)
        store, owned = _store(url, root, tenant, store)
        try:
            return cls(store.create(name, settings), embedder, store if owned else None)
        except BaseException:
            if owned:
                store.close()
            raise

    @classmethod
    def open(
        cls,
        name: str,
        *,
        url: str | None = None,
        embedder=None,
        root: str | Path | None = None,
        tenant: str = DEFAULT_TENANT,
        store: IndexStore | None = None,
    ) -> KnowledgeBase:
        """Open an existing knowledge base (of ``tenant``; or in ``store``, as for :meth:`create`).

        Raises:
            KnowledgeBaseNotFoundError: no knowledge base of that name at that location, for that tenant
                (404; another tenant's knowledge base of the same name is not revealed).
            InvalidInputError: a bad name or tenant, or a URL that is not PostgreSQL or cannot be reached.
        """
        _check_name(name)
        store, owned = _store(url, root, tenant, store)
        index = store.open(name)
        if index is None:
            if owned:
                store.close()
            where = f" --db {store.location}" if url else ""
            raise KnowledgeBaseNotFoundError(
                f"no knowledge base named {name!r} in {store.location}: create it with "
                f"`clearlm kb create {name}{where}` (or KnowledgeBase.create({name!r}))"
            )
        return cls(index, embedder, store if owned else None)

    def close(self) -> None:
        self.index.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the embedding model

    @property
    def embedder(self):
        if self._embedder is None:
            self._embedder = default_embedder()
        if self._embedder.name != self.settings.embedding_model:
            raise InvalidInputError(
                f"knowledge base {self.name!r} was built with {self.settings.embedding_model!r}, "
                f"not {self._embedder.name!r}"
            )
        return self._embedder

    @property
    def _offsets(self):
        """Token offsets in the embedding model's tokenizer (made once per knowledge base object)."""
        if self._token_offsets is None:
            self._token_offsets = tokenizer_offsets(self.embedder.tokenizer_copy())
        return self._token_offsets

    def _embed(self, texts: list[str]) -> np.ndarray:
        from clearlm.models.embeddings import MAX_BATCH

        parts = [self.embedder.encode(texts[i : i + MAX_BATCH]) for i in range(0, len(texts), MAX_BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, self.settings.dimensions), np.float32)

    # ---- ingest

    def add(
        self, paths: str | os.PathLike | Iterable[str | os.PathLike], progress: Progress | None = None
    ) -> AddReport:
        """Ingest files and folders (recursively: .txt .md .html .pdf, hidden files skipped).

        A file already held with the same SHA-256 is skipped; a changed one has its chunks replaced. A file
        that cannot be read (empty, binary, encrypted, corrupt, unsupported, missing) is skipped with a
        warning naming it (logged, and in ``report.skipped``); the rest are ingested. Each file is chunked
        and embedded outside the write lock and written inside it, so another process can add at the same
        time. ``progress(done, total, path)`` is called after each file.

        Raises:
            InvalidInputError: no paths given.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        paths = list(paths)
        if not paths:
            raise InvalidInputError("give at least one file or folder to add")
        began = time.perf_counter()
        report = AddReport()
        files = self._collect(paths, report)
        offsets = self._offsets
        since_flush = 0
        try:
            for done, file in enumerate(files, start=1):
                written = self._add_file(file, offsets, report)
                since_flush += written
                if since_flush >= FLUSH_EVERY:
                    with self.index.write_lock():
                        self.index.flush()
                    since_flush = 0
                if progress is not None:
                    progress(done, len(files), str(file))
        finally:
            if report.chunks or report.replaced:
                with self.index.write_lock():
                    self.index.flush()
        report.seconds = time.perf_counter() - began
        return report

    def _collect(self, paths: Sequence[str | os.PathLike], report: AddReport) -> list[Path]:
        files: dict[str, Path] = {}
        for raw in paths:
            p = Path(raw).expanduser()
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    rel = f.relative_to(p).parts
                    if f.is_file() and kind_of(f) and not any(part.startswith(".") for part in rel):
                        files.setdefault(_resolve(f), f)
            elif p.is_file():
                files.setdefault(_resolve(p), p)
            else:
                self._skip(report, str(raw), "no such file or folder: check the path")
        return list(files.values())

    def _skip(self, report: AddReport, path: str, reason: str) -> None:
        report.skipped.append(SkippedFile(path, reason))
        log.warning("skipped %s: %s", path, reason)

    def _add_file(self, file: Path, offsets, report: AddReport) -> int:
        path = _resolve(file)
        try:
            data = file.read_bytes()
        except OSError as exc:
            self._skip(report, path, f"cannot read the file: {exc.strerror}")
            return 0
        digest = hashlib.sha256(data).hexdigest()
        held = self.index.source(path)
        if held is not None and held.sha256 == digest:
            report.unchanged.append(path)
            return 0
        try:
            doc = read_document(path, data)
        except DocumentError as exc:
            self._skip(report, path, exc.reason)
            return 0
        chunks = chunk_document(doc, offsets, self.settings.chunk_tokens, self.settings.overlap)
        if not chunks:
            self._skip(report, path, "no text to index")
            return 0
        vectors = self._embed([_embedding_text(doc, c) for c in chunks])
        record = SourceRecord(
            path, doc.kind, doc.title, digest, len(doc.text), len(chunks), datetime.now(UTC).isoformat()
        )
        with self.index.write_lock():
            held = self.index.source(path)  # another process may have written it meanwhile
            if held is not None and held.sha256 == digest:
                report.unchanged.append(path)
                return 0
            self.index.replace_source(record, doc.text, chunks, vectors)
        (report.replaced if held is not None else report.added).append(path)
        report.chunks += len(chunks)
        return len(chunks)

    def remove(self, path: str | os.PathLike) -> list[str]:
        """Remove a source (a file's path), or every source under a folder. Returns the removed paths.

        Raises:
            SourceNotFoundError: nothing held at or under that path.
        """
        resolved = _resolve(path)
        held = [s.path for s in self.index.sources()]
        if resolved in held:
            targets = [resolved]
        else:
            folder = resolved.rstrip(os.sep) + os.sep
            targets = [p for p in held if p.startswith(folder)]
        if not targets:
            raise SourceNotFoundError(
                f"knowledge base {self.name!r} holds no source at or under {resolved}: "
                f"`clearlm kb sources {self.name}` lists what it holds"
            )
        with self.index.write_lock():
            self.index.remove_sources(targets)
            self.index.flush()
        return targets

    def sources(self) -> list[SourceRecord]:
        """Every source held, by path."""
        return self.index.sources()

    def source_text(self, path: str | os.PathLike) -> str:
        """The text extracted from a source when it was added; passages' ``start``/``end`` index into it.

        Raises:
            SourceNotFoundError: the knowledge base does not hold that path.
        """
        text = self.index.source_text(str(path))  # a passage's path is already the stored form
        if text is None:
            text = self.index.source_text(_resolve(path))
        if text is None:
            raise SourceNotFoundError(
                f"knowledge base {self.name!r} holds no source {_resolve(path)}: "
                f"`clearlm kb sources {self.name}` lists what it holds"
            )
        return text

    # ---- retrieval

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        mmr: float | None = None,
        path_prefix: str | os.PathLike | None = None,
        source: str | os.PathLike | None = None,
    ) -> SearchResult:
        """The ``k`` passages that best answer ``query``.

        Args:
            mode: "hybrid" (BM25 and vectors fused by reciprocal rank fusion, k=60; Cormack et al. 2009),
                "vector" (cosine similarity of all-MiniLM-L6-v2 embeddings) or "bm25" (Robertson's BM25,
                k1=1.2, b=0.75).
            mmr: None, or lambda in [0, 1] to re-rank the mode's top 50 candidates by maximal marginal
                relevance (Carbonell & Goldstein 1998) for diversity: relevance and redundancy are cosine
                similarities (to the query, and to the passages already picked); 1 orders the candidates by
                similarity to the query alone, lower values favour passages unlike those already picked.
            path_prefix: keep sources whose path starts with this (a folder keeps what lies under it).
            source: keep one source (its path).

        Returns a :class:`SearchResult`: ``passages`` best first, each with ``score`` (RRF score, cosine
        similarity or BM25, by mode) and ``ranks`` (1-based, per retriever); ``warnings`` says when the query
        was longer than the embedding model reads and was cut for the vector search.

        Raises:
            InvalidInputError: an empty query, ``k`` outside 1..100, an unknown mode, ``mmr`` outside [0, 1].
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("the query is empty: give some words to search for")
        if not 1 <= k <= MAX_K:
            raise InvalidInputError(f"k must be between 1 and {MAX_K}, got {k}")
        if mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mmr is not None and not 0.0 <= mmr <= 1.0:
            raise InvalidInputError(f"mmr (lambda) must be between 0 and 1, got {mmr}")
        filters = Filters(
            source=_resolve(source) if source is not None else None,
            path_prefix=_prefix(path_prefix) if path_prefix is not None else None,
        )
        result = SearchResult(query, mode)
        depth = max(k, CANDIDATES) if (mode == "hybrid" or mmr is not None) else k
        rankings: dict[str, list[tuple[str, float]]] = {}
        vector = None
        if mode in ("hybrid", "vector") or mmr is not None:
            vector = self._embed_query(query, result.warnings)
        if mode in ("hybrid", "vector"):
            rankings["vector"] = self.index.vector_search(vector, depth, filters)
        if mode in ("hybrid", "bm25"):
            rankings["bm25"] = self.index.keyword_search(query, depth, filters)
        if mode == "hybrid":
            ranked = reciprocal_rank_fusion(
                {name: [cid for cid, _ in hits] for name, hits in rankings.items()}
            )
        else:
            ranked = [(cid, score, {mode: i}) for i, (cid, score) in enumerate(rankings[mode], start=1)]
        if mmr is not None and len(ranked) > 1:
            vectors = self.index.vectors([cid for cid, _, _ in ranked])
            picked = maximal_marginal_relevance(vectors @ vector, vectors, k, mmr)
            ranked = [ranked[i] for i in picked]
        ranked = ranked[:k]
        found = self.index.passages([cid for cid, _, _ in ranked])
        result.passages = [
            dataclasses.replace(found[cid], score=float(score), ranks=ranks)
            for cid, score, ranks in ranked
            if cid in found
        ]
        return result

    def _embed_query(self, query: str, warnings: list[str]) -> np.ndarray:
        """The query's embedding, cut to what the model reads (its maximum less [CLS] and [SEP])."""
        limit = self.embedder.max_tokens - 2
        offsets = self._offsets(query)
        if len(offsets) > limit:
            cut = offsets[limit - 1][1]
            warnings.append(
                f"the query is {len(offsets)} tokens but the embedding model reads {limit}: the vector "
                f"search used its first {cut} characters (BM25 used all of it)"
            )
            query = query[:cut]
        return self.embedder.encode([query])[0]


def _embedding_text(doc: Document, chunk: Chunk) -> str:
    """What is embedded for a chunk: the title and heading path as context, then the chunk's text."""
    context = " > ".join(dict.fromkeys(h for h in (doc.title, *chunk.heading_path) if h))
    return f"{context}\n\n{chunk.text}" if context else chunk.text


__all__ = [
    "AddReport",
    "KnowledgeBase",
    "KnowledgeBaseInfo",
    "Passage",
    "SkippedFile",
    "list_knowledge_bases",
]
