"""Network inputs (paper Table 1) assembled from a cosmology's features.

The single function :func:`assemble_inputs` serves both training and inference,
so the two cannot drift apart.  Inputs of one network are four arrays, one row
per tau slice:

``time``   (n_tau, n_time): g / mean g_max, g' / mean g'_max, e^-kappa,
           log10 tau, log10 tau_rec, log10 tau_reio, and (log10 of g / mean
           g_max, clipped at 1e-10, + 5) / 5, which resolves the reionization
           peak of g for late-time networks (each network picks some)
``params`` (n_tau, n_params): standardised cosmological parameters
``scales`` (n_tau, n_scales): standardised characteristic scales
``k``      (n_tau, n_k, n_bases): cos_in, sin_in, exp(-(k/k_D)^2) (eq. 2.11)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosmicnet_cobaya.features import KBases
from cosmicnet_cobaya.networks.normalisation import InputNormalisation, Standardiser

if TYPE_CHECKING:
    from cosmicnet_cobaya.features import CosmologyFeatures

TIME_INPUTS = (
    "g",
    "g_prime",
    "e_kappa",
    "log10_tau",
    "log10_tau_rec",
    "log10_tau_reio",
    "log10_g",
)
LOG10_G_FLOOR = 1e-10
"""log10_g clips g / mean g_max below this value."""
K_BASES = ("cos_in", "sin_in", "damping")
SCALE_NAMES = ("rs_rec", "ds_rec", "ra_rec", "da_rec", "rd_rec")
"""Characteristic scales of the scales branch; tau_rec and tau_reio enter as times."""
INPUT_GROUPS = ("time", "params", "scales", "k")


@dataclass(frozen=True)
class InputSpec:
    """Which inputs one network takes."""

    time: tuple[str, ...]
    params: bool = True
    scales: bool = True
    k_bases: tuple[str, ...] = K_BASES

    def __post_init__(self) -> None:
        unknown = [name for name in self.time if name not in TIME_INPUTS]
        unknown += [name for name in self.k_bases if name not in K_BASES]
        if unknown:
            raise ValueError(
                f"unknown network inputs {unknown}: time inputs are {TIME_INPUTS}, "
                f"k-dependent bases {K_BASES}"
            )

    def groups(self) -> tuple[str, ...]:
        """The input groups the network has, in a fixed order."""
        present = {
            "time": bool(self.time),
            "params": self.params,
            "scales": self.scales,
            "k": bool(self.k_bases),
        }
        return tuple(group for group in INPUT_GROUPS if present[group])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "time": list(self.time),
            "params": self.params,
            "scales": self.scales,
            "k_bases": list(self.k_bases),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            time=tuple(data["time"]),
            params=bool(data["params"]),
            scales=bool(data["scales"]),
            k_bases=tuple(data["k_bases"]),
        )


def _peak(values: np.ndarray) -> float:
    return float(np.max(np.abs(values)))


def fit_input_normalisation(
    features: Sequence[CosmologyFeatures], param_names: Sequence[str]
) -> InputNormalisation:
    """Coefficients of the scalar inputs over a training set (eq. 2.12)."""
    if not features:
        raise ValueError("cannot fit input normalisation on an empty set")
    return InputNormalisation(
        params=Standardiser.fit(param_names, [item.params for item in features]),
        scales=Standardiser.fit(SCALE_NAMES, [item.scalars for item in features]),
        g_max_mean=float(np.mean([_peak(item.time["g"]) for item in features])),
        g_prime_max_mean=float(np.mean([_peak(item.time["g_prime"]) for item in features])),
    )


def time_inputs(features: CosmologyFeatures, norm: InputNormalisation) -> dict[str, np.ndarray]:
    """Every time input of Table 1 as an (n_tau,) array."""
    n_tau = features.tau.size
    g_scaled = features.time["g"] / norm.g_max_mean
    return {
        "g": g_scaled,
        "g_prime": features.time["g_prime"] / norm.g_prime_max_mean,
        "e_kappa": features.time["e_kappa"],
        "log10_tau": np.log10(features.tau),
        "log10_tau_rec": np.full(n_tau, np.log10(features.scalars["tau_rec"])),
        "log10_tau_reio": np.full(n_tau, np.log10(features.scalars["conf_time_reio"])),
        "log10_g": (np.log10(np.maximum(np.abs(g_scaled), LOG10_G_FLOOR)) + 5.0) / 5.0,
    }


def assemble_inputs(
    features: CosmologyFeatures,
    spec: InputSpec,
    norm: InputNormalisation,
    bases: KBases,
) -> dict[str, np.ndarray]:
    """The float32 input arrays of one network for every tau slice of a cosmology.

    ``bases`` is ``features.k_bases(features, k)`` on the network set's k grid,
    computed once per cosmology and shared by all networks: the networks read its
    stacked array without a copy.
    """
    n_tau = features.tau.size
    inputs: dict[str, np.ndarray] = {}
    if spec.time:
        available = time_inputs(features, norm)
        inputs["time"] = np.stack([available[name] for name in spec.time], axis=1)
    if spec.params:
        row = norm.params.apply(features.params)
        inputs["params"] = np.broadcast_to(row, (n_tau, row.size))
    if spec.scales:
        row = norm.scales.apply(features.scalars)
        inputs["scales"] = np.broadcast_to(row, (n_tau, row.size))
    if spec.k_bases:
        inputs["k"] = bases.stacked(spec.k_bases)
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in inputs.items()}
