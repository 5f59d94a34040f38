"""The one small protocol both index backends implement (embedded SQLite + usearch; PostgreSQL + pgvector).

A backend stores sources (a file's extracted text and hash) and their chunks (text, offsets, heading path,
embedding), and answers two kinds of query: nearest neighbours of a vector and BM25 over the chunks' words.
Fusion, MMR and embedding happen above it, in :mod:`clearlm.knowledge.retrieval` and
:mod:`clearlm.knowledge.base`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from clearlm.knowledge.chunking import Chunk
from clearlm.knowledge.passage import Passage

# BM25's free parameters: SQLite FTS5's defaults (Robertson & Zaragoza 2009), used by both backends.
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True, slots=True)
class Settings:
    """Fixed when a knowledge base is created: chunk size and overlap (tokens of the embedding model) and
    the embedding model (name and dimensions)."""

    chunk_tokens: int
    overlap: int
    embedding_model: str
    dimensions: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """An ingested file: its absolute path, kind (txt, md, html, pdf), title, SHA-256 of its bytes, length of
    its extracted text (characters), number of chunks, and when it was added (ISO 8601, UTC)."""

    path: str
    kind: str
    title: str
    sha256: str
    chars: int
    chunks: int
    added_at: str


@dataclass(frozen=True, slots=True)
class Filters:
    """Metadata filters: ``source`` keeps one file's chunks (an exact path), ``path_prefix`` those whose
    path starts with it. None = no filter."""

    source: str | None = None
    path_prefix: str | None = None

    @property
    def active(self) -> bool:
        return self.source is not None or self.path_prefix is not None


def chunk_id(path: str, sha256: str, ordinal: int) -> str:
    """A chunk's id: stable for the same file content, path and place (20 hex digits of a SHA-256)."""
    return hashlib.sha256(f"{path}\0{sha256}\0{ordinal}".encode()).hexdigest()[:20]


def body_for_keywords(chunk: Chunk) -> str:
    """What BM25 indexes for a chunk: its heading path, then its text."""
    return " > ".join(chunk.heading_path) + "\n" + chunk.text


class Index(Protocol):
    """One knowledge base's storage. Writes (``replace_source``, ``remove_sources``, ``flush``) must run
    inside ``write_lock()``, which serialises writers across processes; reads need no lock."""

    name: str
    settings: Settings
    location: str  # where it lives, for messages (a folder, or a database URL without its password)

    def sources(self) -> list[SourceRecord]: ...

    def source(self, path: str) -> SourceRecord | None: ...

    def source_text(self, path: str) -> str | None: ...

    def counts(self) -> tuple[int, int]:
        """(sources, chunks)."""
        ...

    def write_lock(self) -> AbstractContextManager[None]: ...

    def replace_source(
        self, record: SourceRecord, text: str, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        """Atomically drop ``record.path``'s chunks (if any) and store these; ``vectors``: float32[n, d],
        L2-normalised, one row per chunk."""
        ...

    def remove_sources(self, paths: Sequence[str]) -> int:
        """Drop these sources and their chunks; returns how many sources were dropped."""
        ...

    def flush(self) -> None:
        """Bring derived structures (an approximate index file) up to date with the stored chunks."""
        ...

    def vector_search(self, vector: np.ndarray, k: int, filters: Filters) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) of up to ``k`` nearest chunks to ``vector`` (float32[d]), best first."""
        ...

    def keyword_search(self, query: str, k: int, filters: Filters) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of up to ``k`` chunks, best first; higher is better."""
        ...

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, Passage]:
        """The chunks with these ids (missing ones left out), score 0 and no ranks."""
        ...

    def vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """float32[len(chunk_ids), d]: the stored embeddings, in the given order (every id must exist)."""
        ...

    def close(self) -> None: ...


class IndexStore(Protocol):
    """Where knowledge bases live: a folder of embedded ones, or a PostgreSQL database; as one tenant sees
    it (``create``, ``open`` and ``names`` reach only that tenant's knowledge bases)."""

    location: str
    tenant: str

    def for_tenant(self, tenant: str) -> IndexStore:
        """The same place as ``tenant`` sees it (sharing this store's connections)."""
        ...

    def close(self) -> None:
        """Give back what the store holds (a connection pool)."""
        ...

    def create(self, name: str, settings: Settings) -> Index:
        """Raises KnowledgeBaseExistsError if ``name`` is taken."""
        ...

    def open(self, name: str) -> Index | None: ...

    def names(self) -> list[str]: ...
