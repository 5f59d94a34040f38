"""Knowledge bases end to end with the real all-MiniLM-L6-v2: the same behaviour from the embedded index
(SQLite FTS5 + usearch) and from a real PostgreSQL with pgvector."""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pytest
from kb_files import PDF_PAGES, make_pdf, write_corpus

from clearlm.errors import InvalidInputError
from clearlm.knowledge import (
    KnowledgeBase,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    SourceNotFoundError,
    list_knowledge_bases,
)
from clearlm.knowledge.retrieval import RRF_K, maximal_marginal_relevance, reciprocal_rank_fusion

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder():
    from clearlm.knowledge.base import default_embedder

    return default_embedder()


@pytest.fixture(params=["embedded", "postgres"])
def where(request, tmp_path):
    """Where knowledge bases live: a folder for the embedded index, or the session's PostgreSQL."""
    if request.param == "embedded":
        return {"root": tmp_path / "knowledge"}
    return {"url": request.getfixturevalue("postgres_url")}


@pytest.fixture
def make_kb(where, embedder):
    made = []

    def make(**settings) -> KnowledgeBase:
        kb = KnowledgeBase.create("t-" + uuid.uuid4().hex[:10], embedder=embedder, **where, **settings)
        made.append(kb)
        return kb

    yield make
    for kb in made:
        kb.close()


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "docs")


def names(result) -> list[str]:
    return [p.path.rsplit("/", 1)[-1] for p in result.passages]


def test_create_open_list_and_their_errors(where, make_kb, embedder):
    kb = make_kb(chunk_tokens=120, overlap=20)
    with pytest.raises(KnowledgeBaseExistsError, match="already exists"):
        KnowledgeBase.create(kb.name, **where)
    again = KnowledgeBase.open(kb.name, embedder=embedder, **where)
    assert (again.settings.chunk_tokens, again.settings.overlap) == (120, 20)
    assert again.settings.embedding_model == "all-minilm-l6-v2" and again.settings.dimensions == 384
    listed = {b.name: b for b in list_knowledge_bases(**where)}
    assert (listed[kb.name].sources, listed[kb.name].chunks, listed[kb.name].chunk_tokens) == (0, 0, 120)
    with pytest.raises(KnowledgeBaseNotFoundError) as info:
        KnowledgeBase.open("no-such-base", **where)
    assert info.value.status_code == 404 and "clearlm kb create no-such-base" in str(info.value)
    with pytest.raises(InvalidInputError, match="name is 1-64 letters"):
        KnowledgeBase.create("../escape", **where)
    with pytest.raises(InvalidInputError, match="at most 254 tokens"):
        KnowledgeBase.create("too-big", chunk_tokens=512, **where)


def test_add_ingests_every_kind_and_skips_bad_files_naming_them(make_kb, corpus, tmp_path, caplog):
    kb = make_kb()
    bad = tmp_path / "docs" / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (bad / "locked.pdf").write_bytes(make_pdf(PDF_PAGES, password="pw"))
    (bad / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    (bad / "ignored.docx").write_bytes(b"PK")  # in a folder: not a kind we read, so not even tried
    seen = []
    with caplog.at_level(logging.WARNING, logger="clearlm.knowledge"):
        report = kb.add([tmp_path / "docs", tmp_path / "missing.md"], progress=lambda *a: seen.append(a))
    assert sorted(p.rsplit("/", 1)[-1] for p in report.added) == sorted(p.name for p in corpus.values())
    skipped = {s.path.rsplit("/", 1)[-1]: s.reason for s in report.skipped}
    assert set(skipped) == {"empty.txt", "photo.txt", "locked.pdf", "broken.pdf", "missing.md"}
    assert "password-protected" in skipped["locked.pdf"] and "binary" in skipped["photo.txt"]
    for s in report.skipped:
        assert any(s.path in r.getMessage() for r in caplog.records)
    assert [a[:2] for a in seen] == [(i, 8) for i in range(1, 9)]
    assert {s.kind for s in kb.sources()} == {"md", "html", "txt", "pdf"}
    assert report.chunks == sum(s.chunks for s in kb.sources()) > 4


def test_each_mode_finds_the_passage_that_answers(make_kb, corpus):
    kb = make_kb()
    kb.add(list(corpus.values()))
    question = "how do I mend a punctured inner tube on my bike"
    for mode in ("hybrid", "vector", "bm25"):
        top = kb.search(question, k=3, mode=mode).passages[0]
        assert (top.path, top.heading_path) == (
            str(corpus["html"]),
            ("Bicycle Repair Guide", "Fixing a flat tyre"),
        ), mode
        assert kb.source_text(top.path)[top.start : top.end] == top.text
    top = kb.search("Fresnel lens beam", k=1, mode="bm25").passages[0]
    assert top.heading_path == ("Lamps and Lenses",) and top.title == "Lighthouse Manual"
    assert top.text == "A Fresnel lens focuses the lamp into a beam seen for miles."


def test_scores_and_ranks_follow_each_mode(make_kb, corpus):
    kb = make_kb()
    kb.add(list(corpus.values()))
    query = "watering tomatoes in the morning"
    vector = kb.search(query, k=5, mode="vector").passages
    bm25 = kb.search(query, k=5, mode="bm25").passages
    hybrid = kb.search(query, k=5).passages
    assert [p.ranks for p in vector] == [{"vector": i} for i in range(1, len(vector) + 1)]
    assert all(-1 <= p.score <= 1 for p in vector) and [p.score for p in vector] == sorted(
        (p.score for p in vector), reverse=True
    )
    assert all(p.score > 0 for p in bm25) and [p.score for p in bm25] == sorted(
        (p.score for p in bm25), reverse=True
    )
    vec_rank = {p.chunk_id: i for i, p in enumerate(vector, 1)}
    kw_rank = {p.chunk_id: i for i, p in enumerate(bm25, 1)}
    for p in hybrid:  # reciprocal rank fusion of the two rankings (k=60)
        assert p.score == pytest.approx(sum(1 / (RRF_K + r) for r in p.ranks.values()))
        if p.chunk_id in vec_rank:
            assert p.ranks["vector"] == vec_rank[p.chunk_id]
        if p.chunk_id in kw_rank:
            assert p.ranks["bm25"] == kw_rank[p.chunk_id]
    assert hybrid[0].heading_path[-1] == "Watering" and set(hybrid[0].ranks) == {"vector", "bm25"}


def test_filters_by_source_and_path_prefix(make_kb, corpus, tmp_path):
    kb = make_kb()
    other = tmp_path / "docs2"
    other.mkdir()
    (other / "tyres.md").write_text("# Tyres\n\nA flat tyre needs a patch on the inner tube.\n")
    kb.add([tmp_path / "docs", other])
    query = "flat tyre inner tube"
    for mode in ("hybrid", "vector", "bm25"):
        assert set(names(kb.search(query, k=10, mode=mode, path_prefix=other))) == {"tyres.md"}
        assert set(names(kb.search(query, k=10, mode=mode, path_prefix=tmp_path / "docs"))) <= {
            p.name for p in corpus.values()
        }  # "docs" does not match "docs2"
        # BM25 finds none of the query's words in the PDF; vectors always return its nearest chunks
        expected = set() if mode == "bm25" else {"lighthouse.pdf"}
        assert set(names(kb.search(query, k=10, mode=mode, source=corpus["pdf"]))) == expected


def test_mmr_trades_relevance_for_diversity(make_kb, tmp_path):
    kb = make_kb()
    folder = tmp_path / "tea"
    folder.mkdir()
    same = "Green tea is brewed with water at about eighty degrees for two minutes."
    (folder / "a.txt").write_text(same)
    (folder / "b.txt").write_text(same.replace("two minutes", "two or three minutes"))
    (folder / "c.txt").write_text("Black tea wants boiling water and four minutes of brewing.")
    (folder / "d.txt").write_text("The harbour freezes over in the coldest winters.")
    kb.add(folder)
    query = "how long to brew green tea"
    plain = names(kb.search(query, k=2, mode="vector"))
    assert sorted(plain) == ["a.txt", "b.txt"]  # the near-duplicates are the two most similar
    diverse = names(kb.search(query, k=2, mode="vector", mmr=0.5))
    assert diverse[0] in ("a.txt", "b.txt") and diverse[1] == "c.txt"
    assert names(kb.search(query, k=3, mode="vector", mmr=1.0)) == names(kb.search(query, k=3, mode="vector"))
    assert names(kb.search(query, k=2, mode="bm25", mmr=0.5))[1] != "b.txt"  # any mode's candidates


def test_unchanged_files_are_skipped_and_changed_ones_replaced(make_kb, corpus):
    kb = make_kb()
    first = kb.add(list(corpus.values()))
    again = kb.add(list(corpus.values()))
    assert (again.added, again.replaced, again.chunks) == ([], [], 0)
    assert sorted(again.unchanged) == sorted(first.added)
    md = corpus["md"]
    md.write_text(
        md.read_text().replace("## Compost", "## Mulching").replace("Compost turns", "Straw mulch keeps")
    )
    changed = kb.add(md)
    assert changed.replaced == [str(md)] and changed.added == [] and changed.chunks > 0
    hits = kb.search("mulching", k=5, mode="bm25", source=md).passages
    assert hits and hits[0].heading_path[-1] == "Mulching"
    assert not kb.search("compost", k=5, mode="bm25", source=md).passages
    assert kb.source_text(md) == md.read_text()
    n_chunks = {b.name: b.chunks for b in list_knowledge_bases(**_where(kb))}[kb.name]
    assert n_chunks == sum(s.chunks for s in kb.sources())


def _where(kb):
    return {"url": kb.location} if kb.location.startswith("postgresql") else {"root": kb.index.folder.parent}


def test_remove_a_file_a_folder_and_a_missing_path(make_kb, corpus, tmp_path):
    kb = make_kb()
    kb.add(list(corpus.values()))
    assert kb.remove(corpus["html"]) == [str(corpus["html"])]
    assert "bikes.html" not in names(kb.search("flat tyre puncture", k=10))
    with pytest.raises(SourceNotFoundError) as info:
        kb.remove(corpus["html"])
    assert info.value.status_code == 404
    assert sorted(kb.remove(tmp_path / "docs")) == sorted(str(corpus[k]) for k in ("md", "txt", "pdf"))
    assert kb.sources() == [] and kb.search("lighthouse", k=5).passages == []
    with pytest.raises(SourceNotFoundError):
        kb.source_text(corpus["md"])


def test_a_query_longer_than_the_model_reads_is_cut_with_a_warning(make_kb, corpus):
    kb = make_kb()
    kb.add(corpus["pdf"])
    long = "Fresnel lens " + "lighthouse lamp " * 300
    result = kb.search(long, k=1)
    assert len(result.warnings) == 1 and "reads 254" in result.warnings[0]
    assert result.passages and kb.search("Fresnel lens", k=1).warnings == []
    assert kb.search(long, k=1, mode="bm25").warnings == []  # BM25 reads the whole query


def test_stop_words_alone_match_nothing_by_bm25(make_kb, corpus):
    kb = make_kb()
    kb.add(corpus["txt"])
    assert kb.search("the and of it", k=3, mode="bm25").passages == []
    assert names(kb.search("the and of it", k=3)) == ["volcanoes.txt"]  # the vector half still answers
    assert names(kb.search("the basalt", k=3, mode="bm25")) == ["volcanoes.txt"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "the query is empty"),
        ({"query": "x", "k": 0}, "k must be between 1 and 100"),
        ({"query": "x", "mode": "fuzzy"}, "mode must be one of"),
        ({"query": "x", "mmr": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_search_arguments(make_kb, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        make_kb().search(**kwargs)


def test_the_embedded_index_answers_while_its_graph_lags(tmp_path, embedder, corpus):
    """Rows written after the HNSW file was saved are found by the exact scan above it; rows deleted
    since are dropped; flush catches the graph up."""
    import json

    kb = KnowledgeBase.create("lag", root=tmp_path / "kb", embedder=embedder)
    kb.add([corpus["md"], corpus["txt"]])
    meta = kb.index.folder / "vectors.json"
    covered = json.loads(meta.read_text())["max_id"]
    # write a source without flushing: the graph does not hold it
    extra = tmp_path / "docs" / "late.md"
    extra.write_text("# Late\n\nThe ferry to the island leaves at dawn.\n")
    from clearlm.knowledge.chunking import chunk_document
    from clearlm.knowledge.documents import read_document
    from clearlm.knowledge.index.protocol import SourceRecord

    doc = read_document(extra)
    chunks = chunk_document(doc, kb._offsets, 200, 40)
    vecs = embedder.encode([c.text for c in chunks])
    with kb.index.write_lock():
        kb.index.replace_source(
            SourceRecord(str(extra), "md", "Late", doc.sha256, len(doc.text), len(chunks), "now"),
            doc.text,
            chunks,
            vecs,
        )
        kb.index.remove_sources([str(corpus["txt"])])
    assert json.loads(meta.read_text())["max_id"] == covered
    assert names(kb.search("when does the ferry leave", k=1, mode="vector")) == ["late.md"]
    assert "volcanoes.txt" not in names(kb.search("basalt lava", k=10, mode="vector"))
    with kb.index.write_lock():
        kb.index.flush()
    from usearch.index import Index

    graph = Index.restore(str(kb.index.folder / "vectors.usearch"))
    assert len(graph) == kb.index.counts()[1] and json.loads(meta.read_text())["max_id"] > covered
    kb.close()


def test_reciprocal_rank_fusion_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion({"vector": ["a", "b", "c"], "bm25": ["c", "a", "d"]})
    scores = {d: s for d, s, _ in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62) and scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [d for d, _, _ in fused] == ["a", "c", "b", "d"]
    assert dict((d, r) for d, _, r in fused)["d"] == {"bm25": 3}


def test_maximal_marginal_relevance_skips_near_duplicates():
    v = np.array([[1, 0, 0], [0.99, 0.141, 0], [0.6, 0, 0.8]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.95, 0.7])
    assert maximal_marginal_relevance(relevance, v, 2, lambda_=1.0) == [0, 1]
    assert maximal_marginal_relevance(relevance, v, 2, lambda_=0.5) == [0, 2]
    assert maximal_marginal_relevance(relevance, v, 5, lambda_=0.5) == [0, 2, 1]
