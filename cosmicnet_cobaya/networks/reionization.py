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
them out (:mod:`~cosmicnet_cobaya.networks.references`).
"""

from __future__ import annotations

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


def ends_before_reionization(tau_range: tuple[float, float | None]) -> bool:
    """Whether a network serving ``tau_range`` stops by :data:`LATEST_END_IN_TAU_REC`."""
    high = tau_range[1]
    return high is not None and high <= LATEST_END_IN_TAU_REC


def at_tau_reio(features: CosmologyFeatures, reference: float) -> tuple[CosmologyFeatures, float]:
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
