"""Where in l a network's error falls: the largest TT error per l range, per cosmology.

    .venv/bin/python benchmarks/errors_by_l.py --data work/lcdm --networks DIR [DIR ...]
        [--cosmologies 0 3 5 9] [--use t0,t2]

Like ``benchmarks/error_budget.py``, CLASS's own stored sources are used
everywhere except the tau slices of the networks in ``--use``, on test
cosmologies (never seen in training), with linear lensing.  Printed per set
and cosmology: the signed TT error of largest size in each l range (per cent),
and the largest binned TT, EE and TE errors in units of the plik_lite error.
A quick comparison of candidate networks before a full ``cosmicnet validate``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from pathlib import Path

import numpy as np
from error_budget import MixedNetworks

from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.planck import BEST_FIT, find_packages_path
from training.evaluation.pairs import PairRunner, ValidationSettings
from training.evaluation.plik import PlikLite
from training.evaluation.validate import errors_in_planck_units, spectrum_errors
from training.generation.dataset import open_set

logger = logging.getLogger("errors_by_l")

EDGES = (30, 60, 100, 300, 600, 1000, 1500, 2000, 2501)
SOURCES = ("t0", "t1", "t2", "phi_plus_psi")


def largest(values: np.ndarray) -> float:
    """The entry of largest size, with its sign."""
    return float(values[np.argmax(np.abs(values))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="generated data folder")
    parser.add_argument("--networks", type=Path, nargs="+", required=True, help="network sets")
    parser.add_argument("--cosmologies", type=int, nargs="+", default=[0, 3, 5, 9])
    parser.add_argument("--use", default="t0", help="comma-separated networks that predict")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    packages_path = find_packages_path()
    if packages_path is None:
        raise SystemExit("plik_lite data not found (see README: the Cobaya packages path)")
    plik = PlikLite.load(packages_path)
    ranges = "  ".join(f"{low}-{high - 1}" for low, high in itertools.pairwise(EDGES))
    logger.info("TT error [%%] per l range: %s | max binned error in plik_lite sigma", ranges)
    with open_set(args.data / "test.h5") as test:
        for folder in args.networks:
            provider = NetworkSourceProvider(folder)
            settings = ValidationSettings.for_network_set(provider.networks.metadata, "none")
            mixed = MixedNetworks(provider.networks, {}, set(args.use.split(",")))
            provider.networks = mixed
            provider.check_domain = False
            runner = PairRunner(provider, settings)
            for position in args.cosmologies:
                cosmology = test.cosmology(int(test.indices[position]), SOURCES)
                mixed.truth = dict(cosmology.targets)
                pair = runner.spectra({**cosmology.features.params, "logA": BEST_FIT["logA"]})
                with np.errstate(invalid="ignore", divide="ignore"):  # l = 0, 1 are zero
                    tt = spectrum_errors(pair["class"], pair["network"], l_min=0)["tt"]
                sigma = errors_in_planck_units(plik, pair["class"], pair["network"])
                per_range = "  ".join(
                    f"{100 * largest(tt[low:high]):+.2f}" for low, high in itertools.pairwise(EDGES)
                )
                logger.info(
                    "%s test %d: %s | TT %.3f EE %.3f TE %.3f",
                    folder.name,
                    position,
                    per_range,
                    *(float(np.max(np.abs(sigma[name]))) for name in ("tt", "ee", "te")),
                )
            runner.close()


if __name__ == "__main__":
    main()
