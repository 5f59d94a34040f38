"""The scale-out index: PostgreSQL with the pgvector extension, through SQLAlchemy.

Three tables shared by every knowledge base in the database (``kb_bases``, ``kb_sources``, ``kb_chunks``).
Vectors: pgvector's HNSW index with cosine distance, searched with iterative scans so that metadata filters
still return ``k`` rows (pgvector >= 0.8). Keywords: a ``tsvector`` per chunk (PostgreSQL's English
configuration: stemming and stop words) under a GIN index, ranked by BM25 (k1=1.2, b=0.75, the same idf as
SQLite FTS5) computed in SQL from the lexemes' positions, since PostgreSQL's own ``ts_rank`` is not BM25.
Writers hold a PostgreSQL advisory lock per knowledge base, so writes from any number of machines queue.

Each knowledge base belongs to a tenant (``kb_bases.tenant``; names are unique per tenant), and a chunk id is
unique within its knowledge base (the same file may be in several). Tables made by earlier releases (a
global unique name, a global unique chunk id, no tenant column) are brought up to this layout in place when a
store opens them, under the schema lock; their knowledge bases become the ``default`` tenant's.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy import (
    Index as SqlIndex,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from clearlm.errors import InvalidInputError
from clearlm.knowledge.chunking import Chunk
from clearlm.knowledge.errors import KnowledgeBaseExistsError
from clearlm.knowledge.index.protocol import (
    BM25_B,
    BM25_K1,
    Filters,
    Settings,
    SourceRecord,
    body_for_keywords,
    chunk_id,
)
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.tenants import DEFAULT_TENANT, check_tenant

DIMENSIONS = 384  # the packaged all-MiniLM-L6-v2; the column's type fixes it for every base in the database
EF_SEARCH = 100  # HNSW candidates per search (pgvector's default is 40)


def _tables(metadata: MetaData, dims: int):
    from pgvector.sqlalchemy import Vector

    bases = Table(
        "kb_bases",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("tenant", String(64), nullable=False, server_default=DEFAULT_TENANT),
        Column("name", String(64), nullable=False),
        Column("settings", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        SqlIndex("kb_bases_tenant_name", "tenant", "name", unique=True),
    )
    sources = Table(
        "kb_sources",
        metadata,
        Column("kb_id", Integer, ForeignKey("kb_bases.id", ondelete="CASCADE"), primary_key=True),
        Column("path", Text, primary_key=True),
        Column("kind", String(8), nullable=False),
        Column("title", Text, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("chars", Integer, nullable=False),
        Column("chunks", Integer, nullable=False),
        Column("added_at", String(40), nullable=False),
        Column("text", Text, nullable=False),
    )
    chunks = Table(
        "kb_chunks",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("kb_id", Integer, ForeignKey("kb_bases.id", ondelete="CASCADE"), nullable=False),
        Column("chunk_id", String(40), nullable=False),
        Column("path", Text, nullable=False),
        Column("ordinal", Integer, nullable=False),
        Column("start_char", Integer, nullable=False),
        Column("end_char", Integer, nullable=False),
        Column("heading", JSON, nullable=False),
        Column("text", Text, nullable=False),
        Column("embedding", Vector(dims), nullable=False),
        Column("tsv", TSVECTOR, nullable=False),
        Column("dl", Integer, nullable=False, server_default="0"),  # BM25's document length (tokens)
        SqlIndex("kb_chunks_kb_path", "kb_id", "path"),
        SqlIndex("kb_chunks_kb_chunk", "kb_id", "chunk_id", unique=True),
        SqlIndex(
            "kb_chunks_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        SqlIndex("kb_chunks_tsv", "tsv", postgresql_using="gin"),
    )
    return bases, sources, chunks


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a knowledge base name."""
    return int.from_bytes(hashlib.sha256(f"clearlm-kb:{name}".encode()).digest()[:8], "big", signed=True)


# Earlier releases' layout, and the statements that bring it to this one (run only where it is found).
_OLD_LAYOUT = """
SELECT
  NOT EXISTS (SELECT 1 FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = 'kb_bases' AND column_name = 'tenant')
  OR EXISTS (SELECT 1 FROM pg_constraint WHERE conname IN ('kb_bases_name_key', 'kb_chunks_chunk_id_key')
             AND connamespace = current_schema()::regnamespace)
"""
_MIGRATE = (
    f"ALTER TABLE kb_bases ADD COLUMN IF NOT EXISTS tenant VARCHAR(64) NOT NULL DEFAULT '{DEFAULT_TENANT}'",
    "ALTER TABLE kb_bases DROP CONSTRAINT IF EXISTS kb_bases_name_key",
    "CREATE UNIQUE INDEX IF NOT EXISTS kb_bases_tenant_name ON kb_bases (tenant, name)",
    "ALTER TABLE kb_chunks DROP CONSTRAINT IF EXISTS kb_chunks_chunk_id_key",
    "CREATE UNIQUE INDEX IF NOT EXISTS kb_chunks_kb_chunk ON kb_chunks (kb_id, chunk_id)",
)


def normalise_url(url: str) -> URL:
    """``postgresql://`` and ``postgres://`` mean the psycopg 3 driver.

    Raises:
        InvalidInputError: not a PostgreSQL URL.
    """
    try:
        parsed = make_url(
            url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url
        )
    except Exception:
        parsed = None
    if parsed is None or parsed.get_backend_name() != "postgresql":
        raise InvalidInputError(
            f"knowledge bases live in the embedded index (no URL) or in PostgreSQL with pgvector: "
            f"use postgresql://USER@HOST/DB, got {url!r}"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class PgvectorStore:
    """Knowledge bases in one PostgreSQL database (the ``vector`` extension is created if missing), as
    ``tenant`` sees them. The store owns a connection pool (one engine): keep one store per URL, take
    ``for_tenant`` views of it, and ``close()`` it at the end.

    Raises:
        InvalidInputError: a URL that is not PostgreSQL, a server that cannot be reached, no pgvector, a bad
            tenant name.
    """

    def __init__(self, url: str, tenant: str = DEFAULT_TENANT) -> None:
        self.tenant = check_tenant(tenant)
        self.url = normalise_url(url)
        self.location = self.url.render_as_string(hide_password=True)
        self.engine = create_engine(self.url, pool_pre_ping=True)
        self.metadata = MetaData()
        self.bases, self.sources, self.chunks = _tables(self.metadata, DIMENSIONS)
        try:
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("schema")})
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                self.metadata.create_all(conn)
                if conn.execute(text(_OLD_LAYOUT)).scalar():
                    for statement in _MIGRATE:
                        conn.execute(text(statement))
        except OperationalError as exc:
            self.engine.dispose()
            raise InvalidInputError(
                f"cannot use PostgreSQL at {self.location}: {str(exc.orig).strip()} "
                "(is the server running, and is the pgvector extension installed?)"
            ) from None

    def for_tenant(self, tenant: str) -> PgvectorStore:
        """The same database as ``tenant`` sees it, sharing this store's connection pool.

        Raises:
            InvalidInputError: a bad tenant name.
        """
        view = copy.copy(self)
        view.tenant = check_tenant(tenant)
        return view

    def close(self) -> None:
        """Close the connection pool (every view of this store shares it)."""
        self.engine.dispose()

    def create(self, name: str, settings: Settings) -> PgvectorIndex:
        if settings.dimensions != DIMENSIONS:
            raise InvalidInputError(
                f"the PostgreSQL backend stores {DIMENSIONS}-dimensional embeddings, "
                f"not {settings.dimensions}"
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(self.bases).values(
                        tenant=self.tenant,
                        name=name,
                        settings=json.loads(settings.to_json()),
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise KnowledgeBaseExistsError(
                f"a knowledge base named {name!r} already exists in {self.location}: "
                "add files to it, or choose another name"
            ) from None
        return self.open(name)  # type: ignore[return-value]

    def open(self, name: str) -> PgvectorIndex | None:
        b = self.bases.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(b.id, b.settings).where(b.tenant == self.tenant, b.name == name)
            ).first()
        if row is None:
            return None
        return PgvectorIndex(self, name, row.id, Settings(**row.settings))

    def names(self) -> list[str]:
        b = self.bases.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(b.name).where(b.tenant == self.tenant).order_by(b.name)).scalars()
            )


class PgvectorIndex:
    """One knowledge base in PostgreSQL (see the module docstring)."""

    def __init__(self, store: PgvectorStore, name: str, kb_id: int, settings: Settings) -> None:
        self.store = store
        self.name = name
        self.kb_id = kb_id
        self.settings = settings
        self.location = store.location
        self._locked = 0
        # the default tenant's key is the one earlier releases took, so their writers and these queue together
        self._lock = _lock_key(name if store.tenant == DEFAULT_TENANT else f"{store.tenant}/{name}")

    @property
    def _engine(self):
        return self.store.engine

    def _where(self, filters: Filters):
        c = self.store.chunks.c
        conds = [c.kb_id == self.kb_id]
        if filters.source is not None:
            conds.append(c.path == filters.source)
        if filters.path_prefix is not None:
            conds.append(func.left(c.path, len(filters.path_prefix)) == filters.path_prefix)
        return conds

    # ---- reads

    def _source_rows(self, path: str | None = None):
        s = self.store.sources.c
        query = select(s.path, s.kind, s.title, s.sha256, s.chars, s.chunks, s.added_at).where(
            s.kb_id == self.kb_id
        )
        if path is not None:
            query = query.where(s.path == path)
        with self._engine.connect() as conn:
            return [SourceRecord(*r) for r in conn.execute(query.order_by(s.path))]

    def sources(self) -> list[SourceRecord]:
        return self._source_rows()

    def source(self, path: str) -> SourceRecord | None:
        rows = self._source_rows(path)
        return rows[0] if rows else None

    def source_text(self, path: str) -> str | None:
        s = self.store.sources.c
        with self._engine.connect() as conn:
            return conn.execute(select(s.text).where(s.kb_id == self.kb_id, s.path == path)).scalar()

    def counts(self) -> tuple[int, int]:
        s, c = self.store.sources.c, self.store.chunks.c
        with self._engine.connect() as conn:
            n_sources = conn.execute(select(func.count()).where(s.kb_id == self.kb_id)).scalar_one()
            n_chunks = conn.execute(select(func.count()).where(c.kb_id == self.kb_id)).scalar_one()
        return n_sources, n_chunks

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, Passage]:
        c, s = self.store.chunks.c, self.store.sources.c
        query = (
            select(c.chunk_id, c.text, c.path, s.title, c.heading, c.start_char, c.end_char)
            .join(self.store.sources, (s.kb_id == c.kb_id) & (s.path == c.path))
            .where(c.kb_id == self.kb_id, c.chunk_id.in_(list(chunk_ids)))
        )
        with self._engine.connect() as conn:
            return {
                r.chunk_id: Passage(
                    r.chunk_id, r.text, r.path, r.title, tuple(r.heading), r.start_char, r.end_char
                )
                for r in conn.execute(query)
            }

    def vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        c = self.store.chunks.c
        with self._engine.connect() as conn:
            rows = dict(
                conn.execute(
                    select(c.chunk_id, c.embedding).where(
                        c.kb_id == self.kb_id, c.chunk_id.in_(list(chunk_ids))
                    )
                ).all()
            )
        if not chunk_ids:
            return np.zeros((0, self.settings.dimensions), dtype=np.float32)
        return np.stack([np.asarray(rows[cid], dtype=np.float32) for cid in chunk_ids])

    def vector_search(self, vector: np.ndarray, k: int, filters: Filters) -> list[tuple[str, float]]:
        c = self.store.chunks.c
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        distance = c.embedding.cosine_distance(q)
        query = (
            select(c.chunk_id, distance.label("d")).where(*self._where(filters)).order_by(distance).limit(k)
        )
        with self._engine.begin() as conn:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, min(k, 1000))}"))
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = conn.execute(query).all()
        # relaxed order: the index may hand rows back slightly out of order
        return sorted(((r.chunk_id, 1.0 - float(r.d)) for r in rows), key=lambda t: -t[1])

    def keyword_search(self, query: str, k: int, filters: Filters) -> list[tuple[str, float]]:
        conds, params = ["c.kb_id = :kb"], {"kb": self.kb_id, "q": query, "k": k, "k1": BM25_K1, "b": BM25_B}
        if filters.source is not None:
            conds.append("c.path = :source")
            params["source"] = filters.source
        if filters.path_prefix is not None:
            conds.append("left(c.path, :plen) = :prefix")
            params.update(plen=len(filters.path_prefix), prefix=filters.path_prefix)
        sql = text(f"""
            WITH terms AS (
                SELECT DISTINCT lexeme AS term FROM unnest(to_tsvector('english', :q))
            ), tsq AS (
                SELECT string_agg(quote_literal(term), ' | ')::tsquery AS q FROM terms
            ), corpus AS (
                SELECT count(*)::float8 AS n, coalesce(avg(dl), 0)::float8 AS avgdl
                FROM kb_chunks WHERE kb_id = :kb
            ), idf AS (
                SELECT t.term, greatest(ln((corpus.n - d.df + 0.5) / (d.df + 0.5)), 1e-6) AS idf
                FROM terms t CROSS JOIN corpus CROSS JOIN LATERAL (
                    SELECT count(*)::float8 AS df FROM kb_chunks x
                    WHERE x.kb_id = :kb AND x.tsv @@ quote_literal(t.term)::tsquery
                ) d
            ), hits AS (
                SELECT c.chunk_id, c.id, c.dl, u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
                FROM kb_chunks c CROSS JOIN tsq CROSS JOIN LATERAL unnest(c.tsv) u
                WHERE {" AND ".join(conds)} AND c.tsv @@ tsq.q
                  AND u.lexeme IN (SELECT term FROM terms)
            )
            SELECT hits.chunk_id,
                   sum(idf.idf * hits.tf * (:k1 + 1)
                       / (hits.tf + :k1 * (1 - :b + :b * hits.dl / greatest(corpus.avgdl, 1e-9)))) AS score
            FROM hits JOIN idf ON idf.term = hits.lexeme CROSS JOIN corpus
            GROUP BY hits.chunk_id, hits.id
            ORDER BY score DESC, hits.id
            LIMIT :k
        """)
        with self._engine.connect() as conn:
            if (
                conn.execute(text("SELECT numnode(plainto_tsquery('english', :q))"), {"q": query}).scalar()
                == 0
            ):
                return []  # only stop words: nothing to match
            return [(r.chunk_id, float(r.score)) for r in conn.execute(sql, params)]

    # ---- writes

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """A session-level advisory lock on its own connection, held while the writes run on others."""
        with self._engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self._lock})
            conn.commit()
            self._locked += 1
            try:
                yield
            finally:
                self._locked -= 1
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._lock})
                conn.commit()

    def _check_locked(self) -> None:
        if not self._locked:
            raise RuntimeError("writes to a knowledge base must run inside write_lock()")

    def replace_source(
        self, record: SourceRecord, text_: str, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        self._check_locked()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.settings.dimensions):
            raise ValueError(f"vectors {vectors.shape} for {len(chunks)} chunks")
        s, c = self.store.sources, self.store.chunks
        rows = [
            {
                "kb_id": self.kb_id,
                "chunk_id": chunk_id(record.path, record.sha256, ch.ordinal),
                "path": record.path,
                "ordinal": ch.ordinal,
                "start_char": ch.start,
                "end_char": ch.end,
                "heading": list(ch.heading_path),
                "text": ch.text,
                "embedding": vec,
                "body": body_for_keywords(ch),
            }
            for ch, vec in zip(chunks, vectors, strict=True)
        ]
        with self._engine.begin() as conn:
            self._delete(conn, [record.path])
            conn.execute(insert(s).values(kb_id=self.kb_id, text=text_, **_record_values(record)))
            if rows:
                # the other columns come from the rows' keys; ``body`` only feeds the tsvector
                conn.execute(insert(c).values(tsv=func.to_tsvector("english", bindparam("body"))), rows)
                conn.execute(
                    text(
                        "UPDATE kb_chunks SET dl = (SELECT coalesce(sum(array_length(positions, 1)), 0) "
                        "FROM unnest(tsv)) WHERE kb_id = :kb AND path = :path"
                    ),
                    {"kb": self.kb_id, "path": record.path},
                )

    def _delete(self, conn, paths: Sequence[str]) -> int:
        s, c = self.store.sources, self.store.chunks
        conn.execute(delete(c).where(c.c.kb_id == self.kb_id, c.c.path.in_(list(paths))))
        return conn.execute(delete(s).where(s.c.kb_id == self.kb_id, s.c.path.in_(list(paths)))).rowcount

    def remove_sources(self, paths: Sequence[str]) -> int:
        self._check_locked()
        with self._engine.begin() as conn:
            return self._delete(conn, paths)

    def flush(self) -> None:
        """Nothing to do: PostgreSQL keeps its indexes current inside each transaction."""

    def close(self) -> None:
        """Nothing to do: the store owns the connection pool."""


def _record_values(record: SourceRecord) -> dict:
    return {
        "path": record.path,
        "kind": record.kind,
        "title": record.title,
        "sha256": record.sha256,
        "chars": record.chars,
        "chunks": record.chunks,
        "added_at": record.added_at,
    }
