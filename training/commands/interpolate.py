"""``cosmicnet interpolate``: named networks mixed from two sets' weights.

    cosmicnet interpolate --base cosmicnet_cobaya/data/networks/lcdm \
        --other work/nets_tuned --names t0 --alpha 0.5 --out work/nets_mixed

Copies ``--other`` (a set fine-tuned from ``--base`` with ``--init-from``) to
``--out`` (replaced) and sets each named network's weights to
``(1 - alpha) * base + alpha * other``. Re-measure the result with
``cosmicnet validate --record``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``interpolate`` subcommand."""
    parser = subparsers.add_parser(
        "interpolate",
        help="a network set whose named networks interpolate two sets' weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", type=Path, required=True, help="set fine-tuning started from")
    parser.add_argument("--other", type=Path, required=True, help="fine-tuned set")
    parser.add_argument("--names", required=True, help="comma-separated networks to mix")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of --other (0-1)")
    parser.add_argument("--out", type=Path, required=True, help="new set folder (replaced)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet interpolate``."""
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from training.sets.interpolate import interpolate_network_set

    try:
        interpolate_network_set(args.base, args.other, args.names.split(","), args.alpha, args.out)
    except (NetworkSetError, OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    return 0
