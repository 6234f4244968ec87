"""Residual corrections: a smooth polynomial in the parameters added to a network's output.

Averaged over references of tau_reio and H0 (:mod:`~cosmicnet_cobaya.networks.references`),
a recombination network's prediction depends on omega_b and omega_cdm alone, and
so does its error, smoothly: a low-degree polynomial in those parameters, fitted
on generated cosmologies (``cosmicnet correct``), predicts most of it.  The
correction of network ``name`` is stored beside its model as

    <name>.correction.npz
        arrays x (n_x,), left (n_terms, n_x, rank) and right (rank, k_size)

with its parameters, their centre and scale and the degree in the network's
metadata entry (key ``correction``).  On the rows the network serves,

    correction(tau, k) = sum_c P_c(u) (left_c @ right)(x, k),   u = (params - centre) / scale,

with x = tau / tau_rec (linear between grid points, zero outside the grid), P_c
the monomials of total degree <= ``degree`` (:func:`monomials`), and k the first
``k_size`` values of the set's k grid.  The (term, x) x k matrix of coefficients
is stored as a truncated singular-value factorisation (``left``, ``right``).

The entry's ``mode`` says how the polynomial meets the network's output:

``additive`` (the default)
    the correction is added to it;
``relative``
    the output is multiplied by ``1 + correction``;
``log``
    on the rows within the x grid the output is replaced by
    ``sign(output) * exp(correction)``: the polynomial emulates ln|source|
    itself.  The matter sources after recombination (delta_m, delta_cb,
    phi_plus_psi) are so smooth in the parameters over a training box that a
    quadratic in them reproduces ln|source| to ~1e-4, far below any network's
    error; the network then only supplies the sign and the earlier rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.errors import CosmicNetError

CORRECTION_SUFFIX = ".correction.npz"
MODES = ("additive", "relative", "log")
"""How a correction meets its network's output (module docstring)."""


class CorrectionError(CosmicNetError, ValueError):
    """A residual correction is missing, corrupt or does not fit its network set."""


def monomial_powers(n_parameters: int, degree: int) -> list[tuple[int, ...]]:
    """Exponents of every monomial of total degree <= ``degree``, constant first."""
    powers = [
        combination
        for total in range(degree + 1)
        for combination in itertools.product(range(total + 1), repeat=n_parameters)
        if sum(combination) == total
    ]
    return sorted(powers, key=lambda combination: (sum(combination), [-p for p in combination]))


def monomials(u: np.ndarray, degree: int) -> np.ndarray:
    """The monomials of the scaled parameters ``u`` ((..., n_parameters) -> (..., n_terms))."""
    u = np.asarray(u, dtype=float)
    powers = monomial_powers(u.shape[-1], degree)
    return np.stack([np.prod(u ** np.array(p), axis=-1) for p in powers], axis=-1)


@dataclass(frozen=True)
class LinearInterpolation:
    """Linear interpolation from samples at ``known`` to the points ``wanted``.

    Points outside ``[known[0], known[-1]]`` get zero (``inside`` is False there).
    """

    lower: np.ndarray
    weight: np.ndarray
    inside: np.ndarray

    @classmethod
    def between(cls, known: np.ndarray, wanted: np.ndarray) -> LinearInterpolation:
        """Indices and weights for ``wanted`` within the increasing samples ``known``."""
        known = np.asarray(known, dtype=float)
        wanted = np.asarray(wanted, dtype=float)
        inside = (wanted >= known[0]) & (wanted <= known[-1])
        lower = np.clip(np.searchsorted(known, wanted, side="right") - 1, 0, known.size - 2)
        weight = np.where(inside, (wanted - known[lower]) / (known[lower + 1] - known[lower]), 0.0)
        return cls(lower=lower, weight=np.clip(weight, 0.0, 1.0), inside=inside)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``values`` (n_known, ...) at the wanted points ((n_wanted, ...), zero outside)."""
        shape = (-1,) + (1,) * (values.ndim - 1)
        weight = self.weight.reshape(shape)
        result = values[self.lower] * (1.0 - weight) + values[self.lower + 1] * weight
        result[~self.inside] = 0.0
        return result


@dataclass(frozen=True)
class ResidualCorrection:
    """A fitted residual correction of one network (see the module docstring)."""

    parameters: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    degree: int
    x: np.ndarray
    left: np.ndarray
    right: np.ndarray
    file: str = ""
    fitted: dict[str, Any] = field(default_factory=dict)
    """How it was fitted: data, cosmologies, rank, residual before and after."""
    mode: str = "additive"
    """``additive``, ``relative`` or ``log`` (module docstring)."""

    def __post_init__(self) -> None:
        n_terms = len(monomial_powers(len(self.parameters), self.degree))
        if not self.parameters or len(self.centre) != len(self.parameters):
            raise CorrectionError("a correction needs parameters and one centre per parameter")
        if len(self.scale) != len(self.parameters) or min(self.scale) <= 0.0:
            raise CorrectionError("a correction needs one positive scale per parameter")
        if self.x.ndim != 1 or self.x.size < 2 or np.any(np.diff(self.x) <= 0.0):
            raise CorrectionError("the x grid of a correction must increase")
        if self.left.shape[:2] != (n_terms, self.x.size):
            raise CorrectionError(
                f"left factor has shape {self.left.shape}, expected "
                f"({n_terms}, {self.x.size}, rank) for degree {self.degree} "
                f"in {len(self.parameters)} parameters"
            )
        if self.right.ndim != 2 or self.right.shape[0] != self.left.shape[2]:
            raise CorrectionError(
                f"right factor has shape {self.right.shape}, "
                f"expected ({self.left.shape[2]}, k_size)"
            )
        if not (np.all(np.isfinite(self.left)) and np.all(np.isfinite(self.right))):
            raise CorrectionError("a correction holds non-finite coefficients")
        if self.mode not in MODES:
            raise CorrectionError(f"unknown correction mode {self.mode!r}: use one of {MODES}")

    @property
    def k_size(self) -> int:
        """The correction covers the first ``k_size`` values of the set's k grid."""
        return int(self.right.shape[1])

    def scaled(self, params: Mapping[str, float]) -> np.ndarray:
        """``(params - centre) / scale`` for the correction's parameters."""
        values = np.array([params[name] for name in self.parameters], dtype=float)
        return (values - np.array(self.centre)) / np.array(self.scale)

    def evaluate(self, params: Mapping[str, float], x: np.ndarray) -> np.ndarray:
        """The correction (len(x), k_size) at ``params``, on rows at x = tau / tau_rec."""
        return self._interpolation(x)(self._on_grid(params))

    def _on_grid(self, params: Mapping[str, float]) -> np.ndarray:
        terms = monomials(self.scaled(params), self.degree).astype(self.left.dtype)
        return np.tensordot(terms, self.left, axes=1) @ self.right  # (n_x, k_size)

    def _interpolation(self, x: np.ndarray) -> LinearInterpolation:
        return LinearInterpolation.between(self.x, x)

    def add_to(self, values: np.ndarray, params: Mapping[str, float], x: np.ndarray) -> None:
        """Apply the correction in place to ``values`` (len(x), n_k >= k_size)."""
        interpolation = self._interpolation(x)
        correction = interpolation(self._on_grid(params)).astype(values.dtype, copy=False)
        corrected = values[:, : self.k_size]
        if self.mode == "relative":
            corrected *= 1.0 + correction
        elif self.mode == "log":
            inside = interpolation.inside
            corrected[inside] = np.copysign(np.exp(correction[inside]), corrected[inside])
        else:
            corrected += correction

    def spec(self) -> dict[str, Any]:
        """The metadata entry (everything but the arrays)."""
        return {
            "file": self.file,
            "parameters": list(self.parameters),
            "centre": list(self.centre),
            "scale": list(self.scale),
            "degree": self.degree,
            **({"mode": self.mode} if self.mode != "additive" else {}),
            "fitted": self.fitted,
        }

    def save(self, directory: str | Path) -> Path:
        """Write the arrays to ``directory / file`` (NumPy ``.npz``, no pickles)."""
        path = Path(directory) / self.file
        with path.open("wb") as handle:
            np.savez(handle, x=self.x, left=self.left, right=self.right)
        return path

    @classmethod
    def load(cls, directory: str | Path, spec: Mapping[str, Any], where: str) -> ResidualCorrection:
        """The correction that metadata entry ``spec`` describes, arrays from ``directory``."""
        try:
            file = str(spec["file"])
            parameters = tuple(str(name) for name in spec["parameters"])
            centre = tuple(float(value) for value in spec["centre"])
            scale = tuple(float(value) for value in spec["scale"])
            degree = int(spec["degree"])
            mode = str(spec.get("mode", "additive"))
        except (KeyError, TypeError, ValueError) as error:
            raise CorrectionError(f"{where} is incomplete: {error!r}") from error
        path = Path(directory) / file
        if not path.is_file():
            raise CorrectionError(f"{where}: correction file {file} is missing")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                x = np.asarray(arrays["x"], dtype=float)
                # the factors keep their stored precision (float32 when fitted)
                left, right = (np.asarray(arrays[name]) for name in ("left", "right"))
        except (OSError, KeyError, ValueError) as error:
            raise CorrectionError(f"{where}: {file} is corrupt: {error}") from error
        if not all(np.issubdtype(a.dtype, np.floating) for a in (left, right)):
            raise CorrectionError(f"{where}: {file} holds non-float factors")
        try:
            return cls(parameters, centre, scale, degree, x, left, right, file,
                       dict(spec.get("fitted", {})), mode)  # fmt: skip
        except CorrectionError as error:
            raise CorrectionError(f"{where}: {error}") from error


def check_fits(correction: ResidualCorrection, param_names: Sequence[str], n_k: int) -> None:
    """Raise CorrectionError where ``correction`` does not fit a set's parameters or k grid."""
    unknown = [name for name in correction.parameters if name not in param_names]
    if unknown:
        raise CorrectionError(
            f"correction {correction.file} depends on {unknown}, which the set does not vary"
        )
    if correction.k_size > n_k:
        raise CorrectionError(
            f"correction {correction.file} covers {correction.k_size} k values but the set's "
            f"k grid has {n_k}"
        )
