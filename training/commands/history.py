"""``cosmicnet history``: the training curves of a network set as a PNG.

cosmicnet history work/nets --out work/nets_history.png
cosmicnet history            # the shipped set
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``history`` subcommand."""
    parser = subparsers.add_parser(
        "history",
        help="plot a network set's training curves",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "networks", type=Path, nargs="?", default=None,
        help="network set folder (default: the shipped set)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=Path("training_history.png"), help="PNG to write"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet history``."""
    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
    from cosmicnet_cobaya.networks.network_set import NetworkSetError, read_metadata
    from training.learning.history_plot import plot_histories

    try:
        metadata = read_metadata(args.networks or DEFAULT_NETWORKS)
        path = plot_histories(metadata.networks, args.out)
    except (NetworkSetError, ValueError, OSError) as error:
        logger.error("%s", error)
        return 2
    logger.info("wrote %s", path)
    return 0
