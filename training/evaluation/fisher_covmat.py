"""Proposal covariance for MCMC from a Fisher matrix with full CLASS.

Planck 2018 plik_lite TTTEEE, the Gaussian tau_reio prior of the MCMC
configs, A_planck as a nuisance with its prior (marginalised), central
differences at the Planck best fit with hmcode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS
from cosmicnet_cobaya.sources import ClassSourceProvider
from training.evaluation.fisher import fisher_matrix
from training.evaluation.pairs import PairRunner, ValidationSettings
from training.evaluation.plik import PlikLite
from training.evaluation.validate import FISHER_STEPS, plik_fisher_inputs


def fisher_covariance(packages_path: Path) -> tuple[list[str], np.ndarray]:
    """Names and covariance of the cosmological parameters (A_planck marginalised)."""
    plik = PlikLite.load(packages_path)
    settings = ValidationSettings(
        extra_args={**LCDM_EXTRA_ARGS, "compute damping scale": "yes"}, non_linear="hmcode"
    )
    runner = PairRunner(ClassSourceProvider(), settings)
    point = {name: BEST_FIT[name] for name in FISHER_STEPS}
    try:
        reference = plik.binned(runner.class_spectra(point).dl)
        names, jacobian, priors = plik_fisher_inputs(runner, plik, point, reference)
    finally:
        runner.close()
    covariance = np.linalg.inv(fisher_matrix(jacobian, plik.inverse_covariance, priors))
    kept = len(FISHER_STEPS)  # A_planck marginalised: drop its row and column
    return list(names[:kept]), covariance[:kept, :kept]
