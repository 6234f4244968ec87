"""``python -m cosmicnet_cobaya.demo``: ClassNet against Cobaya's classy.

Builds two Cobaya models at the Planck 2018 best fit, one with Cobaya's classy
theory and one with ClassNet, and prints how far apart their lensed spectra
and plik_lite chi2 are, and the time each takes per point.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from cobaya.model import get_model

from cosmicnet_cobaya.compare import max_relative_differences
from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS, find_packages_path, model_info

L_MAX = 2508
CL_REQUEST = {"tt": L_MAX, "te": L_MAX, "ee": L_MAX, "pp": L_MAX}


def _evaluate(model: Any, theory_name: str) -> tuple[dict[str, Any], float, float]:
    start = time.perf_counter()
    loglikes, _ = model.loglikes({}, return_derived=True)
    seconds = time.perf_counter() - start
    chi2 = float(-2 * sum(loglikes))
    return model.provider.get_Cl(ell_factor=False, units="1"), chi2, seconds


def run_demo(sources: str, non_linear: str) -> None:
    """Compare ClassNet (``sources``) with classy at the Planck best fit."""
    packages_path = find_packages_path()
    extra_args = {**LCDM_EXTRA_ARGS, "non_linear": non_linear}
    theories = {
        "classy": {"classy": {"extra_args": extra_args}},
        "ClassNet": {"cosmicnet_cobaya.ClassNet": {"extra_args": extra_args, "sources": sources}},
    }
    results = {}
    for label, theory in theories.items():
        model = get_model(model_info(theory, BEST_FIT, packages_path))
        model.add_requirements({"Cl": CL_REQUEST})
        results[label] = _evaluate(model, label)
        if label == "ClassNet":
            steps = model.theory["cosmicnet_cobaya.ClassNet"].get_step_timings()
        model.close()
    (cl_ref, chi2_ref, t_ref), (cl_net, chi2_net, t_net) = results["classy"], results["ClassNet"]
    differences = max_relative_differences(cl_ref, cl_net, 2, L_MAX)
    print(
        f"\nClassNet (sources: {sources}) vs classy, Planck 2018 best fit, non_linear={non_linear}"
    )
    print(f"  max relative difference, 2 <= l <= {L_MAX}:")
    for name, value in differences.items():
        note = " (TE relative to sqrt(TT EE))" if name == "te" else ""
        print(f"    {name.upper()}: {value:.2e}{note}")
    if packages_path is None:
        print("  plik_lite data not found: chi2 not computed (set COBAYA_PACKAGES_PATH)")
    else:
        print(
            f"  plik_lite TTTEEE chi2: classy {chi2_ref:.4f}  ClassNet {chi2_net:.4f}  "
            f"difference {chi2_net - chi2_ref:+.2e}"
        )
    print(f"  time per point: classy {t_ref:.2f} s  ClassNet {t_net:.2f} s")
    print("  ClassNet steps: " + ", ".join(f"{k} {v:.3f} s" for k, v in steps.items()))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry of the demo."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sources",
        choices=("network", "class"),
        default="class",
        help="where ClassNet takes its sources from (default: class)",
    )
    parser.add_argument("--non-linear", default="hmcode", choices=("hmcode", "halofit", "none"))
    args = parser.parse_args(argv)
    run_demo(args.sources, args.non_linear)


if __name__ == "__main__":
    main()
