"""benchmarks/bench_governance.py: its data sets parse, and the scanners stay above stated floors on them
(the full figures are in the README). Not a speed test: the overhead numbers are only checked to exist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_benchmark

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_governance.py"


@pytest.fixture(scope="module")
def bench():
    module = load_benchmark("bench_governance")
    return module


def test_the_data_sets_are_large_enough_and_well_formed(bench):
    pii = bench.pii_examples()
    assert len(pii) >= 300 and sum(len(spans) for _, spans in pii) >= 500
    assert len(bench.pii_examples(split="held-out")) >= 60
    for text, spans in pii:
        assert "[[" not in text and all(0 <= s < e <= len(text) for _, s, e in spans)
    for name in bench.INJECTION_SETS:
        rows = bench.injection_examples(name=name)
        labels = [r["label"] for r in rows]
        if name == "benign":  # issue 11: real benign sentences only
            assert labels.count("benign") >= 300 and "attack" not in labels
        else:
            assert labels.count("attack") >= 100 and labels.count("benign") >= 100


def test_pii_precision_and_recall_stay_above_their_floors(bench):
    scores = bench.pii_scores()
    assert scores["all"]["precision"] >= 0.95 and scores["all"]["recall"] >= 0.9
    kinds = ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "UK_NHS", "PHONE_NUMBER", "PASSPORT")
    for kind in (*kinds, "NATIONAL_ID"):
        assert scores[kind]["recall"] >= 0.9 and scores[kind]["precision"] >= 0.9, kind


def test_the_third_held_out_set_is_measured(bench):
    assert bench.INJECTION_SETS["held-out 3"] == "injection_heldout3.jsonl"
    rows = bench.injection_examples(name="held-out 3")
    families = {r["family"] for r in rows if r["label"] == "attack"}
    assert {"multilingual", "tool_hijack", "indirect", "encoding", "delimiter"} <= families


@pytest.mark.integration
def test_the_script_prints_its_tables(tmp_path):
    out = tmp_path / "gov.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--limit", "30", "--runs", "3", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| PII type |" in proc.stdout and "held-out" in proc.stdout and "whole input policy" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["overhead"]["ms"]["pii"]["p50"] > 0 and figures["overhead"]["prompt_chars"] > 900
