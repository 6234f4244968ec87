"""``cosmicnet select``: choose a network's hyperparameters (paper section 3.2).

    cosmicnet select configs/lcdm.yaml --data work/lcdm --out nets/lcdm --network t0

Draws ``search.candidates`` architectures from the configured log-uniform
ranges, trains each for ``search.epochs``, keeps the ``search.keep`` of lowest
validation loss and installs the one with the smallest C_l error (eq. 3.2) on
the selection set, computed through the hook with the real CLASS downstream.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from training.commands.train import add_common_arguments, load_inputs, validation_limit

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``select`` subcommand."""
    parser = subparsers.add_parser(
        "select",
        help="hyperparameter selection of one network by validation loss and C_l error",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    parser.add_argument("--network", required=True, help="t0, t1, t2, phi_plus_psi, delta_m ...")
    parser.add_argument("--candidates", type=int, default=None, help="override search.candidates")
    parser.add_argument("--keep", type=int, default=None, help="override search.keep")
    parser.add_argument("--epochs", type=int, default=None, help="override search.epochs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the selection; returns the exit status."""
    from training.configuration.family import ConfigError
    from training.configuration.networks import NetworkConfigError
    from training.learning.data_access import SetReader
    from training.learning.pipeline import select_network
    from training.learning.select import spectrum_reference

    try:
        family, networks, provenance, domain = load_inputs(args)
    except (ConfigError, NetworkConfigError) as error:
        logger.error("%s", error)
        return 2
    if args.network not in networks.networks:
        logger.error("unknown network %r; known: %s", args.network, sorted(networks.networks))
        return 2
    config = networks.networks[args.network]
    if config.source not in family.targets:
        logger.error("the family stores no target %r (it has %s)", config.source, family.targets)
        return 2
    overrides = {
        key: getattr(args, key)
        for key in ("candidates", "keep", "epochs")
        if getattr(args, key) is not None
    }
    config = replace(config, search=replace(config.search, **overrides))
    networks = replace(networks, networks={**networks.networks, args.network: config})
    training = SetReader(args.data / "training.h5", args.limit)
    validation = SetReader(args.data / "validation.h5", validation_limit(args))
    selection = SetReader(args.data / "selection.h5", args.limit)
    settings = [family.class_settings(selection.features(i).params) for i in range(len(selection))]
    reference = spectrum_reference(settings, family.l_max, np.geomspace(1e-3, 0.3, 30))
    try:
        record = select_network(
            args.network,
            networks,
            training,
            validation,
            reference,
            args.out,
            provenance,
            domain,
            progress=not args.no_progress,
            cache_bytes=int(args.cache_gb * 2**30),
        )
    finally:
        for reader in (training, validation, selection):
            reader.close()
    logger.info("%s: chose candidate %d", args.network, record["chosen"])
    return 0
