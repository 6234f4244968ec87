"""How well a polynomial in the parameters describes ln|delta_m| at late times, with and
without the background's growth factor divided out.

    .venv/bin/python benchmarks/growth_probe.py --config configs/w0wa_mnu.yaml \
        --data work/w0wa [--n 360] [--fit 280] [--degree 2]

For each cosmology of ``<data>/training.h5``, ln|delta_m| is read at a few
redshifts and k values, and CLASS's background gives the growth factor D(z)
relative to z = 50. A polynomial of the given degree in the standardised
parameters is fitted per (z, k) on the first ``--fit`` cosmologies and its
residual rms printed for the rest, for ln|delta_m| and for ln|delta_m| - ln D.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from cosmicnet_cobaya.hook.bridge import classy
from training.configuration.family import load_config
from training.generation.dataset import open_set

REDSHIFTS = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 10.0])
K_VALUES = np.geomspace(1e-3, 1.0, 12)
GROWTH_REFERENCE_Z = 50.0
OUTPUT_KEYS = ("output", "lensing", "non_linear", "compute damping scale")


def growth_and_times(settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Conformal times of REDSHIFTS and ln D(z) / D(GROWTH_REFERENCE_Z), from the background."""
    cosmo = classy.Class()
    cosmo.set(settings)
    cosmo.compute(level=["background"])
    background = cosmo.get_background()
    times = np.interp(REDSHIFTS, background["z"][::-1], background["conf. time [Mpc]"][::-1])
    reference = cosmo.scale_independent_growth_factor(GROWTH_REFERENCE_Z)
    growth = [cosmo.scale_independent_growth_factor(z) / reference for z in REDSHIFTS]
    cosmo.struct_cleanup()
    cosmo.empty()
    return times, np.log(growth)


def read(config_path: Path, data: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameters, ln|delta_m| at (z, k), and ln D(z) of the first ``n`` cosmologies."""
    config = load_config(config_path)
    fixed = {k: v for k, v in config.extra_args.items() if k not in OUTPUT_KEYS}
    params, values, growths = [], [], []
    with open_set(data / "training.h5") as generated:
        columns = np.searchsorted(generated.k, K_VALUES)
        for index in generated.indices[:n]:
            cosmology = generated.cosmology(int(index), targets=["delta_m"])
            point = cosmology.features.params
            times, growth = growth_and_times({**fixed, **point})
            log_source = np.log(np.abs(cosmology.targets["delta_m"][:, columns]))
            tau = cosmology.features.tau
            values.append([[np.interp(t, tau, log_source[:, j]) for j in range(len(columns))]
                           for t in times])  # fmt: skip
            growths.append(growth)
            params.append([point[name] for name in config.param_names])
    return np.array(params), np.array(values), np.array(growths)


def design(x: np.ndarray, degree: int) -> np.ndarray:
    """Every monomial of the columns of ``x`` up to ``degree``."""
    columns = [np.ones(len(x))]
    for order in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(x.shape[1]), order):
            columns.append(np.prod(x[:, combo], axis=1))
    return np.array(columns).T


def held_out_rms(x: np.ndarray, y: np.ndarray, fit: int, degree: int) -> np.ndarray:
    """Residual rms per redshift of a per-(z, k) polynomial fit, on the held-out rows."""
    matrix = design((x - x.mean(0)) / x.std(0), degree)
    flat = y.reshape(len(y), -1)
    coefficients, *_ = np.linalg.lstsq(matrix[:fit], flat[:fit], rcond=None)
    residual = (flat[fit:] - matrix[fit:] @ coefficients).reshape(-1, *y.shape[1:])
    return np.sqrt((residual**2).mean(axis=(0, 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/w0wa_mnu.yaml"))
    parser.add_argument("--data", type=Path, default=Path("work/w0wa"))
    parser.add_argument("--n", type=int, default=360)
    parser.add_argument("--fit", type=int, default=280)
    parser.add_argument("--degree", type=int, default=2)
    args = parser.parse_args()
    params, values, growth = read(args.config, args.data, args.n)
    print(f"{len(params)} cosmologies, fitted on {args.fit}; held-out rms of ln at z = "
          f"{REDSHIFTS.tolist()}")  # fmt: skip
    for label, target in (("ln|S|", values), ("ln|S| - ln D", values - growth[:, :, None])):
        rms = held_out_rms(params, target, args.fit, args.degree)
        print(f"  degree {args.degree} {label:13s} {np.round(rms, 5).tolist()}")


if __name__ == "__main__":
    main()
