"""``cosmicnet compare-chains``: two posteriors side by side (paper figure 8).

cosmicnet compare-chains chains/classnet chains/classy --out work/compare
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``compare-chains`` subcommand."""
    parser = subparsers.add_parser(
        "compare-chains",
        help="triangle plot and mean/sigma shifts of two Cobaya chains",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("chain_a", help="chain root of the first run (e.g. chains/classnet)")
    parser.add_argument("chain_b", help="chain root of the reference run (e.g. chains/classy)")
    parser.add_argument("--labels", nargs=2, default=("ClassNet", "classy"))
    parser.add_argument("--burn-in", type=float, default=0.3, help="fraction of rows dropped")
    parser.add_argument("--params", nargs="+", default=None, help="parameters (default: common)")
    parser.add_argument("--out", type=Path, required=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet compare-chains``."""
    from training.evaluation.chains import (
        common_parameters,
        compare,
        format_shifts,
        load_samples,
        triangle_plot,
    )

    try:
        samples = [load_samples(root, args.burn_in) for root in (args.chain_a, args.chain_b)]
    except Exception as error:  # getdist raises plain exceptions for missing files
        logger.error("cannot read the chains: %s", error)
        return 2
    names = args.params or common_parameters(*samples)
    if not names:
        logger.error("the chains share no sampled parameter")
        return 2
    shifts = compare(*samples, names)
    args.out.mkdir(parents=True, exist_ok=True)
    figure = triangle_plot(samples, list(args.labels), names, args.out / "triangle.png")
    record = {
        "chains": [str(args.chain_a), str(args.chain_b)],
        "labels": list(args.labels),
        "burn_in": args.burn_in,
        "shifts": {
            s.name: {
                "mean_a": s.mean_a,
                "mean_b": s.mean_b,
                "sigma_a": s.sigma_a,
                "sigma_b": s.sigma_b,
                "mean_shift_in_sigma": s.mean_shift_in_sigma,
                "sigma_ratio": s.sigma_ratio,
            }
            for s in shifts
        },
        "figure": figure.name,
    }
    (args.out / "shifts.json").write_text(json.dumps(record, indent=2))
    print(format_shifts(shifts, *args.labels))
    return 0
