"""A BAO-like Gaussian likelihood for Fisher estimates: D_M/r_d and D_H/r_d at a few redshifts.

BAO distances come from CLASS's background, which ClassNet does not emulate,
so they add no model error: they add Fisher information, which breaks the
CMB's geometric degeneracies (w0, wa, H0, m_ncdm) and so sets the width in
which a CMB model error is measured. Only the errors enter a Fisher shift,
not measured values, so a likelihood "like" a survey is defined by its
redshifts and fractional errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BaoLike:
    """Uncorrelated fractional errors on D_M/r_d and D_H/r_d at effective redshifts."""

    redshifts: tuple[float, ...]
    dm_errors: tuple[float, ...]
    dh_errors: tuple[float, ...]

    def observables(self, cosmo: Any) -> np.ndarray:
        """D_M/r_d at every redshift, then D_H/r_d, from a computed classy object."""
        r_d = cosmo.rs_drag()
        d_m = [cosmo.angular_distance(z) * (1 + z) / r_d for z in self.redshifts]
        d_h = [1.0 / (cosmo.Hubble(z) * r_d) for z in self.redshifts]
        return np.array(d_m + d_h)

    def inverse_covariance(self, observables: np.ndarray) -> np.ndarray:
        """Diagonal inverse covariance of :meth:`observables` around ``observables``."""
        sigma = np.asarray(observables) * np.array(self.dm_errors + self.dh_errors)
        return np.diag(1.0 / sigma**2)


DESI_LIKE = BaoLike(
    redshifts=(0.51, 0.71, 0.93, 1.32, 1.49, 2.33),
    dm_errors=(0.010, 0.009, 0.006, 0.009, 0.018, 0.010),
    dh_errors=(0.020, 0.017, 0.012, 0.021, 0.036, 0.010),
)
"""BAO-like with errors of the size of DESI's second data release (rounded, uncorrelated)."""

BAO_LIKELIHOODS: dict[str, BaoLike] = {"desi-like": DESI_LIKE}
