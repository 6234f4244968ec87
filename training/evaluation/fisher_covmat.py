"""Proposal covariance for MCMC from a Fisher matrix with full CLASS.

Planck 2018 plik_lite TTTEEE (optionally joined by a BAO-like block), the
Gaussian tau_reio prior of the MCMC configs, A_planck as a nuisance with its
prior (marginalised), central differences with hmcode at the Planck best fit,
or, for a family that varies w0-wa or m_ncdm, at its LCDM limit
(:data:`~training.evaluation.validate.REFERENCE_POINT`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.planck import LCDM_EXTRA_ARGS
from cosmicnet_cobaya.sources import ClassSourceProvider
from training.evaluation.bao import BaoLike
from training.evaluation.fisher import fisher_matrix
from training.evaluation.pairs import PairRunner, ValidationSettings
from training.evaluation.plik import PlikLite
from training.evaluation.validate import (
    LCDM_PARAMS,
    data_vector,
    fisher_reference,
    joint_fisher_inputs,
)


def fisher_covariance(
    packages_path: Path,
    varied: Sequence[str] = LCDM_PARAMS,
    extra_args: Mapping[str, Any] | None = None,
    bao: BaoLike | None = None,
) -> tuple[list[str], np.ndarray]:
    """Names and covariance of logA, n_s and ``varied`` (A_planck marginalised), with
    ``extra_args`` the fixed CLASS settings (default: Planck LCDM's)."""
    point = fisher_reference(varied)
    plik = PlikLite.load(packages_path)
    settings = ValidationSettings(
        extra_args={**(extra_args or LCDM_EXTRA_ARGS), "compute damping scale": "yes"},
        non_linear="hmcode",
        bao=bao,
    )
    runner = PairRunner(ClassSourceProvider(), settings)
    try:
        reference = data_vector(plik, runner.class_spectra(point))
        names, jacobian, priors, inverse = joint_fisher_inputs(runner, plik, point, reference)
    finally:
        runner.close()
    covariance = np.linalg.inv(fisher_matrix(jacobian, inverse, priors))
    kept = len(point)  # A_planck marginalised: drop its row and column
    return list(names[:kept]), covariance[:kept, :kept]
