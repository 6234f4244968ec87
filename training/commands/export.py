"""``cosmicnet export``: a trained network set made ready to ship.

    cosmicnet export work/nets --out cosmicnet_cobaya/data/default_networks [--max-mb 25]
        [--tau-reio-references 0.04 0.056 0.072]

Copies ``metadata.json`` and every network without its optimizer state
(training checkpoints keep it; inference does not need it, and it triples
the size), then loads the copy with the NumPy forward pass and checks that
it gives the Keras model's outputs.  Refuses a set larger than ``--max-mb``.
With ``--tau-reio-references``, every network of t0, t1, t2 that stops
before reionization is averaged over those optical depths at inference
(``cosmicnet_cobaya.networks.reionization``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
        "--tau-reio-references", type=float, nargs="+", default=(), metavar="TAU",
        help="average the recombination networks over these reference optical depths",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def export_network_set(
    source: Path, target: Path, tau_reio_references: Sequence[float] = ()
) -> int:
    """Write the stripped copy into ``target``; returns its size in bytes."""
    import keras

    from cosmicnet_cobaya.networks.network_set import METADATA_FILE, read_metadata

    metadata = read_metadata(source)
    target.mkdir(parents=True, exist_ok=True)
    for entry in metadata.networks.values():
        model = keras.models.load_model(source / entry.file, compile=False)
        model.save(target / entry.file)
    shutil.copyfile(source / METADATA_FILE, target / METADATA_FILE)
    if tau_reio_references:
        with_references(metadata, tau_reio_references).write(target)
    return sum(path.stat().st_size for path in target.iterdir() if path.is_file())


def with_references(metadata: Any, references: Sequence[float]) -> Any:
    """``metadata`` with ``references`` on every network the exp(-tau_reio) scaling allows."""
    from cosmicnet_cobaya.networks.reionization import (
        LATEST_END_IN_TAU_REC,
        SCALING_SOURCES,
        ends_before_reionization,
        parse_references,
    )

    references = parse_references(list(references), "--tau-reio-references")
    networks = dict(metadata.networks)
    chosen = [
        name
        for name, entry in networks.items()
        if entry.source in SCALING_SOURCES and ends_before_reionization(entry.tau_range)
    ]
    if not chosen:
        raise ValueError(
            f"no network of {SCALING_SOURCES} stops by {LATEST_END_IN_TAU_REC} tau_rec: "
            "--tau-reio-references needs recombination networks (a tau_range split)"
        )
    for name in chosen:
        networks[name] = dataclasses.replace(networks[name], tau_reio_references=references)
    logger.info("networks %s averaged over tau_reio = %s", chosen, list(references))
    return dataclasses.replace(metadata, networks=networks)


def check_export(source: Path, target: Path, seed: int = 0) -> float:
    """Largest |NumPy copy - Keras original| over random inputs, relative to the output scale."""
    import keras

    from cosmicnet_cobaya.networks.network_set import load_network_set

    shipped = load_network_set(target)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for name, entry in shipped.metadata.networks.items():
        original = keras.models.load_model(source / entry.file, compile=False)
        inputs = {
            tensor.name: rng.normal(size=(4, *tensor.shape[1:])).astype(np.float32)
            for tensor in original.inputs
        }
        expected = np.asarray(original.predict(inputs, verbose=0))
        got = shipped.models[name](inputs)
        worst = max(worst, float(np.max(np.abs(got - expected)) / np.max(np.abs(expected))))
    return worst


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet export``."""
    from cosmicnet_cobaya.networks.network_set import NetworkSetError

    if args.out.resolve() == args.networks.resolve():
        logger.error("--out must differ from the source set")
        return 2
    try:
        size = export_network_set(args.networks, args.out, args.tau_reio_references)
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
