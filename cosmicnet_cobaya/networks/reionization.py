"""Recombination-era sources scale as exp(-tau_reio): an ensemble for free.

Before reionization starts, the optical depth from a time tau to today is
kappa(tau) = kappa_rec(tau) + tau_reio, and nothing else at those times
depends on reionization, so every CMB source there (S_T0, S_T1, S_T2, made
of g = kappa' e^-kappa and e^-kappa times perturbations that reionization
has not touched) is exp(-tau_reio) times a function of the other
parameters.  Full CLASS obeys this to 2e-6 of the source maximum (rms).

A network serving such slices can therefore be evaluated at any reference
optical depth and rescaled: its inputs there are the same cosmology with
``tau_reio`` replaced by the reference and g, g' and e^-kappa multiplied by
exp(tau_reio - reference) (CLASS's ``conf_time_reio``, the other time
input, comes from its starting guess of z_reio and does not depend on
tau_reio).  The network's own errors differ from one reference to the next,
so averaging the rescaled predictions at a few references averages part of
them out, at the cost of a forward pass per reference (the k-bases branch
runs once).  A network entry asks for it with ``tau_reio_references``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures

TAU_REIO = "tau_reio"
SCALED_TIME_FEATURES = ("g", "g_prime", "e_kappa")
"""Time features proportional to exp(-tau_reio) before reionization."""
SCALING_SOURCES = ("t0", "t1", "t2", "p")
"""Sources made of g and e^-kappa times perturbations: exp(-tau_reio) x the rest."""
LATEST_END_IN_TAU_REC = 3.0
"""A network using references must stop serving by this multiple of tau_rec
(z of several hundred for LCDM, long before reionization starts at z <= 50)."""


def parse_references(values: object, where: str) -> tuple[float, ...]:
    """Validated reference optical depths (an empty tuple: no averaging)."""
    if values is None:
        return ()
    if not isinstance(values, list | tuple) or not all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in values
    ):
        raise ValueError(f"{where} must be a list of optical depths, e.g. [0.04, 0.056, 0.072]")
    references = tuple(float(value) for value in values)
    if any(not 0.0 < value < 1.0 for value in references):
        raise ValueError(f"{where}: every reference tau_reio must lie in (0, 1), got {references}")
    return references


def ends_before_reionization(tau_range: tuple[float, float | None]) -> bool:
    """Whether a network serving ``tau_range`` stops by :data:`LATEST_END_IN_TAU_REC`."""
    high = tau_range[1]
    return high is not None and high <= LATEST_END_IN_TAU_REC


def check_scales_with_tau_reio(
    source: str, tau_range: tuple[float, float | None], where: str
) -> None:
    """Refuse references on a network whose source or slices break the scaling."""
    if source not in SCALING_SOURCES:
        raise ValueError(
            f"{where}: tau_reio_references apply to the CMB sources {SCALING_SOURCES}, "
            f"not to {source!r}, which does not carry a factor exp(-tau_reio)"
        )
    if not ends_before_reionization(tau_range):
        raise ValueError(
            f"{where}: tau_reio_references need a network whose tau range ends by "
            f"{LATEST_END_IN_TAU_REC} tau_rec (it ends at {tau_range[1]}); reionization "
            "breaks the exp(-tau_reio) scaling later on"
        )


def at_reference(features: CosmologyFeatures, reference: float) -> tuple[CosmologyFeatures, float]:
    """The features as at optical depth ``reference``, and the source factor back.

    A source predicted from the returned features, times the returned factor
    exp(reference - tau_reio), is the source at the cosmology's own tau_reio.
    """
    if TAU_REIO not in features.params:
        raise KeyError(f"{TAU_REIO} is not a parameter of this network set")
    scale = float(np.exp(features.params[TAU_REIO] - reference))
    time = dict(features.time)
    for name in SCALED_TIME_FEATURES:
        time[name] = features.time[name] * scale
    shifted = CosmologyFeatures(
        params={**features.params, TAU_REIO: reference},
        scalars=features.scalars,
        tau=features.tau,
        time=time,
    )
    return shifted, 1.0 / scale


def mean_of(predictions: Sequence[np.ndarray], factors: Sequence[float]) -> np.ndarray:
    """The mean of ``predictions[i] * factors[i]`` (float64)."""
    total = np.zeros(predictions[0].shape, dtype=np.float64)
    for prediction, factor in zip(predictions, factors, strict=True):
        total += factor * np.asarray(prediction, dtype=np.float64)
    return total / len(predictions)
