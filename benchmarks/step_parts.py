"""Where the network step's time goes, part by part, on one thread.

    .venv/bin/python benchmarks/step_parts.py [--networks DIR] [--repeat 7] [--non-linear none]

At the Planck best fit (the set's fixed CLASS settings, lensed C_l to the
set's l_max), CLASS runs to thermodynamics and prepares its perturbation
structure once; then each part of what ``NetworkSourceProvider`` and the
install do is timed on its own, best of ``--repeat`` runs: the features
(CLASS's background and thermodynamics tables, splined), the k bases, each
network's forward pass and output inverse (for a network averaged over
references of tau_reio and H0, all of it together, input moves included),
the spline map onto CLASS's k list, the move of the sources onto it and
the install into CLASS, each as ``NetworkSourceProvider`` and the hook run
it (float32 sources).  A sum of best times, so a lower bound of the step's
time in a chain, where caches are colder.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.features import compute_features, k_bases
from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.networks.inputs import assemble_inputs
from cosmicnet_cobaya.networks.network_set import derived_sources
from cosmicnet_cobaya.networks.provider import (
    NetworkSourceProvider,
    cosmology_params,
)
from cosmicnet_cobaya.networks.time_ranges import consecutive_rows, rows_in_range
from cosmicnet_cobaya.planck import BEST_FIT
from cosmicnet_cobaya.sources import KSplineMap, SourceGrid, base_sources
from training.evaluation.pairs import ValidationSettings

logger = logging.getLogger("step_parts")


def best_ms(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Shortest of ``repeat`` wall times [ms] and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=Path, default=DEFAULT_NETWORKS)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--non-linear", default="none", choices=("hmcode", "halofit", "none"))
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # CLASS reads it at each parallel region
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    provider = NetworkSourceProvider(args.networks)
    networks = provider.networks
    settings = ValidationSettings.for_network_set(networks.metadata, args.non_linear)
    cosmo = bridge.classy.Class()
    point = {name: value for name, value in BEST_FIT.items() if name != "A_planck"}
    cosmo.set(settings.class_settings(point))
    rows: list[tuple[str, float]] = []
    with threadpool_limits(limits=1):
        cosmo.compute(level=["thermodynamics"])
        prepared = bridge.prepare_perturbations(cosmo)
        params = cosmology_params(cosmo, networks.metadata.param_names)
        ms, features = best_ms(lambda: compute_features(cosmo, prepared.tau, params), args.repeat)
        rows.append(("features (tables, splines)", ms))
        ms, bases = best_ms(lambda: k_bases(features, networks.k), args.repeat)
        rows.append(("k bases", ms))
        tau_rec = features.scalars["tau_rec"]
        norm = networks.metadata.normalisation
        scaled = derived_sources(prepared.source_names)
        values: dict[str, np.ndarray] = {}
        for source in base_sources(prepared.source_names, scaled):
            # As NetworkSourceProvider: float32 sources, each network's rows written in place.
            values[source] = np.full((prepared.tau.size, networks.k.size), np.nan, np.float32)
            for entry in networks.metadata.networks_of(source):
                mask = rows_in_range(features.tau, tau_rec, entry.tau_range)
                served = consecutive_rows(mask)
                if entry.references:
                    # Inputs, forward passes and inverses at every reference, and their mean.
                    ms, _ = best_ms(
                        lambda e=entry, s=served, o=values[source][served]: networks._predict_rows(
                            e, features, bases, s, out=o
                        ),
                        args.repeat,
                    )
                    label = f"{len(entry.references)} references"
                    rows.append((f"{entry.name}: {label} ({served.stop - served.start} rows)", ms))
                    continue
                inputs = assemble_inputs(
                    features.rows(served), entry.inputs, norm, bases.rows(served)
                )
                model = networks.models[entry.name]
                ms_forward, raw = best_ms(lambda m=model, i=inputs: m(i), args.repeat)
                rows_out = values[source][served]
                ms_inverse, _ = best_ms(
                    lambda e=entry, r=raw, o=rows_out: e.output.inverse(r, out=o), args.repeat
                )
                rows.append(
                    (f"{entry.name}: forward ({served.stop - served.start} rows)", ms_forward)
                )
                rows.append((f"{entry.name}: output inverse", ms_inverse))
        k_to = np.clip(prepared.k, networks.k[0], networks.k[-1])
        ms, _ = best_ms(lambda: KSplineMap.between(networks.k, k_to), args.repeat)
        rows.append(("spline map onto CLASS's k", ms))
        grid = SourceGrid(k=networks.k, values=values, scaled=scaled)
        ms, moved = best_ms(lambda: grid.on_class_grid(prepared), args.repeat)
        rows.append((f"move onto CLASS's k ({len(values)} sources, float32)", ms))
        ms, _ = best_ms(lambda: bridge.install_sources(cosmo, moved), args.repeat)
        rows.append(("install into CLASS", ms))
    cosmo.struct_cleanup()
    logger.info(
        "%d tau slices, %d network k values -> %d CLASS k values, one thread, best of %d",
        prepared.tau.size,
        networks.k.size,
        prepared.k.size,
        args.repeat,
    )
    for name, ms in rows:
        logger.info("%-40s %8.2f ms", name, ms)
    logger.info("%-40s %8.2f ms", "sum", sum(ms for _, ms in rows))


if __name__ == "__main__":
    main()
