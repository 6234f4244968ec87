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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.hook.bridge import output_table

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

SPLINE_MARGIN_ROWS = 40
"""Table rows splined beyond the needed tau range on either side (0.27^40 ~ 1e-23)."""

_DERIVED_SCALARS = ("tau_rec", "conf_time_reio", "rs_rec", "ds_rec", "ra_rec", "da_rec")
_TAU_COLUMN = "conf. time [Mpc]"


class FeatureError(CosmicNetError, ValueError):
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


def _near(columns: dict[str, np.ndarray], low: float, high: float) -> dict[str, np.ndarray]:
    """The rows of ascending table ``columns`` within [low, high] Mpc, plus a margin.

    A cubic spline's value depends on far knots only through factors that fall
    by about 0.27 per knot, so :data:`SPLINE_MARGIN_ROWS` rows beyond the range
    leave the spline there unchanged to double precision, and splining only
    these rows (a quarter of CLASS's tables) saves most of the time.
    """
    tau = columns[_TAU_COLUMN]
    first = max(int(np.searchsorted(tau, low, side="right")) - 1 - SPLINE_MARGIN_ROWS, 0)
    last = min(int(np.searchsorted(tau, high, side="left")) + 1 + SPLINE_MARGIN_ROWS, tau.size)
    return {name: values[first:last] for name, values in columns.items()}


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
    derived = cosmo.get_current_derived_parameters(list(_DERIVED_SCALARS))
    scalars = {name: float(derived[name]) for name in _DERIVED_SCALARS}
    low, high = min(tau[0], scalars["tau_rec"]), max(tau[-1], scalars["tau_rec"])

    thermo = _ascending(thermo_raw, ("g [Mpc^-1]", "exp(-kappa)", "r_d"))
    _check_range(tau, thermo[_TAU_COLUMN], "thermodynamics")
    thermo = _near(thermo, low, high)
    stacked = np.stack([thermo["g [Mpc^-1]"], thermo["exp(-kappa)"], thermo["r_d"]], axis=1)
    thermo_spline = CubicSpline(thermo[_TAU_COLUMN], stacked, axis=0)
    g, e_kappa, r_d = thermo_spline(tau).T
    g_prime = thermo_spline(tau, 1)[:, 0]
    scalars["rd_rec"] = float(thermo_spline(scalars["tau_rec"])[2])

    background = _ascending(output_table(cosmo, "background"), ("comov.snd.hrz.",))
    _check_range(tau, background[_TAU_COLUMN], "background")
    background = _near(background, low, high)
    r_s = CubicSpline(background[_TAU_COLUMN], background["comov.snd.hrz."])(tau)
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
    """Spherical Bessel j1, j2 from precomputed sin and cos (series near 0).

    Overwrites ``cos_x``; the arithmetic runs in place (fewer fresh arrays).
    """
    small = np.abs(x) < 0.2
    inv = np.where(small, 1.0, x)
    np.divide(1.0, inv, out=inv)
    j1 = sin_x * inv  # j1 = (sin x / x - cos x) / x
    j1 -= cos_x
    j1 *= inv
    j2 = 3.0 * inv  # j2 = ((3 / x^2 - 1) sin x - 3 cos x / x) / x
    j2 *= inv
    j2 -= 1.0
    j2 *= sin_x
    cos_x *= 3.0
    cos_x *= inv
    j2 -= cos_x
    j2 *= inv
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
    turns = x * (0.5 / np.pi)  # in place from here: fewer fresh arrays
    np.rint(turns, out=turns)
    turns *= 2.0 * np.pi
    np.subtract(x, turns, out=turns)
    reduced = turns.astype(np.float32)
    return np.sin(reduced), np.cos(reduced)


class KBases(Mapping[str, np.ndarray]):
    """The k bases of one cosmology, stored as one float32 array (n_tau, n_k, n_bases).

    A read-only mapping ``name -> (n_tau, n_k)`` view, as the networks' ``k``
    input wants them stacked along the last axis: :meth:`stacked` of the full
    basis set, and :meth:`rows` of consecutive tau slices, are views, so the
    networks of a cosmology share one array instead of stacking a copy each.
    """

    def __init__(self, names: tuple[str, ...], array: np.ndarray) -> None:
        if array.ndim != 3 or array.shape[2] != len(names):
            raise ValueError(f"k bases of shape {array.shape} for the names {names}")
        self.names = tuple(names)
        self.array = array
        """(n_tau, n_k, n_bases) float32, the bases along the last axis."""

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(f"no k basis {name!r} (there are {self.names})")
        return self.array[:, :, self.names.index(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, rows: slice) -> KBases:
        """The bases of the tau slices ``rows`` (a view)."""
        return KBases(self.names, self.array[rows])

    def stacked(self, names: Sequence[str]) -> np.ndarray:
        """(n_tau, n_k, len(names)) float32: a view when ``names`` are all, in order."""
        if tuple(names) == self.names:
            return self.array
        return np.ascontiguousarray(self.array[:, :, [self.names.index(n) for n in names]])


def k_bases(features: CosmologyFeatures, k: np.ndarray) -> KBases:
    """The k-dependent inputs of eq. 2.11 on (tau, k), float32 of shape (n_tau, n_k).

    ``cos_in``/``sin_in`` switch with a tanh step centred at 4 tau_rec (width
    100 Mpc) from cos/sin(k r_s(tau)) to j1/j2(k [tau - tau_rec]) rescaled to
    peak 1; ``damping`` is exp(-(k / k_D(tau))^2).  The networks read float32,
    so the bases are float32 and only the terms that matter are evaluated:
    cos/sin(k r_s) where the step is below 1, the Bessel terms where it is
    at least :data:`STEP_NEGLIGIBLE`.  Every value is within 3e-7 of the float64
    formula.  Returned as :class:`KBases` in the order of :data:`BASIS_NAMES`.
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
        j1 *= weight * (1.0 / J1_PEAK)
        j2 *= weight * (1.0 / J2_PEAK)
        cos_in[bessel] += j1
        sin_in[bessel] += j2
    ratio = k / features.time["k_D"][:, np.newaxis]
    np.square(ratio, out=ratio)
    damping = ratio.astype(np.float32)
    np.negative(damping, out=damping)
    np.exp(damping, out=damping)
    # One stacked copy, shared by every network's k input (computing into the
    # stacked array's strided views directly is twice as slow).
    return KBases(BASIS_NAMES, np.stack((cos_in, sin_in, damping), axis=2))
