"""``cosmicnet shift-matrix``: the posterior-shift matrix a network's loss can weigh.

cosmicnet shift-matrix configs/lcdm.yaml --network t0
cosmicnet shift-matrix configs/w0wa_mnu.yaml --network t0 --bao desi-like

For the multipoles of the network's spectrum projection, how a relative TT
error at each (EE for a polarisation source, ``projected_loss_polarisation``;
and, when the network's loss has a TE term, a TE error
relative to sqrt(C^TT C^EE)) moves every parameter's Planck posterior, in
sigma (plik_lite TTTEEE, with --bao joined by a BAO-like block, A_planck and a
tau_reio prior, at the Planck best fit or, for w0-wa and m_ncdm families, its
LCDM limit; ``training/evaluation/shift_matrix.py``).  Written with ``--out FILE`` as a
shift-matrix file that the network's config names
(``projected_loss_shift_matrix: FILE``, relative to the config), else printed.
About 15 CLASS runs; needs the plik_lite data.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``shift-matrix`` subcommand."""
    parser = subparsers.add_parser(
        "shift-matrix",
        help="the posterior-shift matrix of a network's spectrum projection (YAML)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, help="family config YAML")
    parser.add_argument("--network", default="t0", help="network whose multipoles to use")
    parser.add_argument("--out", type=Path, default=None, help="shift-matrix YAML file to write")
    parser.add_argument(
        "--bao",
        choices=("desi-like",),
        default=None,
        help="join a BAO-like likelihood (for w0-wa and m_ncdm families)",
    )
    parser.set_defaults(handler=run)


def matrix_file_text(matrix: dict[str, list[float]], command: str, first: str = "TT") -> str:
    """A shift-matrix file: parameter -> row, under a comment saying what the rows are."""
    lines = [
        f"# {command}",
        f"# shift in sigma per unit relative error at each multipole ({first}, then TE)",
    ]
    for name, row in matrix.items():
        lines.append(f"{name}: [{', '.join(f'{value:.5g}' for value in row)}]")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet shift-matrix``."""
    from cosmicnet_cobaya.planck import find_packages_path
    from training.configuration.family import ConfigError, load_config
    from training.configuration.network_parsing import parse_networks_config
    from training.configuration.networks import NetworkConfigError
    from training.evaluation.bao import BAO_LIKELIHOODS
    from training.evaluation.pairs import FullClass, ValidationSettings
    from training.evaluation.plik import PlikLite
    from training.evaluation.shift_matrix import shift_matrix
    from training.evaluation.validate import fisher_reference

    try:
        family = load_config(args.config)
        networks = parse_networks_config(family.networks)
        point = fisher_reference(family.param_names)
    except (ConfigError, NetworkConfigError, ValueError) as error:
        logger.error("%s", error)
        return 2
    config = networks.networks.get(args.network)
    if config is None:
        logger.error("unknown network %r; known: %s", args.network, sorted(networks.networks))
        return 2
    if not config.projected_loss_spectrum:
        logger.error(
            "%s has no spectrum projection: give it projected_loss_multipoles and "
            "projected_loss_spectrum: true first",
            args.network,
        )
        return 2
    packages_path = find_packages_path()
    if packages_path is None:
        logger.error("plik_lite data not found: set COBAYA_PACKAGES_PATH (see README)")
        return 2
    plik = PlikLite.load(packages_path)
    settings = ValidationSettings(
        extra_args=dict(family.extra_args),
        l_max=family.l_max,
        non_linear="none",
        bao=BAO_LIKELIHOODS[args.bao] if args.bao else None,
    )
    runner = FullClass(settings)
    try:
        matrix = shift_matrix(
            runner,
            plik,
            config.projected_loss_multipoles,
            bool(config.projected_loss_te_weight),
            point=point,
            polarisation=config.projected_loss_polarisation,
        )
    finally:
        runner.close()
    command = f"cosmicnet shift-matrix {args.config} --network {args.network}"
    command += f" --bao {args.bao}" if args.bao else ""
    first = "EE" if config.projected_loss_polarisation else "TT"
    text = matrix_file_text(matrix, command, first)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        logger.info(
            "wrote %s: name it as networks.%s.%s",
            args.out,
            args.network,
            "projected_loss_shift_matrix",
        )
    return 0
