"""The per-l Planck error recovered from a binned covariance (synthetic bins)."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.pairs import Spectra
from training.evaluation.plik import SPECTRA, PlikLite
from training.evaluation.validate import errors_in_per_l_planck_units, errors_in_planck_units

L_MAX = 11
BINS = ((2, 5), (6, 11))
PER_L_SIGMA_C = {"tt": (4.0, 2.0), "te": (0.5, 0.25), "ee": (0.1, 0.05)}
"""Per-multipole C_l error in each bin: equal and independent inside a bin."""


def synthetic_plik() -> PlikLite:
    """Two bins per spectrum, uniform C_l weights, errors from PER_L_SIGMA_C."""
    ell = np.arange(L_MAX + 1)
    to_cl = np.zeros(L_MAX + 1)
    to_cl[2:] = 2 * np.pi / (ell[2:] * (ell[2:] + 1))
    binning, variances = {}, []
    for name in SPECTRA:
        matrix = np.zeros((len(BINS), L_MAX + 1))
        for row, (lo, hi) in enumerate(BINS):
            size = hi - lo + 1
            matrix[row, lo : hi + 1] = to_cl[lo : hi + 1] / size
            variances.append(PER_L_SIGMA_C[name][row] ** 2 / size)
        binning[name] = matrix
    covariance = np.diag(variances)
    centres = np.array([(lo + hi) / 2 for lo, hi in BINS])
    return PlikLite(
        data=np.zeros(len(variances)),
        covariance=covariance,
        inverse_covariance=np.linalg.inv(covariance),
        binning=binning,
        bin_centres=dict.fromkeys(SPECTRA, centres),
        l_max=L_MAX,
    )


def test_per_l_error_undoes_the_binning_of_equal_independent_errors():
    plik = synthetic_plik()
    ell = np.arange(L_MAX + 1)
    for name in SPECTRA:
        error = plik.per_l_error(name)
        assert np.all(np.isnan(error[:2]))
        for (lo, hi), sigma_c in zip(BINS, PER_L_SIGMA_C[name], strict=True):
            expected = sigma_c * ell[lo : hi + 1] * (ell[lo : hi + 1] + 1) / (2 * np.pi)
            np.testing.assert_allclose(error[lo : hi + 1], expected, rtol=1e-12)


def test_a_smooth_error_is_sqrt_n_larger_binned_than_per_l():
    """The same error of 1% of the per-l sigma reads sqrt(bin size) times more binned."""
    plik = synthetic_plik()
    reference = Spectra(dl={name: np.full(L_MAX + 1, 100.0) for name in (*SPECTRA, "pp")})
    shifted = {name: reference.dl[name].copy() for name in reference.dl}
    for name in SPECTRA:
        shifted[name][2:] += 0.01 * plik.per_l_error(name)[2:]
    other = Spectra(dl=shifted)
    per_l = errors_in_per_l_planck_units(plik, reference, other)
    binned = errors_in_planck_units(plik, reference, other)
    sizes = np.array([hi - lo + 1 for lo, hi in BINS])
    for name in SPECTRA:
        np.testing.assert_allclose(per_l[name][2:], 0.01, rtol=1e-9)
        np.testing.assert_allclose(binned[name], 0.01 * np.sqrt(sizes), rtol=1e-9)
    assert np.nanmax(np.abs(per_l["tt"])) == pytest.approx(0.01)
