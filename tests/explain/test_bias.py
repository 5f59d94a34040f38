"""The counterfactual bias probe on a tiny model: gaps are antisymmetric, identical terms give none,
attribution shares are fractions; the command writes its table, chart and JSON."""

from __future__ import annotations

import pytest

from clearlm.explain.bias import load_pairs, probe, summary

PAIRS = {
    "templates": [{"text": "{X} visited the capital of Italy, which is", "target": " Rome"}],
    "pairs": {"test": [["The man", "The woman"], ["The woman", "The man"], ["Paris", "Paris"]]},
}


def test_gaps_are_antisymmetric_and_shares_are_fractions(tiny_backend):
    ab, ba, same = probe(tiny_backend, PAIRS)
    assert ab.gap == pytest.approx(-ba.gap, abs=1e-9) and ab.gap != 0
    assert same.gap == pytest.approx(0, abs=1e-12) and same.share_a == pytest.approx(same.share_b)
    assert all(0 < r.share_a < 1 and 0 < r.share_b < 1 for r in (ab, ba, same))
    [row] = summary([ab, ba, same])
    assert row["pairs"] == 3 and row["mean_gap"] == pytest.approx(0, abs=1e-9)
    assert row["mean_abs_gap"] == pytest.approx(2 * abs(ab.gap) / 3)


def test_the_packaged_pairs_cover_three_categories():
    data = load_pairs()
    assert set(data["pairs"]) == {"gender", "names", "nationality"}
    assert all("{X}" in t["text"] and t["target"].startswith(" ") for t in data["templates"])
