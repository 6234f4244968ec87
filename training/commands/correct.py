"""``cosmicnet correct``: fit residual corrections of networks.

    cosmicnet correct NETWORKS --data work/lcdm --out work/nets_corrected
        [--set training] [--networks t0 t1 t2] [--parameters omega_b omega_cdm]
        [--degree 3] [--x-size 200] [--x-min 0] [--k-max 0.4] [--max-rank 128] [--limit N]
        [--mode additive|relative|log] [--x-spacing linear|geometric] [--tolerance 1e-4]
        [--holdout-every 10] [--save-sums DIR] [--add-sums DIR ...]

Copies the set to ``--out`` and adds to each named network a correction: a
polynomial in the parameters, fitted on the generated cosmologies of ``--set``,
that predicts the network's remaining error (``cosmicnet_cobaya.networks.correction``);
with ``--mode relative`` its relative error, applied as a factor; with ``--mode
log`` ln|source| itself, which replaces the network's output on the rows the
correction covers.  The matter sources after recombination are emulated that way:

    cosmicnet correct NETWORKS --data work/lcdm --out OUT --mode log
        --networks delta_m delta_cb phi_plus_psi --parameters omega_b omega_cdm H0 tau_reio
        --degree 2 --x-min 4 --x-spacing geometric --k-max 10 --tolerance 1e-12
Fit on cosmologies the networks were not selected or tested on; every tenth is
held out and the log reports how much of its residual the correction removes.

The fit's normal equations can be saved (``--save-sums``, one ``<name>.sums.npz``
per network) and added to a fit elsewhere (``--add-sums``): data generated on
another machine is then fitted on without copying it.  Held-out cosmologies
stay out of the saved sums (``--holdout-every 0`` holds none out).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from cosmicnet_cobaya.networks.correction import MODES

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``correct`` subcommand."""
    parser = subparsers.add_parser(
        "correct",
        help="fit residual corrections of networks on generated data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("networks", type=Path, help="network set to correct")
    parser.add_argument("--data", type=Path, required=True, help="generated data folder")
    parser.add_argument("--set", default="training", help="which set to fit on")
    parser.add_argument("--out", type=Path, required=True, help="folder of the corrected copy")
    parser.add_argument("--networks", dest="names", nargs="+", default=["t0", "t1", "t2"])
    parser.add_argument("--parameters", nargs="+", default=["omega_b", "omega_cdm"])
    parser.add_argument("--degree", type=int, default=3, help="total polynomial degree")
    parser.add_argument("--x-size", type=int, default=200, help="points in tau / tau_rec")
    parser.add_argument(
        "--x-min", type=float, default=0.0, help="correct only rows with tau / tau_rec >= this"
    )
    parser.add_argument("--k-max", type=float, default=0.4, help="largest k corrected [1/Mpc]")
    parser.add_argument("--max-rank", type=int, default=128, help="largest stored rank")
    parser.add_argument(
        "--mode", choices=MODES, default="additive", help="what is fitted (see above)"
    )
    parser.add_argument(
        "--x-spacing", choices=("linear", "geometric"), default="linear", help="x grid spacing"
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="fraction of the squared norm truncated"
    )
    parser.add_argument("--limit", type=int, default=None, help="use at most N cosmologies")
    parser.add_argument(
        "--holdout-every", type=int, default=10, help="hold out every N-th cosmology (0: none)"
    )
    parser.add_argument("--save-sums", type=Path, metavar="DIR", help="also save the sums here")
    parser.add_argument(
        "--add-sums", type=Path, nargs="+", default=[], metavar="DIR", help="add saved sums"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet correct``."""
    from tqdm import tqdm

    from cosmicnet_cobaya.networks.network_set import NetworkSetError, load_network_set
    from training.generation.dataset import open_set
    from training.learning.correction import (
        CorrectionSettings,
        accumulate,
        load_sums,
        save_sums,
        solve,
    )
    from training.sets.files import copy_network_set

    if args.out.resolve() == args.networks.resolve():
        logger.error("--out must differ from the network set")
        return 2
    if args.holdout_every < 0:
        logger.error("--holdout-every must be >= 0")
        return 2
    settings = CorrectionSettings(
        parameters=tuple(args.parameters),
        degree=args.degree,
        x_size=args.x_size,
        x_min=args.x_min,
        k_max=args.k_max,
        max_rank=args.max_rank,
        mode=args.mode,
        x_spacing=args.x_spacing,
        tolerance=args.tolerance,
        holdout_every=args.holdout_every,
    )
    path = args.data / f"{args.set}.h5"
    try:
        network_set = load_network_set(args.networks)
        start = load_sums(args.add_sums, network_set, args.names, settings)
        with open_set(path) as data:
            indices = data.indices[: args.limit]
            # unknown names are left to accumulate, which names the set's networks
            known = network_set.metadata.networks
            sources = sorted({known[n].source for n in args.names if n in known})
            cosmologies = (data.cosmology(int(i), targets=sources) for i in indices)

            def progress(items: Any) -> Any:
                return tqdm(items, total=len(indices), desc="fit", disable=args.no_progress)

            equations = accumulate(network_set, args.names, cosmologies, settings, progress, start)
        if args.save_sums is not None:
            save_sums(args.save_sums, network_set, equations, settings)
            logger.info("saved the normal equations to %s", args.save_sums)
        corrections = solve(network_set, equations, settings)
    except (NetworkSetError, OSError, KeyError, ValueError) as error:
        logger.error("%s", error)
        return 2
    copy_network_set(args.networks, args.out)
    metadata = network_set.metadata
    networks = dict(metadata.networks)
    data_note = f"{path} ({len(indices)} cosmologies)"
    for name, fitted in corrections.items():
        correction = dataclasses.replace(fitted, fitted={**fitted.fitted, "data": data_note})
        correction.save(args.out)
        networks[name] = dataclasses.replace(networks[name], correction=correction.spec())
    dataclasses.replace(metadata, networks=networks).write(args.out)
    load_network_set(args.out)  # the copy loads, corrections included
    logger.info("wrote %s with corrections of %s", args.out, ", ".join(corrections))
    return 0
