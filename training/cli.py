"""The ``cosmicnet`` command: collects the subcommands of ``training/commands``.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
subparser and sets ``handler`` (a callable taking the parsed arguments and
returning an exit status).  Logging is configured here, and only here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMANDS: tuple[str, ...] = (
    "generate",
    "train",
    "select",
    "validate",
    "benchmark",
    "compare-chains",
    "verify-chain",
    "export",
    "assemble",
    "interpolate",
    "correct",
    "history",
    "shift-matrix",
    "covmat",
)
"""Subcommand modules under ``training.commands``, in help order."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="cosmicnet", description="CosmicNet for Cobaya: data generation and training."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = name.replace("-", "_")
        importlib.import_module(f"training.commands.{module}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cosmicnet`` console script."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
