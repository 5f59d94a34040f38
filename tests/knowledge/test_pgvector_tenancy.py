"""Knowledge bases in PostgreSQL (pgvector), on a real server: chunk ids unique per knowledge base (the same
file in two bases), tenants apart, and tables made by the earlier layout migrated in place."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from clearlm.knowledge import KnowledgeBase, list_knowledge_bases
from clearlm.knowledge.index.pgvector import PgvectorStore

GUIDE = "# Clinic\n\n## Hours\n\nThe clinic opens at 8 am and closes at 6 pm on weekdays.\n"


@pytest.fixture(scope="module")
def embedder():
    from clearlm.models.embeddings import load_embedder

    return load_embedder()


@pytest.fixture
def pg(postgres_url):
    """A new, empty database on the session's PostgreSQL."""
    name = "kb_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_url.replace("/postgres?", f"/{name}?", 1)


def _constraints(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid IN ('kb_bases'::regclass, 'kb_chunks'::regclass) "
            "UNION SELECT indexname FROM pg_indexes WHERE tablename IN ('kb_bases', 'kb_chunks')"
        ).fetchall()
    return {r[0] for r in rows}


def test_the_same_file_in_two_knowledge_bases(pg, embedder, tmp_path):
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE)
    with KnowledgeBase.create("first", url=pg, embedder=embedder, chunk_tokens=32, overlap=4) as first:
        assert first.add([guide]).chunks >= 1
    with KnowledgeBase.create("second", url=pg, embedder=embedder, chunk_tokens=32, overlap=4) as second:
        report = second.add([guide])  # an IntegrityError before: chunk ids were unique in the whole database
        assert report.added == [str(guide)] and report.chunks >= 1
        hit = second.search("when does the clinic open", k=1).passages[0]
    with KnowledgeBase.open("first", url=pg, embedder=embedder) as first:
        same = first.search("when does the clinic open", k=1).passages[0]
        assert same.chunk_id == hit.chunk_id and same.text == hit.text
        first.remove(guide)  # removing it from one base leaves the other's chunks
        assert first.index.counts() == (0, 0)
    with KnowledgeBase.open("second", url=pg, embedder=embedder) as second:
        assert second.index.counts()[1] == report.chunks


def test_tenants_see_only_their_knowledge_bases(pg, embedder):
    store = PgvectorStore(pg)
    try:
        KnowledgeBase.create("handbook", store=store, embedder=embedder).close()
        clinic = store.for_tenant("clinic")
        assert clinic.names() == [] and clinic.open("handbook") is None
        KnowledgeBase.create("handbook", store=clinic, embedder=embedder).close()  # the same name: its own
        assert store.names() == ["handbook"] and clinic.names() == ["handbook"]
        assert store.open("handbook").kb_id != clinic.open("handbook").kb_id
        assert clinic.engine is store.engine  # a view shares the pool
        with pytest.raises(Exception, match="tenant"):
            store.for_tenant("../x")
    finally:
        store.close()


OLD_LAYOUT = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE kb_bases (
    id SERIAL PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, settings JSON NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE TABLE kb_sources (
    kb_id INTEGER REFERENCES kb_bases (id) ON DELETE CASCADE, path TEXT, kind VARCHAR(8) NOT NULL,
    title TEXT NOT NULL, sha256 VARCHAR(64) NOT NULL, chars INTEGER NOT NULL, chunks INTEGER NOT NULL,
    added_at VARCHAR(40) NOT NULL, text TEXT NOT NULL, PRIMARY KEY (kb_id, path)
);
CREATE TABLE kb_chunks (
    id BIGSERIAL PRIMARY KEY, kb_id INTEGER NOT NULL REFERENCES kb_bases (id) ON DELETE CASCADE,
    chunk_id VARCHAR(40) NOT NULL UNIQUE, path TEXT NOT NULL, ordinal INTEGER NOT NULL,
    start_char INTEGER NOT NULL, end_char INTEGER NOT NULL, heading JSON NOT NULL, text TEXT NOT NULL,
    embedding VECTOR(384) NOT NULL, tsv TSVECTOR NOT NULL, dl INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX kb_chunks_kb_path ON kb_chunks (kb_id, path);
CREATE INDEX kb_chunks_embedding_hnsw ON kb_chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX kb_chunks_tsv ON kb_chunks USING gin (tsv);
"""


LEGACY_ROWS = """
INSERT INTO kb_bases (name, settings, created_at) VALUES ('legacy',
  '{"chunk_tokens": 200, "overlap": 40, "embedding_model": "all-minilm-l6-v2", "dimensions": 384}', now());
INSERT INTO kb_sources VALUES (1, %(path)s, 'md', 'Clinic', 'abc', 60, 1, '2026-01-01T00:00:00+00:00', %(text)s);
INSERT INTO kb_chunks (kb_id, chunk_id, path, ordinal, start_char, end_char, heading, text, embedding, tsv, dl)
VALUES (1, 'c0ffee', %(path)s, 0, 0, 60, '["Clinic"]', %(text)s, array_fill(0.05, ARRAY[384])::vector,
        to_tsvector('english', %(text)s), 12);
"""


def test_tables_of_the_earlier_layout_are_migrated_in_place(pg, embedder, tmp_path):
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE)
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(OLD_LAYOUT)
        for statement in filter(str.strip, LEGACY_ROWS.split(";\n")):  # as the earlier release wrote them
            conn.execute(statement, {"path": str(guide), "text": GUIDE})
    assert {"kb_bases_name_key", "kb_chunks_chunk_id_key"} <= _constraints(pg)

    store = PgvectorStore(pg)  # migrates
    try:
        after = _constraints(pg)
        assert "kb_bases_name_key" not in after and "kb_chunks_chunk_id_key" not in after
        assert {"kb_bases_tenant_name", "kb_chunks_kb_chunk"} <= after
        # the earlier base is the default tenant's, whole
        assert [b.name for b in list_knowledge_bases(store=store)] == ["legacy"]
        assert store.for_tenant("clinic").names() == []
        with KnowledgeBase.open("legacy", store=store, embedder=embedder) as kb:
            [hit] = kb.search("clinic weekdays", k=1, mode="bm25").passages
            assert hit.chunk_id == "c0ffee" and hit.path == str(guide)
        # the same file (same path, same content) now goes into another base as well
        with KnowledgeBase.create("copy", store=store, embedder=embedder, chunk_tokens=32, overlap=4) as kb:
            assert kb.add([guide]).added == [str(guide)]
        with KnowledgeBase.create("legacy", store=store.for_tenant("clinic"), embedder=embedder) as kb:
            assert kb.name == "legacy"  # names are per tenant now
    finally:
        store.close()
    with psycopg.connect(pg) as conn:
        tenants = conn.execute("SELECT tenant, name FROM kb_bases ORDER BY id").fetchall()
    assert tenants == [("default", "legacy"), ("default", "copy"), ("clinic", "legacy")]
    PgvectorStore(pg).close()  # opening again changes nothing
    assert _constraints(pg) == after
