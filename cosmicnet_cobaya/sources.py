"""Where source functions come from: one small interface and its providers.

A provider receives the classy object, computed up to thermodynamics with its
perturbation structure prepared, and returns a :class:`SourceGrid`: every source
CLASS needs, on the object's tau sampling and on a k grid of the provider's
choice that covers CLASS's k range.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.hook.bridge import PreparedPerturbations, classy, read_sources


class SourceGridError(CosmicNetError, ValueError):
    """A provider's sources cannot serve the prepared cosmology."""


class SourcesDeclinedError(CosmicNetError, RuntimeError):
    """A provider declines a point it cannot serve reliably.

    Raised for points outside a network set's training domain, or when a
    prediction is not finite; the caller falls back to CLASS or rejects the point.
    """


def base_sources(names: Sequence[str], scaled: Mapping[str, tuple[str, float]]) -> list[str]:
    """The sources to provide for ``names`` when those in ``scaled`` come from a base."""
    return list(dict.fromkeys(scaled.get(name, (name, 1.0))[0] for name in names))


@dataclass(frozen=True)
class SourceGrid:
    """Source functions on a k grid: ``values[name]`` has shape (tau_size, k.size)."""

    k: np.ndarray
    values: dict[str, np.ndarray]
    scaled: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Sources that are another one times a constant, ``name -> (base, factor)``
    (p = sqrt(6) t2): moved onto CLASS's k list once, with their base."""

    def on_class_grid(self, prepared: PreparedPerturbations) -> dict[str, np.ndarray]:
        """The sources moved onto CLASS's own k list (cubic spline in k)."""
        needed = base_sources(prepared.source_names, self.scaled)
        missing = [name for name in needed if name not in self.values]
        if missing:
            raise SourceGridError(f"no source given for {missing}")
        for name in needed:
            if self.values[name].shape != (prepared.tau.size, self.k.size):
                raise SourceGridError(
                    f"source {name} has shape {self.values[name].shape}; "
                    f"expected {(prepared.tau.size, self.k.size)}"
                )
        if self.k.shape == prepared.k.shape and np.array_equal(self.k, prepared.k):
            moved = {name: self.values[name] for name in needed}
        else:
            tolerance = 1e-10 * prepared.k[-1]
            if self.k[0] > prepared.k[0] + tolerance or self.k[-1] < prepared.k[-1] - tolerance:
                raise SourceGridError(
                    f"the sources' k grid [{self.k[0]:.4g}, {self.k[-1]:.4g}] 1/Mpc does not "
                    f"cover the k range CLASS needs here [{prepared.k[0]:.4g}, "
                    f"{prepared.k[-1]:.4g}] 1/Mpc"
                )
            spline = KSplineMap.between(self.k, np.clip(prepared.k, self.k[0], self.k[-1]))
            moved = {name: spline.apply(self.values[name]) for name in needed}
        result = {}
        for name in prepared.source_names:
            if name in self.scaled:
                base, factor = self.scaled[name]
                result[name] = factor * moved[base]
            else:
                result[name] = moved[name]
        return result


SPLINE_WEIGHT_CUTOFF = 1e-9
"""Spline weights below this fraction of the largest are left out."""
SPLINE_BLOCK = 32
"""Target k values moved by one dense matrix product in :meth:`KSplineMap.apply`."""


@dataclass(frozen=True)
class _SplineBasis:
    knots: np.ndarray
    coefficients: np.ndarray
    """(4, n_knots - 1, n_knots): the piecewise cubic of each knot's unit vector."""
    half_width: int
    """Knots beyond this many on either side of an interval weigh below the cutoff."""


@functools.lru_cache(maxsize=4)
def _spline_basis(k_from: bytes) -> _SplineBasis:
    """The spline of each unit vector and the width of its significant band.

    Cached by the knots' bytes: a network set's k grid is the same at every call.
    """
    knots = np.frombuffer(k_from)
    coefficients = CubicSpline(knots, np.eye(knots.size), axis=0).c
    h = np.diff(knots)[:, np.newaxis]
    bound = (np.abs(coefficients[0]) * h + np.abs(coefficients[1])) * h + np.abs(coefficients[2])
    bound = bound * h + np.abs(coefficients[3])
    interval, knot = np.nonzero(bound >= SPLINE_WEIGHT_CUTOFF * bound.max())
    reach = np.maximum(interval - knot, knot - interval - 1)
    return _SplineBasis(knots, coefficients, int(reach.max()))


@dataclass(frozen=True)
class KSplineMap:
    """The cubic spline from one k grid to another as a banded linear map.

    A cubic spline is linear in its values: target value j is
    ``weights[j] . values[start[j] : start[j] + width]``.  The weights of knots
    far from the target decay by ~0.27 per knot; those below
    :data:`SPLINE_WEIGHT_CUTOFF` of the largest are left out, which changes
    results by less than that fraction.
    """

    start: np.ndarray
    weights: np.ndarray
    n_from: int

    @classmethod
    def between(cls, k_from: np.ndarray, k_to: np.ndarray) -> KSplineMap:
        """The not-a-knot cubic spline through ``k_from``, evaluated at ``k_to``."""
        basis = _spline_basis(np.ascontiguousarray(k_from, dtype=np.float64).tobytes())
        knots = basis.knots
        k_to = np.asarray(k_to, dtype=np.float64)
        interval = np.clip(np.searchsorted(knots, k_to, side="right") - 1, 0, knots.size - 2)
        width = min(2 * basis.half_width + 2, knots.size)
        start = np.clip(interval - basis.half_width, 0, knots.size - width)
        columns = start[:, np.newaxis] + np.arange(width)
        c = basis.coefficients[:, interval[:, np.newaxis], columns]
        x = (k_to - knots[interval])[:, np.newaxis]
        weights = ((c[0] * x + c[1]) * x + c[2]) * x + c[3]
        return cls(start=start, weights=weights, n_from=knots.size)

    def dense(self) -> np.ndarray:
        """The map as a dense (n_to, n_from) matrix."""
        matrix = np.zeros((self.start.size, self.n_from))
        columns = self.start[:, np.newaxis] + np.arange(self.weights.shape[1])
        np.put_along_axis(matrix, columns, self.weights, axis=1)
        return matrix

    @functools.cached_property
    def _float32_blocks(self) -> tuple[tuple[slice, slice, np.ndarray], ...]:
        return tuple(
            (targets, knots, block.astype(np.float32)) for targets, knots, block in self._blocks
        )

    @functools.cached_property
    def _blocks(self) -> tuple[tuple[slice, slice, np.ndarray], ...]:
        """(targets, knots, dense block) per :data:`SPLINE_BLOCK` consecutive targets.

        Built once per map, shared by every source the map moves.
        """
        n_to, width = self.weights.shape
        blocks = []
        for first in range(0, n_to, SPLINE_BLOCK):
            last = min(first + SPLINE_BLOCK, n_to)
            low = int(self.start[first])
            high = int(self.start[last - 1]) + width
            block = np.zeros((high - low, last - first))
            rows = self.start[first:last, np.newaxis] - low + np.arange(width)
            block[rows, np.arange(last - first)[:, np.newaxis]] = self.weights[first:last]
            blocks.append((slice(first, last), slice(low, high), block))
        return tuple(blocks)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Move every row of ``values`` (n_rows, n_from) onto the target grid.

        Consecutive targets share most of their knots, so blocks of
        :data:`SPLINE_BLOCK` targets are one dense matrix product each.  float32
        values are moved in float32 (the weights rounded to float32), anything
        else in float64.
        """
        single = values.dtype == np.float32
        blocks = self._float32_blocks if single else self._blocks
        dtype = np.float32 if single else np.float64
        moved = np.empty((values.shape[0], self.start.size), dtype=dtype)
        for targets, knots, block in blocks:
            moved[:, targets] = values[:, knots] @ block
        return moved


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
