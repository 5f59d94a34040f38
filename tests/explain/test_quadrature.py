"""Adaptive quadrature for integrated gradients, on integrands with known integrals and on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from clearlm.errors import InvalidInputError
from clearlm.explain import gradient as G
from clearlm.explain import quadrature as Q
from clearlm.explain.sequence import build_sequence

# A steep step like the ones real models show along the integrated-gradients path: f rises by 0.7 over
# about 1e-4 near a = 0.0153, then falls smoothly. Two sources share the density in fixed proportions.
CENTRE, WIDTH = 0.0153, 1e-4
SHARE = np.array([0.75, 0.25])


def f(a):
    return 0.7 / (1 + np.exp(-(a - CENTRE) / WIDTH)) - 2.0 * a**2


def df(a):
    s = 1 / (1 + np.exp(-(a - CENTRE) / WIDTH))
    return 0.7 * s * (1 - s) / WIDTH - 4.0 * a


def gradient_sums(alphas, weights, groups):
    """float64[S, 1, 2]: per group, sum of weight * density, one target, two sources."""
    out = np.zeros((groups.max() + 1, 1, 2))
    np.add.at(out, groups, (weights * df(alphas))[:, None, None] * SHARE)
    return out


def values(alphas):
    return f(np.asarray(alphas))[:, None]


def test_adaptive_rule_resolves_a_steep_step_that_fixed_rules_miss():
    exact = (f(1.0) - f(0.0)) * SHARE
    integral, used = Q.adaptive_integral(gradient_sums, values, budget=512, tolerance=1e-3)
    assert used <= 512
    assert np.abs(integral[0] - exact).sum() / np.abs(exact).sum() < 1e-3
    nodes, weights = Q.integration_points(64, "gauss-legendre")
    fixed = gradient_sums(nodes, weights, np.zeros(64, dtype=int))[0, 0]
    assert abs(fixed.sum() - exact.sum()) / abs(exact.sum()) > 0.05  # 64 Gauss-Legendre nodes miss it


def test_adaptive_rule_stops_at_its_budget():
    integral, used = Q.adaptive_integral(gradient_sums, values, budget=40, tolerance=1e-9)
    assert used == 40 and integral.shape == (1, 2)


def test_adaptive_rule_is_exact_for_smooth_cubics_without_refining():
    def cubic_sums(alphas, weights, groups):
        out = np.zeros((groups.max() + 1, 1, 1))
        np.add.at(out, groups, (weights * 3 * alphas**2)[:, None, None])
        return out

    integral, used = Q.adaptive_integral(cubic_sums, lambda a: np.asarray(a)[:, None] ** 3, budget=512)
    assert used == Q.INITIAL_SEGMENTS * Q.NODES_PER_SEGMENT
    assert integral[0, 0] == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize(
    ("steps", "placement", "tolerance", "message"),
    [
        (16, "adaptive", 0.01, "at least 32 steps"),
        (8, "simpson", 0.01, "unknown step placement"),
        (64, "adaptive", 1.5, "between 0 and 1"),
    ],
)
def test_bad_settings_are_refused(steps, placement, tolerance, message):
    with pytest.raises(InvalidInputError, match=message):
        Q.check_placement(steps, placement, tolerance)


def test_adaptive_integrated_gradients_on_a_tiny_model(tiny_backend):
    """Within budget the gap is under the tolerance, and the scores agree with a dense fixed rule."""
    seq = build_sequence(tiny_backend, "The capital of Italy is", " Rome. The capital")
    adaptive = G.gradient_attribution(tiny_backend.model, seq, "integrated_gradients", tolerance=1e-3)
    dense = G.gradient_attribution(
        tiny_backend.model, seq, "integrated_gradients", steps=512, placement="gauss-legendre"
    )
    assert adaptive.gradient_evaluations <= 512 * seq.n_targets  # the budget is per target
    assert adaptive.completeness_gap.max() <= 1e-3
    mask = ~np.isnan(dense.scores)
    err = np.linalg.norm(adaptive.scores[mask] - dense.scores[mask]) / np.linalg.norm(dense.scores[mask])
    assert err < 1e-3
