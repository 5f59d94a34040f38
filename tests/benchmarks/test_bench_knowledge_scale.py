"""benchmarks/bench_knowledge_scale.py --small: it runs, and its figures are sane (not a speed test)."""

from __future__ import annotations

import json

import pytest

from conftest import load_benchmark

pytestmark = pytest.mark.integration


def test_the_small_run_reports_every_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))  # the embeddings' cache
    bench = load_benchmark("bench_knowledge_scale")

    (result,) = bench.main(["--small", "--json", str(tmp_path / "scale.json")])
    assert result == json.loads((tmp_path / "scale.json").read_text())[0]
    assert result["chunks"] == 200 and result["queries"] == 20
    assert result["recall_at_10"] >= 0.9  # HNSW on 200 vectors is all but exact
    assert 0 < result["ingest_chunks_per_s"] <= result["embed_chunks_per_s"]
    for mode in ("hybrid", "vector", "bm25"):
        assert 0 < result["latency_ms"][mode]["p50"] <= result["latency_ms"][mode]["p95"]
    assert "recall@10" in capsys.readouterr().out

    chunks = bench.real_chunks(50)
    assert len(set(chunks)) == 50 and all(40 <= len(c.split()) <= 150 for c in chunks)
