"""Fisher-matrix estimate of the posterior shift caused by a model error.

For a Gaussian likelihood with data covariance C, model m(theta) with Jacobian
J = dm/dtheta and Gaussian priors of widths s_i, a small error delta in the
model moves the best fit by

    d theta = F^-1 J^T C^-1 delta,   F = J^T C^-1 J + diag(1 / s_i^2),

and the marginalised errors are sigma_i = sqrt((F^-1)_ii).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ShiftEstimate:
    """Parameter shifts, their size in sigma, and the marginalised sigmas."""

    names: tuple[str, ...]
    shift: np.ndarray
    sigma: np.ndarray

    @property
    def shift_in_sigma(self) -> np.ndarray:
        """Shift of each parameter divided by its marginalised error."""
        return self.shift / self.sigma

    def as_dict(self) -> dict[str, dict[str, float]]:
        """JSON-friendly view: name -> shift, sigma, shift_in_sigma."""
        return {
            name: {"shift": float(s), "sigma": float(e), "shift_in_sigma": float(s / e)}
            for name, s, e in zip(self.names, self.shift, self.sigma, strict=True)
        }


def fisher_matrix(
    jacobian: np.ndarray, inverse_covariance: np.ndarray, prior_sigma: np.ndarray
) -> np.ndarray:
    """J^T C^-1 J plus Gaussian priors (``inf`` in ``prior_sigma`` means none)."""
    fisher = jacobian.T @ inverse_covariance @ jacobian
    return fisher + np.diag(1.0 / np.asarray(prior_sigma, dtype=float) ** 2)


def posterior_shift(
    names: Sequence[str],
    jacobian: np.ndarray,
    inverse_covariance: np.ndarray,
    delta: np.ndarray,
    prior_sigma: np.ndarray,
) -> ShiftEstimate:
    """Shift of the best fit caused by the model error ``delta``."""
    fisher = fisher_matrix(jacobian, inverse_covariance, prior_sigma)
    covariance = np.linalg.inv(fisher)
    shift = covariance @ (jacobian.T @ inverse_covariance @ delta)
    return ShiftEstimate(tuple(names), shift, np.sqrt(np.diag(covariance)))


def finite_difference_jacobian(
    model: Callable[[Mapping[str, float]], np.ndarray],
    point: Mapping[str, float],
    steps: Mapping[str, float],
) -> np.ndarray:
    """Central differences of ``model`` around ``point``: columns in ``steps`` order."""
    columns = []
    for name, step in steps.items():
        up = model({**point, name: point[name] + step})
        down = model({**point, name: point[name] - step})
        columns.append((up - down) / (2 * step))
    return np.stack(columns, axis=1)
