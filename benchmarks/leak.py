"""Resident-memory growth of ClassNet's hooked CLASS over many evaluations.

    python benchmarks/leak.py --evaluations 300 --l-max 500

Every evaluation changes the cosmology, runs CLASS to thermodynamics, prepares
the perturbation structure through the bridge, installs sources from a private
full CLASS run (``sources: class``) and runs the downstream modules. Prints the
RSS after the first evaluation and after the last, and writes a JSON record.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import psutil

from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS
from cosmicnet_cobaya.sources import ClassSourceProvider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=300)
    parser.add_argument("--l-max", type=int, default=500)
    parser.add_argument("--out", default=None, help="JSON file for the record")
    args = parser.parse_args()

    process = psutil.Process()
    cosmo = HookedClass()
    cosmo.source_provider = ClassSourceProvider()
    rng = np.random.default_rng(1)
    rss_mb = []
    start = time.perf_counter()
    for _ in range(args.evaluations):
        scale = 1 + 0.02 * rng.standard_normal(4)
        cosmo.set(
            {
                **LCDM_EXTRA_ARGS,
                "output": "tCl,pCl,lCl,mPk",
                "lensing": "yes",
                "non_linear": "hmcode",
                "l_max_scalars": args.l_max,
                "omega_b": BEST_FIT["omega_b"] * scale[0],
                "omega_cdm": BEST_FIT["omega_cdm"] * scale[1],
                "H0": BEST_FIT["H0"] * scale[2],
                "tau_reio": BEST_FIT["tau_reio"] * scale[3],
            }
        )
        cosmo.compute()
        cosmo.lensed_cl(args.l_max)
        rss_mb.append(process.memory_info().rss / 2**20)
    elapsed = time.perf_counter() - start
    record = {
        "evaluations": args.evaluations,
        "l_max": args.l_max,
        "rss_after_first_mb": rss_mb[0],
        "rss_after_last_mb": rss_mb[-1],
        "growth_mb": rss_mb[-1] - rss_mb[0],
        "growth_after_10_mb": rss_mb[-1] - rss_mb[min(9, len(rss_mb) - 1)],
        "seconds_per_evaluation": elapsed / args.evaluations,
    }
    print(json.dumps(record, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({**record, "rss_mb": rss_mb}, handle)


if __name__ == "__main__":
    main()
