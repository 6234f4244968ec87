"""The banded k-spline map that moves sources onto CLASS's k list."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.sources import SPLINE_WEIGHT_CUTOFF, KSplineMap


def test_sparse_spline_matches_cubic_spline():
    rng = np.random.default_rng(3)
    k_from = np.sort(np.concatenate([np.geomspace(1e-5, 1.0, 300), rng.uniform(1e-4, 1.0, 50)]))
    k_to = np.sort(rng.uniform(k_from[0], k_from[-1], 200))
    values = np.sin(40.0 * np.sqrt(k_from))[np.newaxis, :] * rng.normal(size=(7, 1))
    spline = KSplineMap.between(k_from, k_to)
    expected = CubicSpline(k_from, values, axis=1)(k_to)
    moved = spline.apply(values)
    assert moved.shape == (7, k_to.size)
    assert spline.weights.shape[1] < 50  # banded, not dense
    np.testing.assert_allclose(moved, expected, atol=100 * SPLINE_WEIGHT_CUTOFF)
    np.testing.assert_allclose(moved, values @ spline.dense().T, atol=1e-12)
    # Knots map onto themselves.
    on_knots = KSplineMap.between(k_from, k_from[10:20]).dense()
    np.testing.assert_allclose(on_knots, np.eye(k_from.size)[10:20], atol=1e-12)


def test_spline_map_on_a_short_grid_uses_every_knot():
    k_from = np.linspace(0.0, 1.0, 12)
    k_to = np.linspace(0.0, 1.0, 101)
    values = np.cos(3.0 * k_from)[np.newaxis, :]
    spline = KSplineMap.between(k_from, k_to)
    assert spline.weights.shape == (101, 12)
    np.testing.assert_allclose(
        spline.apply(values), CubicSpline(k_from, values, axis=1)(k_to), atol=1e-12
    )
