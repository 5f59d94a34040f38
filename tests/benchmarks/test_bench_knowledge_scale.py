"""benchmarks/bench_knowledge_scale.py --small: it runs, and its figures are sane (not a speed test)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_knowledge_scale.py"

pytestmark = pytest.mark.integration


def test_the_small_run_reports_every_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))  # the embeddings' cache
    spec = importlib.util.spec_from_file_location("bench_knowledge_scale", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

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
