"""Context attribution on the real default model: the passage that holds the answer gets the most weight."""

from __future__ import annotations

import numpy as np
import pytest

from clearlm.explain.context import ContextSources, context_attribution
from conftest import TOWN_PASSAGES as PASSAGES

pytestmark = pytest.mark.integration


def test_the_answer_passage_gets_the_largest_ablation_weight(default_backend):
    sources = ContextSources.in_message(
        PASSAGES,
        before="Passages:\n\n",
        after="\n\nQuestion: Who designed the lighthouse of Brisk Harbour?",
        system="Answer from the passages.",
    )
    response = "The lighthouse of Brisk Harbour was designed by Anika Brandt."
    result = context_attribution(default_backend, sources, response, ablations=8)
    assert result.exact and result.n_ablations == 8
    assert result.ranking()[0] == 1
    assert result.weights[1] > 0.3 and result.weights[1] > 5 * np.abs(result.weights[[0, 2]]).max()
    assert int(np.argmax(result.gradient_shares)) == 1  # the gradient view agrees here
    # keeping passage 2 makes the answer likelier: the best ablations are those that keep it
    keeps = result.masks[:, 1]
    assert result.scores[keeps].mean() > result.scores[~keeps].mean() + 0.3
