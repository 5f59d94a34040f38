"""A small run of benchmarks/bench_faithfulness.py as a test of correctness (not of time)."""

from __future__ import annotations

import json
import math

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    module = load_benchmark("bench_faithfulness")
    return module


def test_prompt_set_mixes_the_four_categories(bench):
    cases = bench.load_cases()
    assert len(cases) >= 50
    assert len({c.id for c in cases}) == len(cases)
    assert {c.category for c in cases} == {"factual", "reasoning", "translation", "chat"}
    for c in cases:
        if c.category == "chat":
            assert [m.role for m in c.prompt] == ["system", "user"]
        else:
            assert isinstance(c.prompt, str) and c.prompt.strip()
    # A small run still sees every category.
    assert {c.category for c in bench.select(cases, 4)} == {"factual", "reasoning", "translation", "chat"}


def test_arguments_are_checked(bench, tmp_path):
    args = bench.parse_args(
        ["--methods", "random, occlusion", "--prompts", "3", "--json", str(tmp_path / "a.json")]
    )
    assert args.methods == ["random", "occlusion"] and args.prompts == 3
    for bad in (
        ["--methods", "contrastive"],
        ["--prompts", "0"],
        ["--markdown", str(tmp_path / "no" / "t.md")],
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


@pytest.mark.integration
def test_prompts_are_10_to_40_tokens_with_the_chat_template(bench, default_backend):
    for c in bench.load_cases():
        n = len(default_backend.encode(c.prompt).token_ids)
        assert 10 <= n <= 40, (c.id, n)


@pytest.mark.integration
def test_small_run_beats_the_random_floor(bench, default_backend, tmp_path):
    cases = bench.with_targets(default_backend, bench.select(bench.load_cases(), 2), 4, print)
    assert len(cases) == 2 and all(c.target for c in cases)
    methods = ["random", "input_x_gradient", "occlusion"]
    printed = []
    rows = bench.run(default_backend, cases, methods, samples=1, on_row=lambda r: printed.append(r.method))
    assert printed == [r.method for r in rows] == methods  # one row per method, in order, as each completes
    by = {r.method: r for r in rows}
    for r in rows:
        for m in bench.METRICS:
            assert r.count(m) == 2, (r.method, m)
            assert math.isfinite(r.mean(m)) and math.isfinite(r.sem(m))
        assert -1 <= r.mean("comprehensiveness") <= 1 and -1 <= r.mean("sufficiency") <= 1
        assert r.mean("soft_nc") >= 0
        assert len(r.explain_s) == 2
    # Removing the tokens a method ranks highest must hurt more than removing random ones, on every prompt.
    for method in ("input_x_gradient", "occlusion"):
        for ours, floor in zip(
            by[method].values["comprehensiveness"], by["random"].values["comprehensiveness"], strict=True
        ):
            assert ours > floor + 0.05, method

    settings = {
        "model": "qwen2.5-0.5b-instruct", "threads": 1, "n_prompts": 2, "categories": "1 factual, 1 reasoning",
        "target_tokens": 4, "n_targets": 8, "steps": 16, "samples": 1, "seed": 0, "fractions": [0.01, 0.5],
    }  # fmt: skip
    table = bench.markdown(rows, settings)
    assert table.count("\n| `") == 3 and "`random`" in table and "±" in table and "1/50%" in table
    assert "nan" not in table
    assert bench.text_row(by["occlusion"]).startswith("occlusion")
    doc = json.loads(json.dumps([r.to_json() for r in rows]))
    assert doc[0]["n"]["comprehensiveness"] == 2 and len(doc[1]["per_prompt"]["soft_ns"]) == 2
