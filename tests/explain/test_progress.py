"""Progress and cancellation of explanations (``clearlm.explain.progress``): each method reports its
batches up to its total, a callback that raises stops the work at once, and without a callback nothing
changes."""

from __future__ import annotations

import numpy as np
import pytest

from clearlm.explain import explain, progress
from clearlm.explain.metrics import evaluate

PROMPT = "The Eiffel Tower is located in the city of"
TARGET = " Paris, France."


@pytest.mark.parametrize(
    ("method", "options", "units", "target"),
    [
        ("occlusion", {"batch_size": 4}, lambda r: r.n_sources, TARGET),  # one per occluded token
        ("saliency", {"rows_per_call": 3}, lambda r: r.n_targets, TARGET),  # one per target row
        ("integrated_gradients", {"steps": 16, "placement": "riemann"}, lambda r: 16 * r.n_targets, TARGET),
        # adaptive: each target's budget; what one leaves unspent is skipped at its end
        ("integrated_gradients", {"steps": 48, "tolerance": 0.5}, lambda r: 48 * r.n_targets, " Pa"),
        ("attention", {}, lambda r: 1, TARGET),
    ],
)
def test_each_method_reports_its_batches_up_to_its_total(tiny_backend, method, options, units, target):
    calls = []
    result = explain(
        tiny_backend, PROMPT, target, method=method, progress_callback=lambda *a: calls.append(a), **options
    )
    plain = explain(tiny_backend, PROMPT, target, method=method, **options)
    np.testing.assert_array_equal(result.scores, plain.scores)  # reporting changes nothing
    assert {stage for stage, _, _ in calls} == {"attribution"}
    dones = [done for _, done, _ in calls]
    assert dones == sorted(dones) and calls[-1][1] == calls[-1][2] == units(result)
    assert {total for _, _, total in calls} == {units(result)}


def test_a_callback_that_raises_stops_the_work_at_the_next_batch(tiny_backend):
    calls = []

    def give_up(stage, done, total):
        calls.append(done)
        if done >= 2:
            raise progress.Cancelled("enough")

    with pytest.raises(progress.Cancelled, match="enough"):
        explain(tiny_backend, PROMPT, TARGET, method="occlusion", batch_size=1, progress_callback=give_up)
    assert calls == [1, 2]  # no batch ran after the one that raised


def test_faithfulness_reports_its_forward_passes_in_its_stage(tiny_backend):
    result = explain(tiny_backend, PROMPT, TARGET, method="occlusion")
    calls = []
    with progress.reporting(lambda *a: calls.append(a)):
        progress.stage("faithfulness")
        evaluate(tiny_backend, result, samples=2)
    assert calls and {stage for stage, _, _ in calls} == {"faithfulness"}
    assert calls[-1][1] == calls[-1][2] > 2 * 2  # the perturbed inputs, then 2 x samples + 1 passes
