"""Network inputs (CosmicNet I, Table 1 and eq. 2.11) from a classy object.

This is the one place where network inputs are computed: data generation
stores what :func:`compute_features` returns, and the inference-time network
provider calls the same function on the live object, so the two cannot drift.

Units: conformal times and lengths in Mpc, wavenumbers in 1/Mpc, ``g`` in
1/Mpc and ``g_prime`` (dg/dtau) in 1/Mpc^2.  All quantities are CLASS's:

* ``g``, ``e_kappa``: CLASS's visibility function and exp(-kappa), from its
  thermodynamics table (the values of ``get_thermodynamics()``, read through
  the bridge); ``g_prime`` is the derivative of the cubic spline
  of that table's ``g`` in conformal time (CLASS does not output g').
* ``r_s``: the comoving photon-baryon sound horizon ``comov.snd.hrz.`` of
  ``get_background()``.
* ``k_D``: the damping wavenumber ``2 pi / r_d``, where ``r_d`` is CLASS's
  comoving photon damping scale (thermodynamics column ``r_d``).  CLASS
  computes ``r_d = 2 pi [ (1/6) int dtau (R^2 + 16/15 (1+R)) / (kappa' (1+R)^2) ]^(1/2)``,
  i.e. exactly ``2 pi / k_D`` with ``k_D`` of the paper's eq. 2.7, so
  ``exp(-(k/k_D)^2)`` is the paper's damping envelope.  The column exists only
  when CLASS runs with ``compute damping scale: yes``.

Scalars (``SCALAR_NAMES``): ``tau_rec`` and ``conf_time_reio`` (conformal time
at recombination and reionization), ``rs_rec``/``ds_rec`` (comoving/physical
sound horizon at recombination), ``ra_rec``/``da_rec`` (comoving/physical
angular diameter distance to recombination), all from classy's
``get_current_derived_parameters``; ``rd_rec`` is CLASS's comoving damping
scale ``r_d`` splined in conformal time at ``tau_rec``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.hook.bridge import output_table

logger = logging.getLogger(__name__)

SCALAR_NAMES: tuple[str, ...] = (
    "tau_rec",
    "conf_time_reio",
    "rs_rec",
    "ds_rec",
    "ra_rec",
    "da_rec",
    "rd_rec",
)
"""Characteristic times and scales at recombination and reionization [Mpc]."""

TIME_NAMES: tuple[str, ...] = ("g", "g_prime", "e_kappa", "r_s", "k_D")
"""Functions of conformal time given on the source tau sampling."""

BASIS_NAMES: tuple[str, ...] = ("cos_in", "sin_in", "damping")
"""The k-dependent approximations returned by :func:`k_bases`."""

STEP_CENTRE_IN_TAU_REC = 4.0
"""The step of eq. 2.11c is centred at this multiple of tau_rec."""
STEP_WIDTH_MPC = 100.0
"""Width of the tanh step of eq. 2.11c [Mpc]."""
STEP_NEGLIGIBLE = 1e-7
"""Below this step weight the Bessel terms (at most 1 after rescaling) are left out:
they would change the bases by less than float32 resolves."""
J1_PEAK = 0.4361818172714585
"""Maximum of the spherical Bessel function j1 (at x = 2.08158)."""
J2_PEAK = 0.3067918120350715
"""Maximum of the spherical Bessel function j2 (at x = 3.34209)."""

_DERIVED_SCALARS = ("tau_rec", "conf_time_reio", "rs_rec", "ds_rec", "ra_rec", "da_rec")
_TAU_COLUMN = "conf. time [Mpc]"


class FeatureError(ValueError):
    """The classy object cannot provide the network inputs."""


@dataclass(frozen=True)
class CosmologyFeatures:
    """Network inputs of one cosmology, see the module docstring for units."""

    params: dict[str, float]
    scalars: dict[str, float]
    tau: np.ndarray
    time: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        # Network rows and k bases take consecutive tau slices as one slice.
        if np.ndim(self.tau) != 1 or np.any(np.diff(self.tau) <= 0.0):
            raise FeatureError("the tau slices must be a 1-d array in increasing order")

    def rows(self, mask: np.ndarray | slice) -> CosmologyFeatures:
        """The same cosmology restricted to the tau slices ``mask`` selects."""
        return CosmologyFeatures(
            params=self.params,
            scalars=self.scalars,
            tau=self.tau[mask],
            time={name: values[mask] for name, values in self.time.items()},
        )


def _ascending(table: Mapping[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns of a CLASS table ordered by increasing conformal time, duplicates removed."""
    tau = np.asarray(table[_TAU_COLUMN], dtype=np.float64)
    order = np.argsort(tau, kind="stable")
    tau = tau[order]
    keep = np.concatenate(([True], np.diff(tau) > 0.0))
    columns = {name: np.asarray(table[name], dtype=np.float64)[order][keep] for name in names}
    columns[_TAU_COLUMN] = tau[keep]
    return columns


def _check_range(tau: np.ndarray, table_tau: np.ndarray, what: str) -> None:
    if tau[0] < table_tau[0] or tau[-1] > table_tau[-1]:
        raise FeatureError(
            f"tau range [{tau[0]:.6g}, {tau[-1]:.6g}] Mpc exceeds CLASS's {what} table "
            f"[{table_tau[0]:.6g}, {table_tau[-1]:.6g}] Mpc"
        )


def compute_features(cosmo: Any, tau: np.ndarray, params: Mapping[str, float]) -> CosmologyFeatures:
    """Network inputs of a classy object computed at least up to thermodynamics.

    ``tau`` [Mpc] is the conformal-time sampling of the sources (increasing);
    ``params`` are the varied parameters, stored as given.
    """
    tau = np.asarray(tau, dtype=np.float64)
    if tau.ndim != 1 or tau.size < 2 or np.any(np.diff(tau) <= 0.0):
        raise FeatureError("tau must be a strictly increasing 1-d array")
    thermo_raw = output_table(cosmo, "thermodynamics")
    if "r_d" not in thermo_raw:
        raise FeatureError(
            "CLASS did not compute the damping scale r_d: run it with "
            "'compute damping scale': 'yes' (network inputs need k_D)"
        )
    thermo = _ascending(thermo_raw, ("g [Mpc^-1]", "exp(-kappa)", "r_d"))
    _check_range(tau, thermo[_TAU_COLUMN], "thermodynamics")
    stacked = np.stack([thermo["g [Mpc^-1]"], thermo["exp(-kappa)"], thermo["r_d"]], axis=1)
    thermo_spline = CubicSpline(thermo[_TAU_COLUMN], stacked, axis=0)
    g, e_kappa, r_d = thermo_spline(tau).T
    g_prime = thermo_spline(tau, 1)[:, 0]

    background = _ascending(output_table(cosmo, "background"), ("comov.snd.hrz.",))
    _check_range(tau, background[_TAU_COLUMN], "background")
    r_s = CubicSpline(background[_TAU_COLUMN], background["comov.snd.hrz."])(tau)

    derived = cosmo.get_current_derived_parameters(list(_DERIVED_SCALARS))
    scalars = {name: float(derived[name]) for name in _DERIVED_SCALARS}
    scalars["rd_rec"] = float(thermo_spline(scalars["tau_rec"])[2])
    time = {
        "g": g,
        "g_prime": g_prime,
        "e_kappa": e_kappa,
        "r_s": r_s,
        "k_D": 2.0 * np.pi / r_d,
    }
    return CosmologyFeatures(
        params={name: float(value) for name, value in params.items()},
        scalars={name: scalars[name] for name in SCALAR_NAMES},
        tau=tau.copy(),
        time={name: np.ascontiguousarray(time[name]) for name in TIME_NAMES},
    )


def _bessel_j1_j2(x: np.ndarray, sin_x: np.ndarray, cos_x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Spherical Bessel j1, j2 from precomputed sin and cos (series near 0)."""
    small = np.abs(x) < 0.2
    safe = np.where(small, 1.0, x)
    inv = 1.0 / safe
    j1 = (sin_x * inv - cos_x) * inv
    j2 = ((3.0 * inv * inv - 1.0) * sin_x - 3.0 * cos_x * inv) * inv
    if np.any(small):
        xs = x[small]
        x2 = xs * xs
        j1[small] = xs / 3.0 * (1.0 - x2 / 10.0 * (1.0 - x2 / 28.0 * (1.0 - x2 / 54.0)))
        j2[small] = x2 / 15.0 * (1.0 - x2 / 14.0 * (1.0 - x2 / 36.0 * (1.0 - x2 / 66.0)))
    return j1, j2


def _sin_cos_float32(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos in float32 after an exact float64 reduction to [-pi, pi].

    The float32 functions are vectorised and about ten times faster than the
    float64 ones; reducing first keeps the error at float32 resolution (~1e-7)
    for arguments of thousands of radians.
    """
    turns = np.rint(x * (0.5 / np.pi))
    reduced = (x - turns * (2.0 * np.pi)).astype(np.float32)
    return np.sin(reduced), np.cos(reduced)


def k_bases(features: CosmologyFeatures, k: np.ndarray) -> dict[str, np.ndarray]:
    """The k-dependent inputs of eq. 2.11 on (tau, k), float32 of shape (n_tau, n_k).

    ``cos_in``/``sin_in`` switch with a tanh step centred at 4 tau_rec (width
    100 Mpc) from cos/sin(k r_s(tau)) to j1/j2(k [tau - tau_rec]) rescaled to
    peak 1; ``damping`` is exp(-(k / k_D(tau))^2).  The networks read float32,
    so the bases are float32 and only the terms that matter are evaluated:
    cos/sin(k r_s) where the step is below 1, the Bessel terms where it is
    at least :data:`STEP_NEGLIGIBLE`.  Every value is within 3e-7 of the float64
    formula.
    """
    k = np.asarray(k, dtype=np.float64)[np.newaxis, :]
    tau = features.tau
    tau_rec = features.scalars["tau_rec"]
    step = 0.5 * (np.tanh((tau - STEP_CENTRE_IN_TAU_REC * tau_rec) / STEP_WIDTH_MPC) + 1.0)
    shape = (tau.size, k.size)
    cos_in = np.zeros(shape, dtype=np.float32)
    sin_in = np.zeros(shape, dtype=np.float32)
    # tau increases (CosmologyFeatures), so the step does: the sound-horizon rows
    # come first, the Bessel rows last.
    acoustic = slice(0, int(np.searchsorted(step, 1.0)))
    bessel = slice(int(np.searchsorted(step, STEP_NEGLIGIBLE)), tau.size)
    if acoustic.stop > 0:
        sin_kr, cos_kr = _sin_cos_float32(features.time["r_s"][acoustic, np.newaxis] * k)
        weight = (1.0 - step[acoustic, np.newaxis]).astype(np.float32)
        np.multiply(weight, cos_kr, out=cos_in[acoustic])
        np.multiply(weight, sin_kr, out=sin_in[acoustic])
    if bessel.start < tau.size:
        # float64: j1 and j2 cancel between their terms at small x.
        x = (tau[bessel, np.newaxis] - tau_rec) * k
        j1, j2 = _bessel_j1_j2(x, np.sin(x), np.cos(x))
        weight = step[bessel, np.newaxis]
        cos_in[bessel] += weight * (1.0 / J1_PEAK) * j1
        sin_in[bessel] += weight * (1.0 / J2_PEAK) * j2
    exponent = np.square(k / features.time["k_D"][:, np.newaxis]).astype(np.float32)
    damping = np.exp(-exponent)
    return {"cos_in": cos_in, "sin_in": sin_in, "damping": damping}
