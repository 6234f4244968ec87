"""Throughput and size of data generation at default CLASS precision.

    .venv/bin/python benchmarks/generate_rate.py [--n 8] [--workers 2] [--out work/bench_rate]

Runs ``cosmicnet generate`` on configs/lcdm.yaml reduced to one set of N
cosmologies (same box, CLASS settings and k grid), then reports cosmologies
per hour (wall time of the CLASS work, k-grid set-up excluded and shown
separately) and bytes per cosmology of the consolidated HDF5 file.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import time
from pathlib import Path

from training.configuration.family import parse_config, read_yaml
from training.generation.dataset import open_set
from training.generation.runner import generate, prepare_family

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "work" / "bench_rate")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    raw = copy.deepcopy(read_yaml(ROOT / "configs" / "lcdm.yaml"))
    raw["sets"] = {"training": {"size": args.n, "seed": 1}}
    config = parse_config(raw)
    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    prepare_family(config, args.out)
    setup = time.perf_counter() - start
    summary = generate(config, args.out, workers=args.workers, progress=False)
    path = args.out / "training.h5"
    with open_set(path) as data:
        n_complete = len(data)
        first = data.cosmology(int(data.indices[0]))
        shape = {name: value.shape for name, value in first.targets.items()}
    report = {
        "cosmologies": n_complete,
        "failed": summary.failed,
        "workers": args.workers,
        "k_grid_setup_s": round(setup, 2),
        "generation_wall_s": round(summary.seconds, 2),
        "cosmologies_per_hour": round(summary.computed / summary.seconds * 3600.0, 1),
        "file_bytes": path.stat().st_size,
        "bytes_per_cosmology": round(path.stat().st_size / max(n_complete, 1)),
        "target_shape": {name: list(value) for name, value in shape.items()},
    }
    logging.getLogger("benchmark").info("%s", json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
