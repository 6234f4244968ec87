"""The line-of-sight projection of a source error (NumPy), shared by the loss and validation.

See ``training.learning.losses`` for why the error is projected and how.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import spherical_jn

BESSEL_STEP = 0.02
"""Spacing in x of the j_l(x) table (linear interpolation error below 1e-4 of its peak)."""

LARGEST_DISTANCE = 25000.0
"""tau_0 - tau [Mpc] covered by the j_l table (conformal age of any sensible cosmology)."""

POLARISATION_SOURCE = "t2"
"""The polarisation source (S_P = sqrt(6) S_T2; the factor cancels in relative errors):
its E-mode projection weighs the TE term of a temperature source's spectrum projection."""

TEMPERATURE_SOURCE = "t0"
"""The source whose projection weighs the TE term of a polarisation source's spectrum
projection (S_T0 carries most of Delta^T at the multipoles that TE weighs)."""


@dataclass(frozen=True)
class LineOfSightProjection:
    """How an error is projected along the line of sight (see ``training.learning.losses``)."""

    frequencies: tuple[float, ...] = (0.0,)
    """Frequencies along tau, in units of k (used when ``multipoles`` is empty)."""
    multipoles: tuple[int, ...] = ()
    """Multipoles of the Bessel-kernel projection (empty: fixed frequencies)."""
    k_max: float = 0.1
    """Largest k [1/Mpc] of the Bessel-kernel projection."""
    spectrum: bool = False
    """Bessel kernel only: project onto the relative C_l error (:func:`spectrum_weights`)."""
    te_weight: float = 0.0
    """Spectrum projection: weight of the TE errors, relative to sqrt(C_l^TT C_l^EE),
    beside the relative TT (or, with ``polarisation``, EE) errors (0: none)."""
    shift_weight: float = 0.0
    """Spectrum projection: weight of the posterior shift sum_p (M (r, t))_p^2 that the
    relative errors would cause (``training.evaluation.shift_matrix``; 0: none)."""
    shift_matrix: tuple[tuple[float, ...], ...] = ()
    """M: one row per parameter, one column per relative error (TT or EE, then TE)."""
    polarisation: bool = False
    """Spectrum projection of a polarisation source (S_T2): the E-mode kernel
    j_l(x) / x^2, relative EE errors in place of the TT ones, and TE errors
    against the temperature source's projection."""

    def __post_init__(self) -> None:
        if self.spectrum and not self.multipoles:
            raise ValueError("the spectrum projection needs multipoles (the Bessel kernel)")
        if self.polarisation and not self.spectrum:
            raise ValueError(
                "the polarisation projection is a spectrum projection (spectrum: true)"
            )
        if self.te_weight and not self.spectrum:
            raise ValueError("the TE term belongs to the spectrum projection (spectrum: true)")
        if self.shift_weight and not (self.spectrum and self.shift_matrix):
            raise ValueError("the shift term needs the spectrum projection and a shift matrix")
        if any(len(row) != self.rows for row in self.shift_matrix):
            raise ValueError(
                f"each shift-matrix row needs {self.rows} columns (the relative "
                f"{'EE' if self.polarisation else 'TT'} errors at {len(self.multipoles)} "
                f"multipoles{', then TE' if self.te_weight else ''})"
            )

    @property
    def partner_source(self) -> str:
        """The other source of TE: S_T0 for a polarisation projection, else S_T2."""
        return TEMPERATURE_SOURCE if self.polarisation else POLARISATION_SOURCE

    @property
    def rows(self) -> int:
        """Rows of :func:`spectrum_weights`: one per multipole, twice with the TE term."""
        return len(self.multipoles) * (2 if self.te_weight else 1)

    def k_count(self, k: np.ndarray) -> int:
        """How many of the (ascending) ``k`` the projection uses."""
        return int(np.searchsorted(k, self.k_max, side="right")) if self.multipoles else k.size


def trapezoid_weights(tau: np.ndarray) -> np.ndarray:
    """Weights of the trapezoid rule over the (ascending) slices ``tau``."""
    if tau.size < 2:
        return np.zeros_like(tau)
    edges = np.diff(tau) / 2.0
    return np.concatenate([edges, [0.0]]) + np.concatenate([[0.0], edges])


def bessel_table(multipoles: Sequence[int], k_max: float) -> np.ndarray:
    """j_l(x) for each multipole on x = 0, BESSEL_STEP, ... up to k_max LARGEST_DISTANCE."""
    return _bessel_table(tuple(int(ell) for ell in multipoles), float(k_max))


@functools.lru_cache(maxsize=4)
def _bessel_table(multipoles: tuple[int, ...], k_max: float) -> np.ndarray:
    """The cached table (the same few multipoles at every cosmology); read-only."""
    x = np.arange(0.0, k_max * LARGEST_DISTANCE + 2 * BESSEL_STEP, BESSEL_STEP)
    table = np.stack([spherical_jn(ell, x) for ell in multipoles]).astype(np.float32)
    table.flags.writeable = False
    return table


def _table_position(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Left table index and interpolation fraction of each x (NumPy)."""
    position = np.clip(x / BESSEL_STEP, 0.0, size - 1.000001)
    index = np.floor(position).astype(np.int64)
    return index, position - index


def bessel_projection(
    values: np.ndarray,
    line_of_sight: np.ndarray,
    k: np.ndarray,
    projection: LineOfSightProjection,
    inverse_x_squared: bool = False,
) -> np.ndarray:
    """B_l(k) = sum_r dtau_r values(r, k) j_l(k (tau_0 - tau_r)) for each multipole
    and each k <= k_max: shape (multipoles, used k).  With ``inverse_x_squared``
    the kernel is j_l(x) / x^2 (the E-mode kernel up to an l-dependent factor)."""
    used = projection.k_count(k)
    dtau, distance = line_of_sight[:, 1], line_of_sight[:, 2]
    table = bessel_table(projection.multipoles, projection.k_max)
    x = np.outer(distance, k[:used])
    index, fraction = _table_position(x, table.shape[1])
    weighted = values[:, :used] * dtau[:, None]
    if inverse_x_squared:
        # j_l(x) ~ x^l near x = 0, so the kernel vanishes there for l >= 2.
        weighted = weighted * np.where(x > 0.0, 1.0 / np.where(x > 0.0, x, 1.0) ** 2, 0.0)
    return np.stack(
        [
            np.sum(weighted * (row[index] * (1.0 - fraction) + row[index + 1] * fraction), axis=0)
            for row in table
        ]
    )


def spectrum_weights(
    source: np.ndarray,
    line_of_sight: np.ndarray,
    k: np.ndarray,
    projection: LineOfSightProjection,
    scale: np.ndarray,
    partner: np.ndarray | None = None,
) -> np.ndarray:
    """Weights v_l(k) that turn an error's projection into a relative C_l error.

    With Delta_l(k) the projection of the whole ``source`` (every tau slice of
    one cosmology, physical units) and C_l ~ sum_k dln k Delta_l^2 (n_s = 1,
    k <= k_max), a source error of ``scale`` times err changes C_l by

        dC_l / C_l = sum_k v_l(k) B_l[err](k),  v_l = 2 dln k Delta_l scale / C_l.

    Only this source's own part of Delta_l enters (for S_T0 at l < 200 the
    Sachs-Wolfe term, which dominates there).  Shape (multipoles, used k).
    With ``projection.polarisation`` the source is S_T2 (or S_P), projected
    with the E-mode kernel j_l(x) / x^2 (x = k (tau_0 - tau); the positive
    l-dependent factor cancels in the ratio), and C_l is C_l^EE.

    With ``projection.te_weight``, ``partner`` is the cosmology's other source
    of TE: S_P (or any multiple of it, such as S_T2) for a temperature source,
    S_T0 for a polarisation one.  Rows follow for the TE error of each
    multipole relative to sqrt(C_l^TT C_l^EE): dC_l^TE = sum_k dln k
    (Delta^E_l dDelta^T_l + Delta^T_l dDelta^E_l), Delta^E_l ~ int dtau S_P j_l(x)
    / x^2.  The scales of the sources cancel in the ratio, while the sign
    follows CLASS's TE, as the shift term needs (on test cosmologies these
    estimates of t0's TE errors follow CLASS's with the same sign,
    docs/experiments.md).  Shape (2 multipoles, used k).
    """
    used = projection.k_count(k)
    delta = bessel_projection(
        source, line_of_sight, k, projection, inverse_x_squared=projection.polarisation
    )
    dlnk = trapezoid_weights(np.log(k[:used]))
    power = np.sum(dlnk * delta**2, axis=1, keepdims=True)
    # A multipole the source does not reach (no power at k <= k_max) weighs nothing.
    power = np.where(power > 0.0, power, np.inf)
    weights = 2.0 * dlnk * delta * scale[:used] / power
    if not projection.te_weight:
        return weights
    if partner is None:
        needed = "temperature" if projection.polarisation else "polarisation"
        raise ValueError(f"the TE term of the spectrum projection needs the {needed} source")
    delta_partner = bessel_projection(
        partner, line_of_sight, k, projection, inverse_x_squared=not projection.polarisation
    )
    power_partner = np.sum(dlnk * delta_partner**2, axis=1, keepdims=True)
    power_partner = np.where(power_partner > 0.0, power_partner, np.inf)
    te = dlnk * delta_partner * scale[:used] / np.sqrt(power * power_partner)
    return np.concatenate([weights, te])


def relative_errors(
    projected: np.ndarray, weights: np.ndarray, projection: LineOfSightProjection
) -> tuple[np.ndarray, np.ndarray]:
    """Relative TT (EE for a polarisation projection) errors and (with the TE term,
    else empty) TE errors per multipole."""
    n = len(projection.multipoles)
    tt = np.sum(weights[:n] * projected, axis=1)
    te = np.sum(weights[n:] * projected, axis=1) if projection.te_weight else np.zeros(0)
    return tt, te


def projected_error(
    error: np.ndarray,
    line_of_sight: np.ndarray,
    k: np.ndarray,
    projection: LineOfSightProjection,
    weights: np.ndarray | None = None,
) -> float:
    """The projected error of one cosmology's error (slices x k), NumPy.

    ``line_of_sight`` has the columns tau, dtau and tau_0 - tau of the slices.
    With the Bessel kernel and ``weights`` (:func:`spectrum_weights`): the sum
    over the multipoles of the squared relative C_l errors.
    """
    tau, dtau = line_of_sight[:, 0], line_of_sight[:, 1]
    total = 0.0
    if not projection.multipoles:
        weighted = error * dtau[:, None]
        for fraction in projection.frequencies:
            phase = np.exp(1j * fraction * np.outer(tau, k))
            total += float(np.mean(np.abs(np.sum(weighted * phase, axis=0)) ** 2))
        return total
    projected = bessel_projection(
        error, line_of_sight, k, projection, inverse_x_squared=projection.polarisation
    )
    if weights is not None:
        tt, te = relative_errors(projected, weights, projection)
        total = np.sum(tt**2) + projection.te_weight * np.sum(te**2)
        if projection.shift_weight:
            shift = np.asarray(projection.shift_matrix) @ np.concatenate([tt, te])
            total += projection.shift_weight * np.sum(shift**2)
        return float(total)
    return float(np.sum(np.mean(projected**2, axis=1)))
