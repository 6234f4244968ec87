"""Where source functions come from: one small interface and its providers.

A provider receives the classy object, computed up to thermodynamics with its
perturbation structure prepared, and returns a :class:`SourceGrid`: every source
CLASS needs, on the object's tau sampling and on a k grid of the provider's
choice that covers CLASS's k range.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import sparse
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.hook.bridge import PreparedPerturbations, classy, read_sources


class SourceGridError(ValueError):
    """A provider's sources cannot serve the prepared cosmology."""


class SourcesDeclinedError(RuntimeError):
    """A provider declines a point it cannot serve reliably.

    Raised for points outside a network set's training domain, or when a
    prediction is not finite; the caller falls back to CLASS or rejects the point.
    """


@dataclass(frozen=True)
class SourceGrid:
    """Source functions on a k grid: ``values[name]`` has shape (tau_size, k.size)."""

    k: np.ndarray
    values: dict[str, np.ndarray]

    def on_class_grid(self, prepared: PreparedPerturbations) -> dict[str, np.ndarray]:
        """The sources moved onto CLASS's own k list (cubic spline in k)."""
        missing = [name for name in prepared.source_names if name not in self.values]
        if missing:
            raise SourceGridError(f"no source given for {missing}")
        for name in prepared.source_names:
            if self.values[name].shape != (prepared.tau.size, self.k.size):
                raise SourceGridError(
                    f"source {name} has shape {self.values[name].shape}; "
                    f"expected {(prepared.tau.size, self.k.size)}"
                )
        if self.k.shape == prepared.k.shape and np.array_equal(self.k, prepared.k):
            return {name: self.values[name] for name in prepared.source_names}
        tolerance = 1e-10 * prepared.k[-1]
        if self.k[0] > prepared.k[0] + tolerance or self.k[-1] < prepared.k[-1] - tolerance:
            raise SourceGridError(
                f"the sources' k grid [{self.k[0]:.4g}, {self.k[-1]:.4g}] 1/Mpc does not "
                f"cover the k range CLASS needs here [{prepared.k[0]:.4g}, "
                f"{prepared.k[-1]:.4g}] 1/Mpc"
            )
        names = list(prepared.source_names)
        n_tau = prepared.tau.size
        stacked = np.concatenate([self.values[name] for name in names], axis=0)
        weights = spline_weights(self.k, np.clip(prepared.k, self.k[0], self.k[-1]))
        moved = np.asarray((weights @ stacked.T).T)
        return {name: moved[i * n_tau : (i + 1) * n_tau] for i, name in enumerate(names)}


SPLINE_WEIGHT_CUTOFF = 1e-9
"""Weights of the k spline below this fraction of the largest are dropped."""


@functools.lru_cache(maxsize=4)
def _spline_basis(k_from: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Knots and piecewise-cubic coefficients of the spline of each unit vector.

    Cached by the knots' bytes: a network set's k grid is the same at every call.
    """
    knots = np.frombuffer(k_from)
    return knots, CubicSpline(knots, np.eye(knots.size), axis=0).c


def spline_weights(k_from: np.ndarray, k_to: np.ndarray) -> sparse.csr_matrix:
    """The cubic spline from ``k_from`` to ``k_to`` as a sparse (k_to, k_from) matrix.

    A cubic spline is linear in its values, so one matrix moves every (source,
    tau) row at once.  Its weights decay by a factor ~0.27 per knot away from
    the target; dropping those below :data:`SPLINE_WEIGHT_CUTOFF` of the largest
    keeps about 20 per row and changes results by less than that fraction.
    """
    knots, coefficients = _spline_basis(np.ascontiguousarray(k_from, dtype=np.float64).tobytes())
    interval = np.clip(np.searchsorted(knots, k_to, side="right") - 1, 0, knots.size - 2)
    x = (k_to - knots[interval])[:, np.newaxis]
    c = coefficients[:, interval, :]
    dense = ((c[0] * x + c[1]) * x + c[2]) * x + c[3]
    dense[np.abs(dense) < SPLINE_WEIGHT_CUTOFF * np.abs(dense).max()] = 0.0
    return sparse.csr_matrix(dense)


class SourceProvider(Protocol):
    """Anything that can give the sources of a prepared cosmology."""

    def sources_for(self, cosmo: Any, prepared: PreparedPerturbations) -> SourceGrid:
        """Return every source in ``prepared.source_names`` on ``prepared.tau``."""
        ...


class ClassSourceProvider:
    """Exact sources: CLASS integrates the perturbations in a private object.

    This is the validation mode of the theory: it proves the hook end to end.
    """

    def __init__(self) -> None:
        self._private = classy.Class()

    def sources_for(self, cosmo: Any, prepared: PreparedPerturbations) -> SourceGrid:
        """Integrate the perturbations for the same parameters and copy the sources."""
        self._private.empty()
        self._private.set(dict(cosmo.pars))
        self._private.compute(level=["perturbations"])
        k, tau, values = read_sources(self._private)
        if tau.shape != prepared.tau.shape or not np.array_equal(tau, prepared.tau):
            raise SourceGridError("the private CLASS object chose another tau sampling")
        return SourceGrid(k=k, values=values)

    def close(self) -> None:
        """Free the private object's CLASS memory."""
        self._private.struct_cleanup()
        self._private.empty()
