"""``cosmicnet covmat``: a proposal covariance for MCMC from a Fisher matrix with full CLASS.

    cosmicnet covmat --out configs/mcmc_lcdm.covmat [--packages-path PATH]

Planck 2018 plik_lite TTTEEE, the tau_reio prior of the MCMC configs and
A_planck marginalised, at the Planck best fit with hmcode. The MCMC configs
read the result, so ClassNet and classy chains start from the same proposal.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``covmat`` subcommand."""
    parser = subparsers.add_parser(
        "covmat",
        help="proposal covariance for MCMC from a Fisher matrix with full CLASS",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("configs/mcmc_lcdm.covmat"))
    parser.add_argument("--packages-path", type=Path, default=None, help="Cobaya packages_path")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet covmat``."""
    from cosmicnet_cobaya.planck import find_packages_path
    from training.evaluation.fisher_covmat import fisher_covariance

    packages_path = args.packages_path or find_packages_path()
    if packages_path is None:
        logger.error("plik_lite data not found: pass --packages-path or set COBAYA_PACKAGES_PATH")
        return 2
    names, covariance = fisher_covariance(packages_path)
    np.savetxt(args.out, covariance, header=" ".join(names))
    for name, sigma in zip(names, np.sqrt(np.diag(covariance)), strict=True):
        print(f"sigma({name}) = {sigma:.4g}")
    return 0
