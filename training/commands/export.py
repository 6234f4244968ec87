"""``cosmicnet export``: a trained network set made ready to ship.

    cosmicnet export work/nets --out cosmicnet_cobaya/data/networks/lcdm [--max-mb 25]
        [--references tau_reio=0.035,H0=67.66 tau_reio=0.045,H0=65.9 ...]

Copies ``metadata.json`` and every network without its optimizer state
(training checkpoints keep it; inference does not need it, and it triples
the size), then loads the copy with the NumPy forward pass and checks that
it gives the Keras model's outputs.  Refuses a set larger than ``--max-mb``.
With ``--references``, every network of t0, t1, t2 that stops before
reionization is averaged at inference over evaluations at those values of
tau_reio and H0, each a comma-separated list of NAME=VALUE
(``cosmicnet_cobaya.networks.references``).  With ``--experimental REASON``
(say which targets it misses), ``networks: null`` never picks the set;
ClassNet serves it when named and logs the reason.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="copy a network set without optimizer state, checked, for shipping",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("networks", type=Path, help="trained network set")
    parser.add_argument("--out", type=Path, required=True, help="folder of the shipped copy")
    parser.add_argument("--max-mb", type=float, default=25.0, help="size limit (default 25 MB)")
    parser.add_argument(
        "--references", type=_reference, nargs="+", default=(), metavar="NAME=VALUE,...",
        help="average the recombination networks over these references of tau_reio and H0",
    )  # fmt: skip
    parser.add_argument(
        "--experimental", default=None, metavar="REASON",
        help="ship the set as experimental: ClassNet serves it only when named, and says why",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def _reference(text: str) -> dict[str, float]:
    """``tau_reio=0.045,H0=65.9`` as a mapping (argparse type)."""
    try:
        pairs = [item.split("=", 1) for item in text.split(",")]
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=VALUE[,NAME=VALUE], e.g. tau_reio=0.045,H0=65.9"
        ) from error


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet export``."""
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from training.sets.export import check_export, export_network_set

    if args.out.resolve() == args.networks.resolve():
        logger.error("--out must differ from the source set")
        return 2
    try:
        size = export_network_set(args.networks, args.out, args.references, args.experimental)
        difference = check_export(args.networks, args.out)
    except (NetworkSetError, OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    logger.info(
        "exported %s to %s: %.1f MB, NumPy vs Keras max relative difference %.2g",
        args.networks,
        args.out,
        size / 1e6,
        difference,
    )
    if difference > 1e-4:
        logger.error("the exported set does not reproduce the original networks")
        return 1
    if size > args.max_mb * 1e6:
        logger.error("the exported set is %.1f MB, above --max-mb %.1f", size / 1e6, args.max_mb)
        return 1
    return 0
