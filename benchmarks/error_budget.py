"""Which network limits the accuracy: each network alone against full CLASS.

    .venv/bin/python benchmarks/error_budget.py --data work/lcdm [--networks DIR]
        [--limit 8] [--non-linear none] [--out work/error_budget.json]

For test cosmologies (``<data>/test.h5``, never seen in training), the lensed
C_l are computed with full CLASS and through the hook with sources that are
CLASS's own (the stored targets) everywhere except on the tau slices of one
network, which predicts them.  The difference to full CLASS is then that
network's share of the error; the run with every source stored gives the
floor (k-grid interpolation, float32 storage), and the run with every network
the shipped total.  Reported per configuration: the median over cosmologies
of the max |dC_l/C_l| for 30 <= l <= 2500 (TT, EE; TE relative to
sqrt(TT EE)) and of the largest binned TT error in plik_lite sigma.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.features import CosmologyFeatures, KBases
from cosmicnet_cobaya.networks.accuracy import L_RANGE
from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.planck import BEST_FIT, find_packages_path
from training.evaluation.pairs import PairRunner, ValidationSettings
from training.evaluation.plik import PlikLite
from training.evaluation.validate import errors_in_planck_units, spectrum_errors
from training.generation.dataset import open_set

logger = logging.getLogger("error_budget")

ALL_NETWORKS = "all networks"
NO_NETWORK = "stored sources only"


class MixedNetworks:
    """A network set whose sources come from the chosen networks and elsewhere from truth."""

    def __init__(self, networks: Any, truth: Mapping[str, np.ndarray], use: set[str]) -> None:
        self._networks = networks
        self.truth = truth
        self.use = use

    def __getattr__(self, name: str) -> Any:
        return getattr(self._networks, name)

    def predict_source(
        self,
        source: str,
        features: CosmologyFeatures,
        bases: KBases,
        dtype: type = np.float64,
    ) -> np.ndarray:
        """Stored source, with the rows of the networks in ``use`` predicted (``dtype``)."""
        truth = self.truth[source]
        if truth.shape[0] != features.tau.size:
            raise RuntimeError(
                f"CLASS sampled {features.tau.size} tau values but the test set stores "
                f"{truth.shape[0]}: run with the precision the data were generated with"
            )
        values = np.array(truth, dtype=dtype)
        for entry in self._networks.metadata.networks_of(source):
            if entry.name in self.use:
                mask, predicted = self._networks.predict(entry.name, features, bases)
                values[mask] = predicted
        return values


def measure(pair: dict[str, Any], plik: PlikLite | None) -> dict[str, float]:
    """Max relative errors over L_RANGE and the TT error in Planck sigma."""
    errors = spectrum_errors(pair["class"], pair["network"], l_min=0)
    low, high = L_RANGE
    result = {
        name: float(np.max(np.abs(errors[name][low : high + 1]))) for name in ("tt", "te", "ee")
    }
    if plik is not None:
        sigma = errors_in_planck_units(plik, pair["class"], pair["network"])
        result["tt_sigma"] = float(np.max(np.abs(sigma["tt"])))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="generated data folder")
    parser.add_argument(
        "--networks", type=Path, default=None, help="network set (default: shipped)"
    )
    parser.add_argument("--limit", type=int, default=8, help="test cosmologies to use")
    parser.add_argument("--non-linear", default="none", choices=("none", "hmcode"))
    parser.add_argument(
        "--only", default=None, help="comma-separated networks to measure alone (default: all)"
    )
    parser.add_argument("--out", type=Path, default=Path("work/error_budget.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    provider = NetworkSourceProvider(args.networks or DEFAULT_NETWORKS)
    metadata = provider.networks.metadata
    settings = ValidationSettings.for_network_set(metadata, args.non_linear)
    packages_path = find_packages_path()
    if packages_path is None:
        logger.warning("plik_lite data not found: Planck-sigma errors left out")
    plik = PlikLite.load(packages_path) if packages_path is not None else None
    sources = ("t0", "t1", "t2", "phi_plus_psi")
    configurations = {ALL_NETWORKS: set(metadata.networks), NO_NETWORK: set()}
    wanted = args.only.split(",") if args.only else list(metadata.networks)
    for name, entry in metadata.networks.items():
        if entry.source in sources and name in wanted:
            configurations[name] = {name}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in configurations}
    mixed = MixedNetworks(provider.networks, {}, set())
    provider.networks = mixed
    provider.check_domain = False
    runner = PairRunner(provider, settings)
    with open_set(args.data / "test.h5") as test:
        for index in test.indices[: args.limit]:
            cosmology = test.cosmology(int(index), sources)
            mixed.truth = dict(cosmology.targets)
            point = {**cosmology.features.params, "logA": BEST_FIT["logA"]}
            for label, use in configurations.items():
                mixed.use = use
                results[label].append(measure(runner.spectra(point), plik))
            logger.info(
                "cosmology %d: %s",
                index,
                ", ".join(f"{label} TT {results[label][-1]['tt']:.2%}" for label in configurations),
            )
    runner.close()
    summary = {
        label: {key: float(np.median([row[key] for row in rows])) for key in rows[0]}
        for label, rows in results.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"median": summary, "per_cosmology": results}, indent=1))
    for label, row in summary.items():
        logger.info(
            "%-22s %s", label, "  ".join(f"{key} {value:.3g}" for key, value in row.items())
        )


if __name__ == "__main__":
    main()
