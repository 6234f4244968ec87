"""The k-grid interpolation floor under every network error.

    .venv/bin/python benchmarks/kgrid_floor.py [--config configs/lcdm.yaml]

For a few cosmologies of the domain (centre and opposite corners), CLASS's
own sources are produced exactly as ``cosmicnet generate`` stores them
(moved onto the family k grid, in the storage dtype), installed through the
hook by a provider that serves them (moved back onto CLASS's own k list by
``SourceGrid.on_class_grid``), and the lensed C_l up to the family's l_max are
compared with a full CLASS run: max relative difference of TT, EE, PP, and TE
relative to sqrt(TT EE) (TE crosses zero).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.sources import SourceGrid
from training.configuration.family import StorageSpec, load_config
from training.generation.cosmology import compute_cosmology
from training.generation.kgrid import build_k_grid

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("kgrid_floor")


class StoredSourcesProvider:
    """Serves the stored targets of one cosmology (p = sqrt(6) t2)."""

    def __init__(self, k: np.ndarray, tau: np.ndarray, targets: dict[str, np.ndarray]) -> None:
        values = {name: np.asarray(value, dtype=np.float64) for name, value in targets.items()}
        values["p"] = np.sqrt(6.0) * values["t2"]
        self.grid = SourceGrid(k=k, values=values)
        self.tau = tau

    def sources_for(self, cosmo: object, prepared: bridge.PreparedPerturbations) -> SourceGrid:
        if not np.array_equal(prepared.tau, self.tau):
            raise ValueError("tau sampling differs from the stored one")
        return self.grid


def lensed(cosmo: object, l_max: int) -> dict[str, np.ndarray]:
    cls = cosmo.lensed_cl(l_max)
    return {name: cls[name][2:] for name in ("tt", "ee", "te", "pp")}


def max_relative(test: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, float]:
    out = {name: float(np.max(np.abs(test[name] / ref[name] - 1.0))) for name in ("tt", "ee", "pp")}
    out["te"] = float(np.max(np.abs(test["te"] - ref["te"]) / np.sqrt(ref["tt"] * ref["ee"])))
    return out


def floor_for(config, k: np.ndarray, point: dict[str, float]) -> dict[str, float]:
    settings = config.class_settings(point)
    full = bridge.classy.Class()
    full.set(settings)
    full.compute()
    reference = lensed(full, config.l_max)
    full.struct_cleanup()
    result = compute_cosmology(config, k, "floor", 0, point)
    if not result.ok:
        raise RuntimeError(result.error)
    hooked = HookedClass()
    hooked.source_provider = StoredSourcesProvider(k, result.tau, result.targets)
    hooked.set(settings)
    hooked.compute()
    test = lensed(hooked, config.l_max)
    hooked.struct_cleanup()
    return max_relative(test, reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "lcdm.yaml")
    parser.add_argument("--density", type=float, default=None, help="override k_grid.density")
    parser.add_argument("--points", default="centre,low,high,mixed", help="which cosmologies")
    parser.add_argument("--no-float64", action="store_true", help="skip the float64 check")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = load_config(args.config)
    if args.density is not None:
        config = dataclasses.replace(
            config, k_grid=dataclasses.replace(config.k_grid, density=args.density)
        )
    grid = build_k_grid(config)
    lows = {p.name: p.low for p in config.params}
    highs = {p.name: p.high for p in config.params}
    centre = {p.name: p.centre for p in config.params}
    mixed = {p.name: (p.low if i % 2 else p.high) for i, p in enumerate(config.params)}
    report = {"k_size": int(grid.k.size), "k_range": [float(grid.k[0]), float(grid.k[-1])]}
    candidates = {"centre": centre, "low": lows, "high": highs, "mixed": mixed}
    labels = args.points.split(",")
    for label in labels:
        report[label] = floor_for(config, grid.k, candidates[label])
        logger.info("%s (%s): %s", label, config.storage.dtype, report[label])
    if not args.no_float64:
        as64 = dataclasses.replace(config, storage=StorageSpec(dtype="float64"))
        report["mixed_float64"] = floor_for(as64, grid.k, mixed)
        logger.info("mixed (float64): %s", report["mixed_float64"])
    worst = {
        name: max(report[label][name] for label in labels) for name in ("tt", "ee", "te", "pp")
    }
    report["worst_stored"] = worst
    logger.info("%s", json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
