"""``cosmicnet benchmark``: speed of ClassNet against full CLASS (paper Table 5).

Per non-linear mode and thread count, in one run: the perturbation step, a
whole lensed-C_l evaluation, a primordial-only step (A_s, n_s changed) and
ClassNet's steps; with --chain-steps, the wall time per accepted step of the
same short MCMC with ClassNet and with classy.

cosmicnet benchmark --threads 1 --n 5 --non-linear hmcode none --out work/benchmark
cosmicnet benchmark --n 3 --chain-steps 20 --out work/benchmark
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from training.commands.validate import add_network_options, load_provider

logger = logging.getLogger(__name__)
CHAIN_CONFIGS = [Path("configs/mcmc_classnet.yaml"), Path("configs/mcmc_classy.yaml")]


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
    parser.add_argument(
        "--non-linear", nargs="+", default=["hmcode", "none"],
        choices=("hmcode", "halofit", "none"), help="non-linear modes (default: both)",
    )  # fmt: skip
    parser.add_argument(
        "--chain-steps", type=int, default=0,
        help="also run --chain-configs to this many accepted MCMC steps each (default 0: no)",
    )  # fmt: skip
    parser.add_argument(
        "--chain-configs", type=Path, nargs=2, default=CHAIN_CONFIGS, metavar="YAML",
        help="ClassNet and classy cobaya-run configs (default: configs/mcmc_classnet.yaml "
        "configs/mcmc_classy.yaml)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="folder for benchmark.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet benchmark``."""
    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS, ClassNet
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from training.evaluation.benchmark import format_table, run_benchmark
    from training.evaluation.pairs import ValidationSettings, draw_points

    if any(count < 1 for count in args.threads) or args.n < 1 or args.chain_steps < 0:
        logger.error("--threads and --n must be positive, --chain-steps at least 0")
        return 2
    missing = [str(path) for path in args.chain_configs if not path.is_file()]
    if args.chain_steps and missing:
        logger.error("chain configs not found: %s (run from the repository root)", missing)
        return 2
    try:
        provider, metadata = load_provider(args)
    except NetworkSetError as error:
        logger.error("%s", error)
        return 2
    drawn = draw_points(metadata.domain, args.n, args.seed, metadata.constraints)
    settings = {
        mode: ValidationSettings.for_network_set(metadata, mode) for mode in args.non_linear
    }
    points = {
        mode: [each.class_settings(point) for point in drawn] for mode, each in settings.items()
    }
    l_max = settings[args.non_linear[0]].l_max
    stride = ClassNet.get_defaults()["hmcode_stride"]
    results = run_benchmark(provider, points, args.threads, l_max, stride)
    results["sources"] = args.sources
    results["networks"] = str(args.networks or DEFAULT_NETWORKS)
    if args.chain_steps:
        results["chains"] = _time_chains(args.chain_configs, args.chain_steps, args.threads[0])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2))
    print(format_table(results))
    return 0


def _time_chains(configs: list[Path], accepted: int, threads: int) -> list[dict[str, Any]]:
    from cosmicnet_cobaya.planck import find_packages_path
    from training.evaluation.benchmark import class_threads
    from training.evaluation.chain_timing import time_chain

    packages_path = find_packages_path()
    with class_threads(threads):
        return [time_chain(config, accepted, packages_path) for config in configs]
