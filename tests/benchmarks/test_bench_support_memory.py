"""benchmarks/bench_support_memory.py on a small history (50 turns): it runs, prints its table, and its
read counts are the memory's bounds (not a speed test: the ratio is measured by the full run)."""

from __future__ import annotations

import json

import pytest

from conftest import load_benchmark

pytestmark = pytest.mark.integration  # the packaged all-MiniLM-L6-v2


def test_the_small_run_prints_its_table_and_bounded_reads(tmp_path, capsys):
    bench = load_benchmark("bench_support_memory")
    result = bench.main(["--turns", "50", "--repeats", "3", "--json", str(tmp_path / "memory.json")])
    assert result == json.loads((tmp_path / "memory.json").read_text())
    out = capsys.readouterr().out
    assert "turn 2" in out and "turn 13" in out and "turn 51" in out and "ratio turn 51 / turn 2" in out
    assert result["arms"] == ["turn_2", "turn_13", "turn_51"]
    short, long = result["turn_2"], result["turn_51"]
    assert short["statements"] <= result["turn_13"]["statements"] <= long["statements"] <= 6
    # 12 recent + 24 window + 24 lexical + 5 conversations and their 5 first messages + 1, at most
    assert short["rows"] < long["rows"] <= 71
    assert 0 < short["median_ms"] <= short["p90_ms"] and 0 < long["median_ms"] <= long["p90_ms"]
    for arm in (short, long):
        assert 0 < arm["rest_median_ms"] < arm["median_ms"] and arm["embedding_median_ms"] > 0
    assert result["ratio"] == pytest.approx(long["median_ms"] / short["median_ms"], abs=1e-3)
