"""Recombination-era sources do not depend on H0 at fixed physical densities.

In a flat universe whose dark energy is a cosmological constant, H0 enters
the expansion only through omega_Lambda = h^2 - sum(omega_i): with omega_b,
omega_cdm, the radiation and the neutrinos fixed,
H'(z)^2 = H(z)^2 + (100 km/s/Mpc / c)^2 (h'^2 - h^2) exactly.  At z of
several hundred Lambda's share of H^2 is below 1e-7, so every CMB source at
tau < 3 tau_rec (tau, k in Mpc units) is the same for any H0: full CLASS
follows this to the accuracy of its k sampling.

The network inputs that do change with H0 are H0 itself and three
late-time intervals: ``ra_rec`` (tau_0 - tau_rec), ``da_rec`` = ra_rec /
(1 + z_rec) and ``conf_time_reio`` (tau at z_reio).  With
D(z) = int_z^inf [1/H'(z) - 1/H(z)] dz, the conformal time at redshift z
moves by D(z), so ra_rec moves by D(0) - D(z_rec) and conf_time_reio by
D(z_reio).  D is computed from the flat-LCDM H(z) of the set's densities
(massive neutrinos counted as matter, where D is made): it reproduces the
intervals CLASS gives at another H0 to a few millionths of their change
(4e-4 Mpc of a 163 Mpc move of ra_rec, 4e-3 Mpc of conf_time_reio), far
below what moves the networks.  A network can therefore be evaluated as if H0 had a
reference value, and its errors differ from one reference to the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures

H0 = "H0"
DENSITIES = ("omega_b", "omega_cdm")
"""Parameters of the set that must be varied (and physical) for the symmetry."""
C_KM_S = 299792.458
OMEGA_GAMMA_PER_T4 = 2.4728e-5 / 2.7255**4
"""omega_gamma per T_cmb^4 [K^-4] (omega_gamma = 2.4728e-5 at 2.7255 K)."""
NEUTRINO_RATIO = 7.0 / 8.0 * (4.0 / 11.0) ** (4.0 / 3.0)
"""Energy density of one massless neutrino species over the photons'."""
EV_PER_OMEGA_NU = 93.14
"""Neutrino mass [eV] per unit of omega_nu once non-relativistic."""
CLASS_DEFAULTS = {"T_cmb": 2.7255, "N_ur": 3.044, "N_ncdm": 0, "m_ncdm": 0.0}
EXPANSION_KEYS = (
    "Omega_k",
    "omega_k",
    "Omega_Lambda",
    "Omega_fld",
    "w0_fld",
    "wa_fld",
    "Omega_scf",
    "Omega_dcdmdr",
    "omega_dcdmdr",
    "Omega_idm",
    "omega_idm",
    "Omega_ur",
    "omega_ur",
    "Omega_m",
)
"""CLASS settings that change the late-time expansion beyond a cosmological constant."""
_LOG_ONE_PLUS_Z = np.linspace(0.0, np.log(1.0e5), 2048)
"""Grid of ln(1 + z) for D(z); above z = 1e5 the integrand is below 1e-15 Mpc."""
_ONE_PLUS_Z = np.exp(_LOG_ONE_PLUS_Z)


@dataclass(frozen=True)
class FlatLambdaExpansion:
    """What H(z) needs beyond a cosmology's own omega_b, omega_cdm and H0."""

    t_cmb: float
    n_ur: float
    neutrino_mass_ev: float

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], param_names: tuple[str, ...]
    ) -> FlatLambdaExpansion:
        """The expansion of a network set, from its fixed CLASS settings and parameters.

        Raises ``ValueError`` naming the setting or parameter where H0 does not enter
        the expansion only through a cosmological constant.
        """
        missing = [name for name in (*DENSITIES, H0) if name not in param_names]
        if missing:
            raise ValueError(
                f"H0 references need the varied parameters {(*DENSITIES, H0)}; "
                f"the set lacks {missing}"
            )
        breaking = [key for key in (*settings, *param_names) if key in EXPANSION_KEYS]
        if breaking:
            raise ValueError(
                f"H0 references assume a flat universe with a cosmological constant; "
                f"{breaking} change that: remove the H0 references"
            )
        varied = [name for name in ("T_cmb", "N_ur", "N_ncdm", "m_ncdm") if name in param_names]
        if varied:
            raise ValueError(f"H0 references need {varied} fixed, not varied parameters")
        values = {
            **CLASS_DEFAULTS,
            **{key: settings[key] for key in CLASS_DEFAULTS if key in settings},
        }
        neutrino_mass = _total_mass(values["m_ncdm"]) if int(values["N_ncdm"]) > 0 else 0.0
        return cls(
            t_cmb=float(values["T_cmb"]),
            n_ur=float(values["N_ur"]),
            neutrino_mass_ev=neutrino_mass,
        )

    @property
    def omega_radiation(self) -> float:
        """Photons and massless neutrinos, omega_r."""
        return OMEGA_GAMMA_PER_T4 * self.t_cmb**4 * (1.0 + NEUTRINO_RATIO * self.n_ur)

    def hubble(self, params: Mapping[str, float], h0: float, one_plus_z: np.ndarray) -> np.ndarray:
        """H(z) [1/Mpc] of a flat LCDM with ``params``' densities and Hubble constant ``h0``."""
        omega_r = self.omega_radiation
        omega_m = params["omega_b"] + params["omega_cdm"] + self.neutrino_mass_ev / EV_PER_OMEGA_NU
        omega_lambda = (h0 / 100.0) ** 2 - omega_m - omega_r
        density = omega_m * one_plus_z**3 + omega_r * one_plus_z**4 + omega_lambda
        return 100.0 / C_KM_S * np.sqrt(density)

    def time_shift(
        self, params: Mapping[str, float], h0: float, redshifts: np.ndarray
    ) -> np.ndarray:
        """D(z) [Mpc]: how the conformal time at each redshift moves when H0 becomes ``h0``."""
        one_plus_z = _ONE_PLUS_Z  # dz = (1 + z) d ln(1 + z)
        own = self.hubble(params, params[H0], one_plus_z)
        other = self.hubble(params, h0, one_plus_z)
        from_above = _integral_from_above((1.0 / other - 1.0 / own) * one_plus_z)
        return np.interp(np.log1p(redshifts), _LOG_ONE_PLUS_Z, from_above)

    def redshift_at(self, params: Mapping[str, float], tau: float) -> float:
        """The redshift at which the conformal time is ``tau`` [Mpc] (late times, z < 1e5)."""
        one_plus_z = _ONE_PLUS_Z
        # The conformal time above z = 1e5 (radiation era) is 1 / (sqrt(omega_r) 100/c (1+z)).
        top = C_KM_S / (100.0 * np.sqrt(self.omega_radiation) * one_plus_z[-1])
        conformal = top + _integral_from_above(
            one_plus_z / self.hubble(params, params[H0], one_plus_z)
        )
        # conformal time falls with z: interpolate on the reversed arrays.
        return float(np.expm1(np.interp(tau, conformal[::-1], _LOG_ONE_PLUS_Z[::-1])))


def _integral_from_above(integrand: np.ndarray) -> np.ndarray:
    """Trapezoid integral of ``integrand`` d ln(1 + z) from each grid point to the top."""
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(_LOG_ONE_PLUS_Z)
    return np.concatenate((np.cumsum(steps[::-1])[::-1], [0.0]))


def _total_mass(m_ncdm: Any) -> float:
    """Sum of CLASS's ``m_ncdm`` [eV], given as a number, a list or "m1,m2,..."."""
    if isinstance(m_ncdm, str):
        return sum(float(mass) for mass in m_ncdm.split(","))
    return float(np.sum(m_ncdm))


def at_hubble(
    features: CosmologyFeatures, reference: float, expansion: FlatLambdaExpansion
) -> CosmologyFeatures:
    """The features as at Hubble constant ``reference`` (the sources are unchanged)."""
    params = features.params
    scalars = dict(features.scalars)
    z_rec = scalars["ra_rec"] / scalars["da_rec"] - 1.0
    z_reio = expansion.redshift_at(params, scalars["conf_time_reio"])
    today, recombination, reionization = expansion.time_shift(
        params, reference, np.array([0.0, z_rec, z_reio])
    )
    scalars["ra_rec"] += today - recombination
    scalars["da_rec"] = scalars["ra_rec"] / (1.0 + z_rec)
    scalars["conf_time_reio"] += reionization
    return CosmologyFeatures(
        params={**params, H0: float(reference)},
        scalars=scalars,
        tau=features.tau,
        time=features.time,
    )
