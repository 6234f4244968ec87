"""``python -m cosmicnet_cobaya.demo``: ClassNet against Cobaya's classy.

Builds Cobaya models at the Planck 2018 best fit and a few other points
(drawn within +-2 sigma, inside the default network set's domain), one with
Cobaya's classy theory and one with ClassNet, and prints per point how far
apart their lensed spectra and plik_lite chi2 are, and the time each takes.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from cobaya.model import get_model

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.compare import max_relative_differences
from cosmicnet_cobaya.networks.accuracy import L_MAX
from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS, find_packages_path, model_info

CL_REQUEST = {"tt": L_MAX, "te": L_MAX, "ee": L_MAX, "pp": L_MAX}
SIGMA = {"omega_b": 0.00015, "omega_cdm": 0.0012, "H0": 0.54, "n_s": 0.0042, "tau_reio": 0.0073}
"""Planck 2018 1-sigma errors, for drawing the extra points."""


def demo_points(count: int, seed: int = 1) -> list[dict[str, float]]:
    """The best fit and ``count - 1`` points within +-2 sigma of it."""
    rng = np.random.default_rng(seed)
    points = [dict(BEST_FIT)]
    for _ in range(count - 1):
        shift = {name: sigma * rng.uniform(-2.0, 2.0) for name, sigma in SIGMA.items()}
        points.append({**BEST_FIT, **{name: BEST_FIT[name] + d for name, d in shift.items()}})
    return points


CLASSNET = "cosmicnet_cobaya.ClassNet"
SAMPLED = ("omega_b", "omega_cdm", "H0", "n_s", "tau_reio", "logA")


def _model(theory: dict[str, Any], packages_path: Any, derived: tuple[str, ...] = ()) -> Any:
    """One Cobaya model per theory, its parameters free (wide priors), spectra requested."""
    info = model_info(theory, BEST_FIT, packages_path)
    for name in SAMPLED + (("A_planck",) if packages_path is not None else ()):
        info["params"][name] = {"prior": {"min": -1e3, "max": 1e3}, "drop": name == "logA"}
    for name in derived:
        info["params"][name] = None
    model = get_model(info)
    model.add_requirements({"Cl": CL_REQUEST})
    return model


def _evaluate(model: Any, point: dict[str, float]) -> dict[str, Any]:
    values = {name: point[name] for name in model.parameterization.sampled_params()}
    start = time.perf_counter()
    loglikes, derived = model.loglikes(values, return_derived=True)
    seconds = time.perf_counter() - start
    classnet = model.theory.get(CLASSNET)
    return {
        "cl": model.provider.get_Cl(ell_factor=False, units="1"),
        "chi2": float(-2 * sum(loglikes)),
        "seconds": seconds,
        "derived": dict(zip(model.parameterization.derived_params(), derived, strict=True)),
        "steps": classnet.get_step_timings() if classnet is not None else {},
    }


def run_demo(sources: str, non_linear: str, n_points: int) -> None:
    """Compare ClassNet (``sources``) with classy at ``n_points`` points."""
    packages_path = find_packages_path()
    extra_args = {**LCDM_EXTRA_ARGS, "non_linear": non_linear}
    classy_model = _model({"classy": {"extra_args": extra_args}}, packages_path)
    classnet = {"extra_args": extra_args, "sources": sources}
    classnet_model = _model({CLASSNET: classnet}, packages_path, derived=("cosmicnet_served",))
    print(
        f"\nClassNet (sources: {sources}) vs classy, non_linear={non_linear}, lensed C_l to "
        f"l={L_MAX}; max relative difference over 2 <= l <= {L_MAX} (TE: relative to "
        "sqrt(TT EE))"
    )
    if packages_path is None:
        print("plik_lite data not found: chi2 not computed (set COBAYA_PACKAGES_PATH)")
    print(
        f"{'point':>9} {'TT':>8} {'EE':>8} {'TE':>8} {'PP':>8} {'dchi2':>9} "
        f"{'served':>6} {'classy s':>8} {'ClassNet s':>10}"
    )
    steps: dict[str, float] = {}
    for index, point in enumerate(demo_points(n_points)):
        reference = _evaluate(classy_model, point)
        net = _evaluate(classnet_model, point)
        differences = max_relative_differences(reference["cl"], net["cl"], 2, L_MAX)
        dchi2 = net["chi2"] - reference["chi2"] if packages_path is not None else float("nan")
        label = "best fit" if index == 0 else f"{index}"
        print(
            f"{label:>9} {differences['tt']:8.1e} {differences['ee']:8.1e} "
            f"{differences['te']:8.1e} {differences['pp']:8.1e} {dchi2:+9.3f} "
            f"{net['derived']['cosmicnet_served']:6.0f} {reference['seconds']:8.2f} "
            f"{net['seconds']:10.2f}"
        )
        steps = net["steps"]
    print(
        "ClassNet steps of the last point: " + ", ".join(f"{k} {v:.3f} s" for k, v in steps.items())
    )
    for model in (classy_model, classnet_model):
        model.close()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry of the demo."""
    shipped = (DEFAULT_NETWORKS / "metadata.json").is_file()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sources",
        choices=("network", "class"),
        default="network" if shipped else "class",
        help="where ClassNet takes its sources from (default: network when the default "
        "network set is installed, else class)",
    )
    parser.add_argument("--non-linear", default="hmcode", choices=("hmcode", "halofit", "none"))
    parser.add_argument("--points", type=int, default=4, help="best fit plus N-1 others")
    args = parser.parse_args(argv)
    run_demo(args.sources, args.non_linear, args.points)


if __name__ == "__main__":
    main()
