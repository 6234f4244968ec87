"""``cosmicnet benchmark``: speed of ClassNet against full CLASS (paper Table 5).

cosmicnet benchmark --networks NETDIR --threads 1 2 --n 5 --out work/benchmark
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from training.commands.validate import add_network_options, load_provider

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``benchmark`` subcommand."""
    parser = subparsers.add_parser(
        "benchmark",
        help="time the perturbation step and a whole evaluation, CLASS vs networks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_network_options(parser)
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="CLASS thread counts")
    parser.add_argument("--n", type=int, default=5, help="cosmologies drawn in the domain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--non-linear", default="hmcode", choices=("hmcode", "halofit", "none"))
    parser.add_argument("--out", type=Path, required=True, help="folder for benchmark.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet benchmark``."""
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from training.benchmark import format_table, run_benchmark
    from training.validate import ValidationSettings, draw_points

    if any(count < 1 for count in args.threads) or args.n < 1:
        logger.error("--threads and --n must be positive")
        return 2
    try:
        provider, metadata = load_provider(args)
    except NetworkSetError as error:
        logger.error("%s", error)
        return 2
    settings = ValidationSettings.for_network_set(metadata, args.non_linear)
    points = [settings.class_settings(p) for p in draw_points(metadata.domain, args.n, args.seed)]
    results = run_benchmark(provider, {}, points, args.threads, settings.l_max)
    results["sources"] = args.sources
    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS

    results["networks"] = str(args.networks or DEFAULT_NETWORKS)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2))
    print(format_table(results))
    return 0
