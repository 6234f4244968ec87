"""``cosmicnet assemble``: a network set with some networks taken from a fine-tuned set.

    cosmicnet assemble --base cosmicnet_cobaya/data/networks/lcdm \
        --from work/nets_tuned --names t0 --out work/nets_full

Copies ``--base`` to ``--out`` (replaced) and replaces the networks in
``--names`` by those of ``--from``. Both sets must share inputs, k grid and
normalisation, as a set fine-tuned with ``cosmicnet train --init-from BASE``
does. Re-measure the result with ``cosmicnet validate --record``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``assemble`` subcommand."""
    parser = subparsers.add_parser(
        "assemble",
        help="a network set with some networks replaced by fine-tuned ones",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", type=Path, required=True, help="set to start from")
    parser.add_argument("--from", dest="tuned", type=Path, required=True, help="fine-tuned set")
    parser.add_argument("--names", required=True, help="comma-separated networks to replace")
    parser.add_argument("--out", type=Path, required=True, help="new set folder (replaced)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet assemble``."""
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from training.sets.assemble import assemble_network_set

    try:
        assemble_network_set(args.base, args.tuned, args.names.split(","), args.out)
    except (NetworkSetError, OSError, ValueError) as error:
        logger.error("%s", error)
        return 2
    return 0
