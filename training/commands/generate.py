"""``cosmicnet generate``: training data from CLASS, resumable, parallel or under MPI.

cosmicnet generate configs/lcdm.yaml --out work/lcdm [--workers N]
mpirun -n 8 cosmicnet generate configs/lcdm.yaml --out work/lcdm
cosmicnet generate --status work/lcdm [--json]
cosmicnet generate --from-cobaya run.yaml --write-config configs/mine.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from training.configuration.family import (
    ConfigError,
    FamilyConfig,
    load_config,
    parse_config,
)
from training.configuration.from_cobaya import family_from_cobaya
from training.generation.storage import StorageError

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``generate`` subcommand."""
    parser = subparsers.add_parser(
        "generate",
        help="generate training data (CLASS sources and network inputs) to HDF5",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="family config YAML (configs/lcdm.yaml)")
    parser.add_argument("--out", type=Path, help="output folder (created; rerun to resume)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes, one CLASS thread each (default: all cores; ignored under MPI)",
    )
    parser.add_argument("--limit", type=int, default=None, help="stop after N cosmologies")
    parser.add_argument(
        "--sets",
        default=None,
        metavar="NAME:N,...",
        help="only these sets, in this order, up to their first N points each "
        "(e.g. test:30,training:300), or points START to STOP-1 (training:800-2000); "
        "later runs can extend them",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="recompute points whose CLASS run failed"
    )
    parser.add_argument(
        "--point-timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="a worker past this on one point loses it: retried once, then failed (default 900)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--status", type=Path, metavar="DIR", help="show progress of DIR and exit")
    parser.add_argument("--json", action="store_true", help="with --status: print JSON")
    parser.add_argument(
        "--from-cobaya",
        type=Path,
        metavar="RUN_YAML",
        help="seed the family from a cobaya-run input instead of CONFIG",
    )
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help="with --from-cobaya: write the seeded family config and exit",
    )
    parser.set_defaults(handler=run)


def _parse_set_limits(text: str | None) -> dict[str, range] | None:
    """``"test:30,training:300-500"`` -> {"test": range(30), "training": range(300, 500)}."""
    if text is None:
        return None
    limits = {}
    for item in text.split(","):
        name, _, window = item.strip().partition(":")
        start, dash, stop = window.partition("-")
        if not dash:
            start, stop = "0", start
        if not name or not start.isdigit() or not stop.isdigit() or int(stop) <= int(start):
            raise ConfigError(f"--sets expects NAME:N or NAME:START-STOP items, got {item!r}")
        limits[name] = range(int(start), int(stop))
    return limits


def _mpi_comm() -> Any:
    """The world communicator when started by mpirun with more than one rank."""
    launched = any(
        key in os.environ
        for key in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
    )
    if not launched:
        return None
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ConfigError(
            "started under MPI but mpi4py is not installed: pip install mpi4py"
        ) from error
    comm = MPI.COMM_WORLD
    return comm if comm.Get_size() > 1 else None


def _print_status(out: Path, as_json: bool) -> int:
    from training.generation.runner import status

    counts = status(out)
    if as_json:
        sys.stdout.write(json.dumps(counts, indent=2) + "\n")
        return 0
    sys.stdout.write(f"{'set':<14}{'size':>8}{'complete':>10}{'failed':>8}{'pending':>9}\n")
    for name, row in counts.items():
        sys.stdout.write(
            f"{name:<14}{row['size']:>8}{row['complete']:>10}{row['failed']:>8}{row['pending']:>9}\n"
        )
    return 0


def _load(args: argparse.Namespace) -> FamilyConfig | None:
    if args.from_cobaya is not None:
        if args.config is not None:
            raise ConfigError("give either CONFIG or --from-cobaya, not both")
        family = family_from_cobaya(args.from_cobaya)
        if args.write_config is not None:
            args.write_config.write_text(yaml.safe_dump(family, sort_keys=False))
            logger.info("wrote the seeded family config %s", args.write_config)
            return None
        return parse_config(family)
    if args.config is None:
        raise ConfigError("give a family CONFIG (or --status DIR, or --from-cobaya RUN_YAML)")
    return load_config(args.config)


def run(args: argparse.Namespace) -> int:
    """Handle ``cosmicnet generate``."""
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        if args.status is not None:
            return _print_status(args.status, args.json)
        config = _load(args)
        if config is None:
            return 0
        if args.out is None:
            raise ConfigError("--out DIR is required")
        if args.workers is not None and args.workers < 1:
            raise ConfigError("--workers must be >= 1")
        if args.limit is not None and args.limit < 0:
            raise ConfigError("--limit must be >= 0")
        set_limits = _parse_set_limits(args.sets)
        unknown = sorted(set(set_limits or ()) - {spec.name for spec in config.sets})
        if unknown:
            raise ConfigError(f"--sets names unknown set(s) {unknown}")
        sizes = {spec.name: spec.size for spec in config.sets}
        for name, window in (set_limits or {}).items():
            if window.stop > sizes[name]:
                raise ConfigError(f"--sets {name}: the set has {sizes[name]} points")
        comm = _mpi_comm()
    except (ConfigError, StorageError) as error:
        logger.error("%s", error)
        return 2
    from training.generation import runner

    if comm is not None and comm.Get_rank() != 0:
        runner.mpi_worker(comm)
        return 0
    workers = args.workers or os.cpu_count() or 1
    try:
        summary = runner.generate(
            config,
            args.out,
            workers=workers,
            comm=comm,
            limit=args.limit,
            set_limits=set_limits,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
            point_timeout=args.point_timeout,
        )
    except StorageError as error:
        logger.error("%s", error)
        if comm is not None:
            comm.Abort(2)
        return 2
    except BaseException:
        if comm is not None:
            logger.exception("rank 0 failed; aborting the MPI job")
            comm.Abort(1)
        raise
    rate = summary.computed / summary.seconds * 3600.0 if summary.seconds > 0 else 0.0
    logger.info(
        "done: %d computed, %d failed in %.1f s (%.0f cosmologies/hour)",
        summary.computed,
        summary.failed,
        summary.seconds,
        rate,
    )
    sys.stdout.write(json.dumps(summary.counts) + "\n")
    return 130 if summary.interrupted else 0
