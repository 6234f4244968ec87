"""Planck 2018 plik_lite TTTEEE as linear algebra: binning, chi2, calibration fit.

Wraps Cobaya's own ``planck_2018_highl_plik.TTTEEE_lite_native`` likelihood so that
the data, binning and covariance are exactly those of the chains.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

A_PLANCK_SIGMA = 0.0025
"""Width of the Gaussian prior on the Planck calibration A_planck (mean 1)."""

SPECTRA = ("tt", "te", "ee")


@dataclass(frozen=True)
class PlikLite:
    """Binned plik_lite data: D_l spectra in muK^2 map to ``binning @ D_l``."""

    data: np.ndarray
    covariance: np.ndarray
    inverse_covariance: np.ndarray
    binning: dict[str, np.ndarray]
    """Per spectrum, matrix (n_bins, l_max + 1) acting on D_l = l(l+1)C_l/2pi."""
    bin_centres: dict[str, np.ndarray]
    l_max: int

    @classmethod
    def load(cls, packages_path: Path) -> PlikLite:
        """Read the data through Cobaya's plik_lite likelihood."""
        from cobaya.likelihoods.planck_2018_highl_plik.TTTEEE_lite_native import (
            TTTEEE_lite_native,
        )

        like = TTTEEE_lite_native(
            {"packages_path": str(packages_path)}, packages_path=str(packages_path)
        )
        binning, centres = {}, {}
        for index, name in enumerate(SPECTRA):
            bins = like.used_bins[index]
            matrix = np.zeros((bins.size, like.lmax + 1))
            for row, b in enumerate(bins):
                lo, hi = like.blmin[b], like.blmax[b]
                matrix[row, lo : hi + 1] = like.weights[lo : hi + 1]
            binning[name] = matrix
            centres[name] = like.lav[bins]
        return cls(
            data=np.array(like.X_data),
            covariance=np.array(like.cov),
            inverse_covariance=np.array(like.invcov),
            binning=binning,
            bin_centres=centres,
            l_max=int(like.lmax),
        )

    def binned(self, dl: Mapping[str, np.ndarray]) -> np.ndarray:
        """Model vector (before calibration) from D_l spectra in muK^2."""
        return np.concatenate(
            [self.binning[name] @ np.asarray(dl[name])[: self.l_max + 1] for name in SPECTRA]
        )

    def chi2(self, model: np.ndarray, a_planck: float = 1.0) -> float:
        """chi2 of a binned model vector at calibration ``a_planck``."""
        residual = self.data - model / a_planck**2
        return float(residual @ self.inverse_covariance @ residual)

    def fit_calibration(self, model: np.ndarray) -> tuple[float, float]:
        """A_planck minimising chi2 plus its Gaussian prior; returns (A_planck, chi2)."""

        def penalised(a: float) -> float:
            return self.chi2(model, a) + ((a - 1.0) / A_PLANCK_SIGMA) ** 2

        result = minimize_scalar(
            penalised,
            bounds=(1 - 10 * A_PLANCK_SIGMA, 1 + 10 * A_PLANCK_SIGMA),
            method="bounded",
            options={"xatol": 1e-9},
        )
        return float(result.x), self.chi2(model, float(result.x))

    def diagonal_error(self, name: str) -> np.ndarray:
        """Per-bin standard deviation of spectrum ``name`` (diagonal of the covariance)."""
        offset = 0
        for spectrum in SPECTRA:
            size = self.binning[spectrum].shape[0]
            if spectrum == name:
                return np.sqrt(np.diag(self.covariance)[offset : offset + size])
            offset += size
        raise KeyError(name)

    def per_l_error(self, name: str) -> np.ndarray:
        """Per-multipole D_l standard deviation [muK^2] implied by the binned covariance.

        A bin is C_b = sum_l W_l C_l with sum_l W_l = 1. Taking the C_l errors inside
        a bin as equal and independent, sigma_b^2 = sigma_C^2 sum_l W_l^2, so
        sigma_C = sigma_b / sqrt(sum_l W_l^2): the unbinned error (cosmic variance,
        noise and foregrounds together) that the paper compares with. Returned for
        l = 0 ... l_max, NaN outside the bins of ``name``.
        """
        ell = np.arange(self.l_max + 1)
        to_dl = ell * (ell + 1) / (2 * np.pi)
        weights = self.binning[name] * to_dl  # acting on C_l, rows sum to 1
        per_bin = self.diagonal_error(name) / np.sqrt(np.sum(weights**2, axis=1))
        error = np.full(self.l_max + 1, np.nan)
        for row, sigma_c in zip(weights, per_bin, strict=True):
            error[row > 0] = sigma_c * to_dl[row > 0]
        return error
