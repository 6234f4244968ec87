"""Reference evaluations: one network asked the same question several ways.

Before reionization the CMB sources obey two exact symmetries: they scale as
exp(-tau_reio) (:mod:`~cosmicnet_cobaya.networks.reionization`) and, at
fixed physical densities in flat LCDM, do not depend on H0
(:mod:`~cosmicnet_cobaya.networks.hubble`).  A network serving such slices
can be evaluated as if ``tau_reio`` and ``H0`` had reference values, with its
inputs moved accordingly and its output rescaled back.  Each reference gives
the true source up to the network's own error, and those errors differ from
one reference to the next, so the mean over a few references averages part
of them out: an ensemble without training a second network.

A network entry asks for it with ``references``, a list of mappings such as
``{"tau_reio": 0.045, "H0": 65.9}``; a parameter a reference leaves out keeps
the cosmology's own value.  The k-bases branch runs once for all references.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures
from cosmicnet_cobaya.networks.hubble import H0, FlatLambdaExpansion, at_hubble
from cosmicnet_cobaya.networks.reionization import (
    LATEST_END_IN_TAU_REC,
    SCALING_SOURCES,
    TAU_REIO,
    at_tau_reio,
    ends_before_reionization,
)

Reference = dict[str, float]
SYMMETRIC_PARAMETERS = (H0, TAU_REIO)
"""Parameters a reference may set, in the order their moves are applied."""


def parse_references(values: object, where: str) -> tuple[Reference, ...]:
    """Validated references (an empty tuple: no averaging)."""
    if values is None:
        return ()
    example = '[{"tau_reio": 0.045, "H0": 65.9}, {"tau_reio": 0.067, "H0": 69.4}]'
    if not isinstance(values, list | tuple) or not all(
        isinstance(value, Mapping) and value for value in values
    ):
        raise ValueError(f"{where} must be a list of parameter mappings, e.g. {example}")
    references = []
    for value in values:
        unknown = [name for name in value if name not in SYMMETRIC_PARAMETERS]
        if unknown:
            raise ValueError(
                f"{where}: references may set only {SYMMETRIC_PARAMETERS}, not {unknown}"
            )
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
            raise ValueError(f"{where}: reference values must be numbers, got {dict(value)}")
        references.append(
            {name: float(value[name]) for name in SYMMETRIC_PARAMETERS if name in value}
        )
    return tuple(references)


def parse_tau_reio_references(values: object, where: str) -> tuple[Reference, ...]:
    """The older form, a list of optical depths, as references."""
    if values is None:
        return ()
    if not isinstance(values, list | tuple):
        raise ValueError(f"{where} must be a list of optical depths, e.g. [0.04, 0.056, 0.072]")
    return parse_references([{TAU_REIO: value} for value in values], where)


def check_entry(source: str, tau_range: tuple[float, float | None], where: str) -> None:
    """Refuse references on a network whose source or slices break the symmetries."""
    if source not in SCALING_SOURCES:
        raise ValueError(
            f"{where}: references apply to the CMB sources {SCALING_SOURCES}, "
            f"not to {source!r}, which does not carry a factor exp(-tau_reio)"
        )
    if not ends_before_reionization(tau_range):
        raise ValueError(
            f"{where}: references need a network whose tau range ends by "
            f"{LATEST_END_IN_TAU_REC} tau_rec (it ends at {tau_range[1]}); reionization "
            "and dark energy break the symmetries later on"
        )


def check_set(
    references: Mapping[str, Sequence[Reference]],
    param_names: Sequence[str],
    domain: Mapping[str, Sequence[float]],
    settings: Mapping[str, Any],
) -> FlatLambdaExpansion | None:
    """Check every network's references against the set; the expansion H0 ones need.

    Raises ``ValueError`` naming the network and the fix.
    """
    needs_expansion = False
    for name, entries in references.items():
        for reference in entries:
            for parameter, value in reference.items():
                if parameter not in param_names:
                    raise ValueError(
                        f"networks.{name}: a reference sets {parameter}, which is not among "
                        f"the set's parameters {list(param_names)}: remove it"
                    )
                bounds = domain.get(parameter)
                if bounds is not None and not bounds[0] <= value <= bounds[1]:
                    raise ValueError(
                        f"networks.{name}: reference {parameter} = {value} lies outside the "
                        f"training domain [{bounds[0]}, {bounds[1]}]: pick one inside"
                    )
                if parameter == TAU_REIO and not 0.0 < value < 1.0:
                    raise ValueError(f"networks.{name}: reference tau_reio must lie in (0, 1)")
            needs_expansion |= H0 in reference
    if not needs_expansion:
        return None
    return FlatLambdaExpansion.from_settings(settings, tuple(param_names))


def at_reference(
    features: CosmologyFeatures, reference: Reference, expansion: FlatLambdaExpansion | None
) -> tuple[CosmologyFeatures, float]:
    """The features as at ``reference``, and the factor that takes a source back.

    A source predicted from the returned features, times the returned factor,
    is the source of the cosmology ``features`` describe.
    """
    factor = 1.0
    if H0 in reference:
        if expansion is None:
            raise ValueError("an H0 reference needs the set's FlatLambdaExpansion")
        features = at_hubble(features, reference[H0], expansion)
    if TAU_REIO in reference:
        features, factor = at_tau_reio(features, reference[TAU_REIO])
    return features, factor


def mean_of(predictions: Sequence[np.ndarray], factors: Sequence[float]) -> np.ndarray:
    """The mean of ``predictions[i] * factors[i]`` (float64)."""
    total = np.zeros(predictions[0].shape, dtype=np.float64)
    for prediction, factor in zip(predictions, factors, strict=True):
        total += factor * np.asarray(prediction, dtype=np.float64)
    return total / len(predictions)
