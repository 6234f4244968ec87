"""Proposal covariance for the MCMC comparison, from a Fisher matrix with full CLASS.

    python benchmarks/fisher_covmat.py --out configs/mcmc_lcdm.covmat

Planck 2018 plik_lite TTTEEE (from the Cobaya packages path), the Gaussian
tau_reio prior of the MCMC configs, A_planck as a nuisance with its prior
(marginalised), central differences at the Planck best fit with hmcode. Both
MCMC configs read the result, so both chains start from the same proposal.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS, find_packages_path
from cosmicnet_cobaya.sources import ClassSourceProvider
from training.fisher import fisher_matrix
from training.plik import PlikLite
from training.validate import FISHER_STEPS, PairRunner, ValidationSettings, plik_fisher_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="configs/mcmc_lcdm.covmat")
    parser.add_argument("--packages-path", type=Path, default=None, help="Cobaya packages_path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    packages_path = args.packages_path or find_packages_path()
    if packages_path is None:
        parser.error("plik_lite data not found: pass --packages-path or set COBAYA_PACKAGES_PATH")
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
    np.savetxt(args.out, covariance[:kept, :kept], header=" ".join(names[:kept]))
    for name, sigma in zip(names, np.sqrt(np.diag(covariance)), strict=True):
        print(f"sigma({name}) = {sigma:.4g}")


if __name__ == "__main__":
    main()
