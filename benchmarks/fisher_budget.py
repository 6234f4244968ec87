"""Which network makes the posterior shift: the Fisher shift of each network alone.

    .venv/bin/python benchmarks/fisher_budget.py --data work/lcdm [--networks DIR]
        [--points 6] [--covmat configs/mcmc_lcdm.covmat] [--seed 7]
        [--out work/fisher_budget.json] [--points-from work/lcdm_core/training.h5]

At the Planck best fit and at typical chain points (drawn as ``cosmicnet
validate --fisher-covmat`` draws them), CLASS's own sources are computed on
the family k grid (as data generation stores them), and the lensed spectra are
recomputed through the hook with those sources everywhere except on the tau
slices of one network, which predicts them.  The Fisher shift (plik_lite
TTTEEE, A_planck and a tau_reio prior, as in ``cosmicnet validate``) of each
configuration is that network's share; "stored sources only" is the floor of
the k grid and float32 storage, "all networks" the shipped total.  Linear
lensing.  With ``--points-from`` the points after the best fit are the first
cosmologies of a generated set (``training_i``): on training cosmologies the
shares tell a network that cannot fit from one that does not generalise.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from error_budget import ALL_NETWORKS, NO_NETWORK, MixedNetworks

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.planck import BEST_FIT, find_packages_path
from training.configuration.family import parse_config
from training.evaluation.fisher import posterior_shift
from training.evaluation.pairs import PairRunner, ValidationSettings
from training.evaluation.plik import PlikLite
from training.evaluation.validate import fisher_points, plik_fisher_inputs
from training.generation.cosmology import compute_cosmology
from training.generation.dataset import open_set
from training.generation.storage import read_family

logger = logging.getLogger("fisher_budget")

SOURCES = ("t0", "t1", "t2", "phi_plus_psi")


def stored_points(path: Path, template: dict[str, float], count: int) -> dict[str, dict]:
    """The first ``count`` cosmologies of a generated set, other parameters as ``template``."""
    with open_set(path) as stored:
        names, values = stored.param_names, stored.points[:count]
    points = {}
    for i, row in enumerate(values):
        point = dict(template)
        point.update(zip(names, map(float, row), strict=True))
        points[f"{path.stem}_{i}"] = point
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="generated data folder")
    parser.add_argument("--networks", type=Path, default=None, help="default: the shipped set")
    parser.add_argument("--points", type=int, default=6, help="best fit plus this many minus one")
    parser.add_argument("--covmat", type=Path, default=Path("configs/mcmc_lcdm.covmat"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default=None, help="comma-separated networks to measure alone")
    parser.add_argument("--out", type=Path, default=Path("work/fisher_budget.json"))
    parser.add_argument(
        "--points-from",
        type=Path,
        default=None,
        help="a generated set (.h5) whose first cosmologies replace the chain points",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    family = read_family(args.data)
    if family is None:
        raise SystemExit(f"{args.data} holds no family.h5: run cosmicnet generate first")
    config = parse_config(json.loads(family.config_json))
    packages_path = find_packages_path()
    if packages_path is None:
        raise SystemExit("plik_lite data not found (see README: the Cobaya packages path)")
    plik = PlikLite.load(packages_path)
    provider = NetworkSourceProvider(args.networks or DEFAULT_NETWORKS)
    metadata = provider.networks.metadata
    settings = ValidationSettings.for_network_set(metadata, "none")
    wanted = args.only.split(",") if args.only else list(metadata.networks)
    configurations = {ALL_NETWORKS: set(metadata.networks), NO_NETWORK: set()}
    for name, entry in metadata.networks.items():
        if entry.source in SOURCES and name in wanted:
            configurations[name] = {name}
    mixed = MixedNetworks(provider.networks, {}, set())
    provider.networks = mixed
    provider.check_domain = False
    runner = PairRunner(provider, settings)
    template = {name: BEST_FIT[name] for name in config.param_names if name in BEST_FIT}
    if args.points_from is None:
        points = fisher_points([template], args.points, args.covmat, args.seed)
    else:
        points = {"best_fit": template} if args.points > 0 else {}
        points.update(stored_points(args.points_from, template, args.points - 1))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, point in points.items():
        family_point = {name: point[name] for name in config.param_names}
        truth = compute_cosmology(config, family.k, "fisher", 0, family_point)
        if not truth.ok:
            logger.warning("%s: CLASS failed (%s)", label, truth.error)
            continue
        mixed.truth = {name: truth.targets[name] for name in SOURCES}
        full_point = {"logA": BEST_FIT["logA"], "n_s": BEST_FIT["n_s"], **point}
        reference = plik.binned(runner.class_spectra(full_point).dl)
        names, jacobian, priors = plik_fisher_inputs(runner, plik, full_point, reference)
        results[label] = {}
        for configuration, use in configurations.items():
            mixed.use = use
            delta = plik.binned(runner.network_spectra(full_point).dl) - reference
            shift = posterior_shift(names, jacobian, plik.inverse_covariance, delta, priors)
            results[label][configuration] = dict(
                zip(names, map(float, shift.shift_in_sigma), strict=True)
            )
            logger.info(
                "%-10s %-22s %s",
                label,
                configuration,
                "  ".join(f"{n} {s:+.3f}" for n, s in results[label][configuration].items()),
            )
    runner.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"points": points, "shift_in_sigma": results}, indent=1))
    for configuration in configurations:
        rows = np.array([list(results[p][configuration].values()) for p in results])
        names = list(next(iter(results.values()))[configuration])
        logger.info(
            "mean over points, %-22s %s",
            configuration,
            "  ".join(f"{n} {m:+.3f}" for n, m in zip(names, rows.mean(axis=0), strict=True)),
        )


if __name__ == "__main__":
    main()
