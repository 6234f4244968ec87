"""``cosmicnet verify-chain``: reweight a ClassNet chain with full CLASS.

    cosmicnet verify-chain chains/planck_classnet --n 400 --out work/verify [--workers 2]
        [--burn-in 0.3] [--seed 0] [--no-progress]

Draws N points of the chain in proportion to their weights, recomputes each
log-posterior with Cobaya's classy in place of ClassNet (the chain's own
``.updated.yaml`` gives likelihoods, priors and ``extra_args``), in parallel
processes, and writes ``OUT/summary.json`` (per parameter the shift of the mean
in chain standard deviations with its Monte Carlo error, the ratio of standard
deviations; the effective sample size of the weights; the distribution of the
log-posterior differences; ``max_abs_mean_shift_sigma`` and ``verdict``) and
``OUT/triangle.png`` (the ClassNet chain against the reweighted sample).
Every finished point is kept in ``OUT/points.jsonl``: rerun the same command
to resume after an interruption.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``verify-chain`` subcommand."""
    parser = subparsers.add_parser(
        "verify-chain",
        help="importance-reweight a ClassNet chain with full CLASS",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prefix", help="Cobaya output prefix of the chain (chains/name)")
    parser.add_argument("--n", type=int, default=400, help="points to recompute (default 400)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (rerun to resume)")
    parser.add_argument("--workers", type=int, default=1, help="parallel CLASS processes")
    parser.add_argument("--burn-in", type=float, default=0.3, help="fraction of each chain skipped")
    parser.add_argument("--seed", type=int, default=0, help="seed of the selection")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet verify-chain``."""
    from tqdm import tqdm

    from training.evaluation.reweighting import summarise_reweighting
    from training.evaluation.verify_chain import (
        TARGETS,
        NotAChainError,
        classy_info,
        done_points,
        prepare,
        read_chain,
        recompute,
    )

    if args.n < 2 or args.workers < 1 or not 0.0 <= args.burn_in < 1.0:
        logger.error("--n must be >= 2, --workers >= 1 and 0 <= --burn-in < 1")
        return 2
    try:
        chain = read_chain(args.prefix, args.burn_in)
        rows = prepare(args.out, chain, args.n, args.seed, args.burn_in)
    except (NotAChainError, ValueError) as error:
        logger.error("%s", error)
        return 2
    done = done_points(args.out)
    tasks = [
        (slot, {name: float(chain.samples.at[row, name]) for name in chain.sampled})
        for slot, row in enumerate(rows)
        if slot not in done
    ]
    logger.info("%d of %d points left to recompute with classy", len(tasks), len(rows))

    def progress(items: Any) -> Any:
        return tqdm(items, total=len(tasks), desc="classy", disable=args.no_progress)

    recompute(classy_info(chain.info), tasks, args.out, args.workers, progress)
    done = done_points(args.out)
    chain_logpost = -chain.samples["minuslogpost"].to_numpy(dtype=float)[rows]
    exact = np.array([done[slot]["logpost"] for slot in range(len(rows))])
    stds = chain.stds()
    names = [name for name in chain.sampled + chain.derived if stds[name] > 0.0]
    values = {name: chain.samples[name].to_numpy(dtype=float)[rows] for name in names}
    log_ratio = exact - chain_logpost
    summary = summarise_reweighting(values, log_ratio, stds, TARGETS)
    summary.update(chain=args.prefix, burn_in=args.burn_in, seed=args.seed, figures=[])
    try:
        summary["figures"].append(_plot(args, chain.sampled, values, log_ratio).name)
    except Exception as error:  # getdist fails on samples too small to smooth
        logger.warning("no triangle plot: %s", error)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    logger.info(
        "largest mean shift %.3f sigma, effective sample size %.0f of %d: %s",
        summary["max_abs_mean_shift_sigma"], summary["ess"], len(rows), summary["verdict"],
    )  # fmt: skip
    return 0


def _plot(
    args: argparse.Namespace, names: tuple[str, ...], values: dict, log_ratio: np.ndarray
) -> Path:
    """Triangle plot of the ClassNet chain and the reweighted sample."""
    from getdist import MCSamples

    from training.evaluation.chains import load_samples, triangle_plot
    from training.evaluation.reweighting import normalised_weights

    sampled = load_samples(args.prefix, args.burn_in)
    reweighted = MCSamples(
        samples=np.column_stack([values[name] for name in names]),
        weights=normalised_weights(log_ratio),
        names=list(names),
        labels=[sampled.parLabel(name) for name in names],
        settings={"ignore_rows": 0},
    )
    path = args.out / "triangle.png"
    return triangle_plot(
        [sampled, reweighted], ["ClassNet", "reweighted to CLASS"], list(names), path
    )
