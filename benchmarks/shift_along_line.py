"""Is the posterior shift a smooth function of the cosmology? A scan along a line.

    .venv/bin/python benchmarks/shift_along_line.py [--networks DIR] [--seed 13]
        [--chain-point 16] [--steps -0.2:1.2:0.1] [--fine 0.002] [--fine-count 6]
        [--non-linear none] [--out work/shift_line.json]

The chain point ``--chain-point`` of ``cosmicnet validate --fisher-covmat
configs/mcmc_lcdm.covmat --seed S`` is joined to the Planck best fit by a
line, theta(t) = best fit + t (chain point - best fit).  At each t of
``--steps`` and at ``--fine-count`` points spaced ``--fine`` around t = 1,
full CLASS and ClassNet compute the lensed spectra; the Fisher shift of the
binned plik_lite difference (Jacobian of full CLASS at the best fit, the
same for every t) is recorded, and so are the shifts of each code's own
departure from a quadratic in t fitted over the coarse scan: a smooth
emulator cannot follow a reference that is noisy on small scales in
parameter space, and this tells which of the two is.  A figure of the shifts against t is
written beside the JSON file.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.networks.network_set import read_metadata
from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.planck import BEST_FIT, find_packages_path
from training.evaluation.fisher import posterior_shift
from training.evaluation.pairs import PairRunner, ValidationSettings, draw_points
from training.evaluation.plik import PlikLite
from training.evaluation.validate import fisher_points, plik_fisher_inputs

logger = logging.getLogger("shift_along_line")


def parse_steps(text: str) -> np.ndarray:
    """``start:stop:step`` (stop included) as an array."""
    start, stop, step = (float(part) for part in text.split(":"))
    return np.round(np.arange(start, stop + step / 2, step), 10)


def plot_shifts(result: dict, path: Path, chain_point: int, seed: int) -> None:
    """Shift of each parameter against t, and the largest shift of CLASS's own wiggles."""
    ts = np.array([float(key) for key in result["points"]])
    order = np.argsort(ts)
    records = [list(result["points"].values())[i] for i in order]
    names = list(records[0]["delta"])
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for name in names:
        values = [record["delta"][name] for record in records]
        axes.plot(ts[order], values, marker=".", label=name)
    wiggle = [max(abs(v) for v in record["class_minus_quadratic"].values()) for record in records]
    axes.plot(ts[order], wiggle, "k--", label="CLASS - quadratic (largest)")
    axes.axhspan(-0.1, 0.1, color="0.9", zorder=0)
    axes.set_xlabel(f"t (0: Planck best fit, 1: seed-{seed} chain point {chain_point})")
    axes.set_ylabel("Fisher shift, ClassNet - CLASS [sigma]")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=Path, default=DEFAULT_NETWORKS)
    parser.add_argument("--covmat", type=Path, default=Path("configs/mcmc_lcdm.covmat"))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--chain-point", type=int, default=16)
    parser.add_argument("--steps", default="-0.2:1.2:0.1")
    parser.add_argument("--fine", type=float, default=0.002)
    parser.add_argument("--fine-count", type=int, default=6)
    parser.add_argument("--non-linear", default="none")
    parser.add_argument("--out", type=Path, default=Path("work/shift_line.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    metadata = read_metadata(args.networks)
    provider = NetworkSourceProvider(args.networks)
    settings = ValidationSettings.for_network_set(metadata, args.non_linear)
    packages_path = find_packages_path()
    if packages_path is None:
        raise SystemExit("plik_lite data not found (set COBAYA_PACKAGES_PATH)")
    plik = PlikLite.load(packages_path)
    template = draw_points(metadata.domain, 1, 0)
    chain = fisher_points(template, args.chain_point + 2, args.covmat, args.seed, metadata.domain)
    end = chain[f"chain_{args.chain_point}"]
    names = list(end)
    start = {name: BEST_FIT[name] for name in names}
    logger.info("line from the best fit to chain_%d: %s", args.chain_point, end)

    runner = PairRunner(provider, settings)
    reference = plik.binned(runner.class_spectra(start).dl)
    fisher_names, jacobian, priors = plik_fisher_inputs(runner, plik, start, reference)

    def shift_of(delta: np.ndarray) -> dict[str, float]:
        estimate = posterior_shift(fisher_names, jacobian, plik.inverse_covariance, delta, priors)
        return dict(zip(fisher_names, map(float, estimate.shift_in_sigma), strict=True))

    coarse = parse_steps(args.steps)
    half = args.fine * (args.fine_count - 1) / 2
    fine = np.round(np.linspace(1 - half, 1 + half, args.fine_count), 10)
    binned: dict[float, dict[str, np.ndarray]] = {}
    for t in sorted(set(coarse) | set(fine)):
        point = {name: start[name] + t * (end[name] - start[name]) for name in names}
        pair = runner.spectra(point)
        binned[t] = {label: plik.binned(pair[label].dl) for label in ("class", "network")}
        shifts = shift_of(binned[t]["network"] - binned[t]["class"])
        worst = max(shifts, key=lambda name: abs(shifts[name]))
        logger.info("t = %+.3f: largest shift %+.3f (%s)", t, shifts[worst], worst)
    runner.close()

    ts = np.array(coarse)
    result: dict[str, object] = {"start": start, "end": end, "points": {}}
    fits = {}
    for label in ("class", "network"):
        table = np.array([binned[t][label] for t in ts])
        coefficients = np.polynomial.polynomial.polyfit(ts, table, 2)
        fits[label] = coefficients
    for t, entry in binned.items():
        record = {"delta": shift_of(entry["network"] - entry["class"])}
        for label in ("class", "network"):
            smooth = np.polynomial.polynomial.polyval(t, fits[label])
            record[f"{label}_minus_quadratic"] = shift_of(entry[label] - smooth)
        result["points"][f"{t:+.4f}"] = record
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    plot_shifts(result, args.out.with_suffix(".png"), args.chain_point, args.seed)
    print(f"{'t':>8} {'net-CLASS':>24} {'CLASS-quad':>24} {'net-quad':>24}")
    for key, record in result["points"].items():
        cells = []
        for part in ("delta", "class_minus_quadratic", "network_minus_quadratic"):
            shifts = record[part]
            worst = max(shifts, key=lambda name: abs(shifts[name]))
            cells.append(f"{shifts[worst]:+.3f} {worst:>12}")
        print(f"{key:>8} " + " ".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
