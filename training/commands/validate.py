"""``cosmicnet validate``: ClassNet against full CLASS on unseen cosmologies.

cosmicnet validate --networks NETDIR --data work/lcdm --out work/validation
cosmicnet validate --networks NETDIR --n 20 --out work/validation
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate",
        help="accuracy of a network set against full CLASS, with plots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_network_options(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="generated data folder: use its test set")
    source.add_argument("--n", type=int, default=10, help="draw N fresh points in the domain")
    parser.add_argument("--set", default="test", help="with --data: which set (default: test)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the fresh points")
    parser.add_argument("--limit", type=int, default=None, help="use at most N cosmologies")
    parser.add_argument("--non-linear", default="hmcode", choices=("hmcode", "halofit", "none"))
    parser.add_argument(
        "--hmcode-stride", type=int, default=None,
        help="HMcode on every n-th source time before the output redshifts, as ClassNet's "
        "hmcode_stride (default: ClassNet's default; 1: every time)",
    )  # fmt: skip
    parser.add_argument(
        "--l-max", type=int, default=None, help="highest multipole (default: the set's l_max)"
    )
    parser.add_argument(
        "--fisher-points", type=int, default=3,
        help="points for the Fisher shift: the Planck best fit, then test points, or chain "
        "points with --fisher-covmat (default 3; 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--fisher-covmat", type=Path, default=None,
        help="Fisher shifts at typical chain points instead of test points: draws around "
        "the best fit with this Cobaya covmat (e.g. configs/mcmc_lcdm.covmat)",
    )  # fmt: skip
    parser.add_argument(
        "--bao", choices=("desi-like",), default=None,
        help="join a BAO-like likelihood (DESI-DR2-sized errors) to plik_lite in the "
        "Fisher shifts (for w0-wa and m_ncdm families)",
    )  # fmt: skip
    parser.add_argument(
        "--primordial", nargs="+", default=[], metavar="NAME=VALUE",
        help="CLASS primordial settings for every point, e.g. alpha_s=-0.01 k_pivot=0.01 "
        "n_s=0.94 (default: Planck A_s, n_s, no running): checks the networks' reuse",
    )  # fmt: skip
    parser.add_argument(
        "--matter", action="store_true",
        help="also compare linear and non-linear P(k, z) (1e-4 <= k <= 1/Mpc, z 0, 0.5, 1, 2), "
        "sigma8 and S8 with full CLASS (summary key 'matter', matter_power_errors.png)",
    )  # fmt: skip
    parser.add_argument(
        "--no-cmb", action="store_true", help="with --matter: skip the CMB comparison"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for summary.json and PNGs")
    parser.add_argument(
        "--record", action="store_true",
        help="write the headline figures into the network set's metadata.json "
        "(provenance.accuracy), so that the measured accuracy travels with the set",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def parse_primordial(items: list[str]) -> dict[str, float]:
    """``NAME=VALUE`` pairs as floats (ValueError naming the bad item)."""
    values = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--primordial {item!r}: expected NAME=NUMBER") from None
        if not name.strip():
            raise ValueError(f"--primordial {item!r}: expected NAME=NUMBER")
    return values


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """--networks and --sources, shared with ``cosmicnet benchmark``."""
    parser.add_argument(
        "--networks", type=Path, default=None, help="network set (default: the shipped set)"
    )
    parser.add_argument(
        "--sources", choices=("network", "class"), default="network",
        help="'class' checks the pipeline itself with exact CLASS sources",
    )  # fmt: skip


def load_provider(args: argparse.Namespace) -> tuple[Any, Any]:
    """(provider, network-set metadata) for the options."""
    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
    from cosmicnet_cobaya.networks.network_set import read_metadata
    from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
    from cosmicnet_cobaya.sources import ClassSourceProvider

    directory = args.networks or DEFAULT_NETWORKS
    metadata = read_metadata(directory)
    if args.sources == "class":
        return ClassSourceProvider(), metadata
    return NetworkSourceProvider(directory), metadata


def test_points(args: argparse.Namespace, metadata: Any) -> list[dict[str, float]]:
    """Cosmologies to validate on: a generated set, or fresh LHS points."""
    from training.evaluation.pairs import draw_points

    if args.data is not None:
        from training.generation.dataset import open_set

        with open_set(args.data / f"{args.set}.h5") as data:
            table = data.params_table()
            names = list(data.param_names)
        points = [dict(zip(names, map(float, row), strict=True)) for row in table]
    else:
        points = draw_points(metadata.domain, args.n, args.seed, metadata.constraints)
    return points[: args.limit] if args.limit else points


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet validate``."""
    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from cosmicnet_cobaya.planck import find_packages_path
    from training.evaluation.pairs import ValidationSettings
    from training.evaluation.plik import PlikLite
    from training.evaluation.plots import FigureWriter
    from training.evaluation.validate import fisher_points, run_validation, target_report

    try:
        primordial = parse_primordial(args.primordial)
        provider, metadata = load_provider(args)
        points = test_points(args, metadata)
        if not points:
            raise ValueError("no test cosmologies")
        fisher_at = fisher_points(
            points,
            args.fisher_points,
            args.fisher_covmat,
            args.seed,
            metadata.domain,
            metadata.constraints,
        )
    except (NetworkSetError, ValueError, OSError) as error:
        logger.error("%s", error)
        return 2
    packages_path = find_packages_path()
    if packages_path is None:
        logger.warning("plik_lite data not found: no delta-chi2, Planck units or Fisher shifts")
    plik = PlikLite.load(packages_path) if packages_path is not None else None
    settings = ValidationSettings.for_network_set(
        metadata, args.non_linear, args.l_max, args.hmcode_stride
    )
    settings.primordial.update(primordial)
    if args.bao is not None:
        from training.evaluation.bao import BAO_LIKELIHOODS

        settings.bao = BAO_LIKELIHOODS[args.bao]
    if plik is not None and settings.l_max < plik.l_max:
        logger.warning(
            "l_max=%d is below plik_lite's %d: no delta-chi2, Planck units or Fisher shifts",
            settings.l_max,
            plik.l_max,
        )
        plik = None
    args.out.mkdir(parents=True, exist_ok=True)
    directory = args.networks or DEFAULT_NETWORKS
    summary: dict = {}
    if not args.no_cmb:
        figures = FigureWriter(args.out)
        summary = run_validation(
            provider, settings, points, plik,
            fisher_at=fisher_at, progress=not args.no_progress, plot=figures,
        )  # fmt: skip
        summary["settings"]["primordial"] = settings.primordial
        summary["figures"] = [path.name for path in figures.written]
        summary["target_report"] = target_report(summary)
    if args.matter:
        summary["matter"] = matter_validation(provider, settings, points, args)
    summary["networks"] = str(directory) if args.sources == "network" else "class (exact)"
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.record and args.sources == "network":
        from training.sets.accuracy import record_accuracy

        if "target_report" in summary:
            record_accuracy(directory, summary["target_report"])
        if "matter" in summary:
            record_accuracy(directory, without_points(summary["matter"]), key="matter")
    print(json.dumps(_headline(summary), indent=2))
    return 0


def matter_validation(
    provider: Any, settings: Any, points: list[dict[str, float]], args: argparse.Namespace
) -> dict[str, Any]:
    """The matter-power comparison at the CMB validation's settings and points."""
    from training.evaluation.matter_power import MatterSettings, run_matter_validation

    matter = MatterSettings(
        extra_args=dict(settings.extra_args),
        non_linear=settings.non_linear,
        hmcode_stride=settings.hmcode_stride,
        primordial=dict(settings.primordial),
    )
    return run_matter_validation(
        provider, matter, points, progress=not args.no_progress, out=args.out
    )


def without_points(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without its per-point records."""
    return {key: value for key, value in summary.items() if key != "points"}


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without per-point records, for the terminal."""
    shown = without_points(summary)
    if "matter" in shown:
        shown["matter"] = without_points(shown["matter"])
    return shown
