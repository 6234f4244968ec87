"""``cosmicnet covmat``: a proposal covariance for MCMC from a Fisher matrix with full CLASS.

    cosmicnet covmat --out configs/mcmc_lcdm.covmat [--packages-path PATH]
    cosmicnet covmat --config configs/w0wa_mnu.yaml --bao desi-like --out configs/mcmc_w0wa.covmat

Planck 2018 plik_lite TTTEEE, the tau_reio prior of the MCMC configs and
A_planck marginalised, at the Planck best fit with hmcode. The MCMC configs
read the result, so ClassNet and classy chains start from the same proposal.
With --config, the family's varied parameters and fixed CLASS settings, at
the LCDM limit of w0-wa and m_ncdm; --bao joins a BAO-like block (without it,
Planck alone leaves w0-wa families' geometric degeneracy open).
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
    parser.add_argument(
        "--config", type=Path, default=None, help="family config (default: LCDM of Planck 2018)"
    )
    parser.add_argument(
        "--bao", choices=("desi-like",), default=None, help="join a BAO-like likelihood"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet covmat``."""
    from cosmicnet_cobaya.planck import find_packages_path
    from training.evaluation.bao import BAO_LIKELIHOODS
    from training.evaluation.fisher_covmat import fisher_covariance

    packages_path = args.packages_path or find_packages_path()
    if packages_path is None:
        logger.error("plik_lite data not found: pass --packages-path or set COBAYA_PACKAGES_PATH")
        return 2
    bao = BAO_LIKELIHOODS[args.bao] if args.bao else None
    try:
        family = _family(args.config)
        names, covariance = fisher_covariance(packages_path, bao=bao, **family)
    except ValueError as error:  # a config error is one
        logger.error("%s", error)
        return 2
    np.savetxt(args.out, covariance, header=" ".join(names))
    for name, sigma in zip(names, np.sqrt(np.diag(covariance)), strict=True):
        print(f"sigma({name}) = {sigma:.4g}")
    return 0


def _family(config: Path | None) -> dict[str, Any]:
    """Varied parameters and fixed CLASS settings of a family config (none: LCDM's)."""
    if config is None:
        return {}
    from training.configuration.family import load_config

    family = load_config(config)
    return {"varied": family.param_names, "extra_args": family.extra_args}
