"""A small run of benchmarks/bench_attribution.py as a test of correctness (not of time)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_benchmark

PROMPT, TARGET = "The capital of Italy is", " Rome. The"


@pytest.fixture(scope="module")
def bench():
    module = load_benchmark("bench_attribution")
    return module


@pytest.mark.parametrize(
    ("method", "kw"),
    [("input_x_gradient", {}), ("integrated_gradients", {}), ("occlusion", {"forward_in_tokens": False})],
)
def test_benchmark_compares_equal_definitions(bench, tiny_backend, method, kw):
    ours = bench.clearlm_fn(tiny_backend, PROMPT, TARGET, method, steps=4)()
    theirs = bench.captum_fn(tiny_backend, PROMPT, TARGET, method, steps=4, **kw)()
    n_prompt = theirs.shape[1]
    assert bench.rel_err(ours[:, :n_prompt].astype(np.float64), theirs) < 1e-6


def test_timing_helpers(bench, tiny_backend):
    seconds, peak_mb, out = bench.timed(lambda: np.ones(3), repeats=3)
    assert seconds >= 0 and peak_mb >= 0 and out.sum() == 3
    bench.floor_fn(tiny_backend, PROMPT, TARGET)()  # runs without error


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "integrated_gradients"])
def test_benchmark_compares_equal_definitions_with_inseq(bench, tiny_backend, monkeypatch, method):
    """inseq is a benchmark peer that `make test` installs (`make peers`)."""
    # inseq reads the start token from the model's config; the tiny model has none of its own.
    monkeypatch.setattr(tiny_backend.model.config, "bos_token_id", tiny_backend.tokenizer.eos_token_id)
    ours = bench.clearlm_fn(tiny_backend, PROMPT, TARGET, method, steps=4)()
    theirs = bench.inseq_fn(tiny_backend, PROMPT, TARGET, method, steps=4)()
    n_prompt = len(tiny_backend.tokenizer(PROMPT)["input_ids"])
    # inseq returns float32 scores whatever the model's dtype
    assert bench.rel_err(ours[:, :n_prompt].astype(np.float64), theirs[:, :n_prompt]) < 1e-6


@pytest.mark.parametrize("method", ["input_x_gradient", "integrated_gradients"])
def test_sequence_level_matches_captum_seq_attr(bench, tiny_backend, method):
    ours = bench.clearlm_fn(tiny_backend, PROMPT, TARGET, method, steps=4, sequence=True)()
    theirs = bench.captum_fn(tiny_backend, PROMPT, TARGET, method, steps=4)()
    assert ours.shape[0] == 1
    assert bench.rel_err(ours[0, : theirs.shape[1]].astype(np.float64), theirs.sum(0)) < 1e-6
