"""Index backends behind one protocol: the embedded default (SQLite FTS5 + usearch HNSW, one folder per
knowledge base) and PostgreSQL + pgvector, chosen by a URL."""

from __future__ import annotations

from pathlib import Path

from clearlm.knowledge.index.protocol import Filters, Index, IndexStore, Settings, SourceRecord


def open_store(url: str | None = None, root: str | Path | None = None, tenant: str = "default") -> IndexStore:
    """The embedded store (``url`` None: folders under ``root``, default ``$CLEARLM_HOME/knowledge``) or
    PostgreSQL (``postgresql://...``), as ``tenant`` sees it (see :mod:`clearlm.knowledge.tenants`). A
    PostgreSQL store holds a connection pool: ``close()`` it, or keep one per URL.

    Raises:
        InvalidInputError: a URL that is not PostgreSQL, a server that cannot be reached, a bad tenant name.
    """
    if url is None:
        from clearlm.knowledge.index.embedded import EmbeddedStore

        return EmbeddedStore(root, tenant)
    from clearlm.knowledge.index.pgvector import PgvectorStore

    return PgvectorStore(url, tenant)


__all__ = ["Filters", "Index", "IndexStore", "Settings", "SourceRecord", "open_store"]
