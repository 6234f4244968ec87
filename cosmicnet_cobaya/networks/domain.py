"""The training domain of a network set, checked on every evaluation.

A point is inside the domain when every varied parameter lies in its trained
range, every fixed CLASS setting the networks were trained with (neutrino
masses and number, N_ur, ...) has the trained value, and no other setting that
changes the source functions is present.  Settings that act after the
perturbation step (primordial spectrum, outputs, non-linear corrections,
lensing, precision of later modules) do not matter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AFTER_PERTURBATIONS = frozenset(
    {
        # outputs and what the networks must cover is checked separately (k range, sources)
        "output", "modes", "lensing", "l_max_scalars", "l_max_lss", "non_linear", "non linear",
        "hmcode_version", "hmcode_min_k_max", "halofit_min_k_max", "P_k_max_1/Mpc",
        "P_k_max_h/Mpc", "z_max_pk", "z_pk", "compute damping scale", "format", "write warnings",
        "input_verbose", "background_verbose", "thermodynamics_verbose",
        "perturbations_verbose", "transfer_verbose", "primordial_verbose", "harmonic_verbose",
        "fourier_verbose", "lensing_verbose", "output_verbose", "accurate_lensing",
        "delta_l_max", "l_switch_limber", "num_mu_minus_lmax",
        # primordial spectrum: the sources do not depend on it
        "A_s", "ln10^{10}A_s", "ln_A_s_1e10", "logA", "n_s", "alpha_s", "beta_s", "k_pivot",
        "P_k_ini type", "n_t", "alpha_t", "r", "ic",
        # halofit / hmcode parameters
        "eta_0", "c_min", "feedback model", "log10T_heat_hmcode",
    }
)  # fmt: skip


ALTERNATIVE_PARAMETERISATIONS = frozenset(
    {"h", "100*theta_s", "theta_s_100", "100*theta_star", "z_reio", "Omega_b", "Omega_cdm",
     "omega_m", "Omega_m", "Omega_Lambda"}
)  # fmt: skip
"""Settings that fix the varied parameters another way: their values are checked
through the derived varied parameters instead."""


@dataclass(frozen=True)
class LinearConstraint:
    """A bound on a linear combination of varied parameters, e.g. w0_fld + wa_fld <= -0.1."""

    coefficients: tuple[tuple[str, float], ...]
    low: float | None = None
    high: float | None = None

    def value(self, params: Mapping[str, Any]) -> Any:
        """The combination at ``params`` (numbers, or NumPy columns of many points)."""
        return sum(weight * params[name] for name, weight in self.coefficients)

    def holds(self, params: Mapping[str, Any]) -> Any:
        """Whether ``params`` meet the bounds (a boolean array for NumPy columns)."""
        value = self.value(params)
        above = True if self.low is None else value >= self.low
        below = True if self.high is None else value <= self.high
        return above & below

    def describe(self) -> str:
        """E.g. ``1*w0_fld + 1*wa_fld``."""
        return " + ".join(f"{weight:g}*{name}" for name, weight in self.coefficients)

    def violation(self, params: Mapping[str, float]) -> str | None:
        """Why ``params`` breaks the constraint, or None."""
        if any(name not in params for name, _ in self.coefficients):
            return f"{self.describe()} cannot be checked (a parameter is missing)"
        if self.holds(params):
            return None
        return f"{self.describe()} = {self.value(params):.6g} outside [{self.low}, {self.high}]"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (metadata)."""
        return {"coefficients": dict(self.coefficients), "min": self.low, "max": self.high}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearConstraint:
        """Inverse of :meth:`to_dict`."""
        coefficients = tuple((str(k), float(v)) for k, v in data["coefficients"].items())
        low, high = data.get("min"), data.get("max")
        return cls(
            coefficients, None if low is None else float(low), None if high is None else float(high)
        )


@dataclass(frozen=True)
class Domain:
    """The varied parameters' ranges and the constraints joining them (a set's domain)."""

    ranges: dict[str, list[float]]
    constraints: tuple[LinearConstraint, ...] = ()


def _same(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    except (TypeError, ValueError):
        return str(a).strip() == str(b).strip()


def domain_violations(
    ranges: Mapping[str, list[float]],
    trained_settings: Mapping[str, Any],
    params: Mapping[str, float],
    settings: Mapping[str, Any],
    constraints: Sequence[LinearConstraint] = (),
) -> list[str]:
    """Reasons why a point lies outside the domain (empty when inside).

    ``ranges``: varied parameter -> [low, high]; ``trained_settings``: the fixed
    CLASS settings of the training data; ``params``: the point's values of the
    varied parameters; ``settings``: every CLASS setting of the point;
    ``constraints``: bounds on combinations of the varied parameters.
    """
    reasons = []
    for name, (low, high) in ranges.items():
        value = params.get(name)
        if value is None or not low <= value <= high:
            reasons.append(f"{name}={value} outside [{low}, {high}]")
    reasons += [r for r in (c.violation(params) for c in constraints) if r is not None]
    for name, trained in trained_settings.items():
        if name in AFTER_PERTURBATIONS:
            continue
        if name not in settings:
            reasons.append(f"{name} unset (trained with {trained!r})")
        elif not _same(settings[name], trained):
            reasons.append(f"{name}={settings[name]!r} (trained with {trained!r})")
    for name in settings:
        known = ranges.keys() | trained_settings.keys() | AFTER_PERTURBATIONS
        if name not in known and name not in ALTERNATIVE_PARAMETERISATIONS:
            reasons.append(f"{name} is set but was not part of the training")
    return reasons
