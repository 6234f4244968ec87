"""The sparse k-spline matrix that moves sources onto CLASS's k list."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.sources import SPLINE_WEIGHT_CUTOFF, spline_weights


def test_sparse_spline_matches_cubic_spline():
    rng = np.random.default_rng(3)
    k_from = np.sort(np.concatenate([np.geomspace(1e-5, 1.0, 300), rng.uniform(1e-4, 1.0, 50)]))
    k_to = np.sort(rng.uniform(k_from[0], k_from[-1], 200))
    values = np.sin(40.0 * np.sqrt(k_from))[np.newaxis, :] * rng.normal(size=(7, 1))
    weights = spline_weights(k_from, k_to)
    expected = CubicSpline(k_from, values, axis=1)(k_to)
    moved = np.asarray((weights @ values.T).T)
    assert weights.shape == (k_to.size, k_from.size)
    assert weights.nnz < 40 * k_to.size  # banded, not dense
    np.testing.assert_allclose(moved, expected, atol=100 * SPLINE_WEIGHT_CUTOFF)
    # Knots map onto themselves.
    on_knots = spline_weights(k_from, k_from[10:20]).toarray()
    np.testing.assert_allclose(on_knots, np.eye(k_from.size)[10:20], atol=1e-12)
