"""``cosmicnet train``: train a network set from generated data.

    cosmicnet train configs/lcdm.yaml --data work/lcdm --out nets/lcdm [--only t0,t2]
    cosmicnet train configs/lcdm.yaml --data work/lcdm --out nets/v2 --init-from nets/lcdm

Rerun the same command to resume an interrupted training: finished networks
are kept, the interrupted one restarts from its last epoch checkpoint.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train the source-function networks of a family",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    parser.add_argument("--only", default=None, help="comma-separated networks (default: config)")
    parser.add_argument("--epochs", type=int, default=None, help="override every network's epochs")
    parser.add_argument(
        "--learning-rate", type=float, default=None,
        help="override every network's initial learning rate (e.g. for a second fine-tuning)",
    )  # fmt: skip
    parser.add_argument(
        "--learning-rate-decay", type=float, default=None,
        help="override every network's per-epoch learning-rate factor (0 < f <= 1)",
    )  # fmt: skip
    parser.add_argument(
        "--warmup-steps", type=int, default=None, metavar="N",
        help="override every network's learning-rate warmup: the rate rises linearly over "
        "the first N steps (use when fine-tuning with --init-from; 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--extra-training", type=Path, action="append", default=[], metavar="DIR",
        help="also train on the training set of DIR, generated for the same family and k "
        "grid (e.g. a set drawn from the centre of the box with box_fraction); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="network set trained on the same data whose networks of the same name are "
        "fine-tuned instead of starting from random weights",
    )
    parser.set_defaults(handler=run)


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; expected a size >= 0")
    return value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """CONFIG, --data, --out, --limit, --validation-limit, --cache-gb, --no-progress."""
    parser.add_argument("config", type=Path, help="family config YAML")
    parser.add_argument("--data", type=Path, required=True, help="folder of `cosmicnet generate`")
    parser.add_argument("--out", type=Path, required=True, help="network-set folder")
    parser.add_argument(
        "--limit", type=int, default=None, help="use at most N cosmologies of each set"
    )
    parser.add_argument(
        "--validation-limit", type=int, default=None,
        help="use at most N validation cosmologies (default: --limit); each epoch evaluates all",
    )  # fmt: skip
    parser.add_argument(
        "--cache-gb", type=_non_negative, default=4.0,
        help="memory for batches kept between epochs (default 4; 0 rebuilds them every epoch)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def validation_limit(args: argparse.Namespace) -> int | None:
    """How many validation cosmologies to use: --validation-limit, else --limit."""
    return args.limit if args.validation_limit is None else args.validation_limit


def load_inputs(
    args: argparse.Namespace, extra_training: Sequence[Path] = ()
) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Family config, parsed networks block, provenance (data files: ``--data``'s training
    and validation sets, then ``extra_training`` folders' training sets) and domain."""
    from training.configuration.family import load_config
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.saving import data_hash

    family = load_config(args.config)
    networks = parse_networks_config(family.networks)
    files = [args.data / "training.h5", args.data / "validation.h5"]
    files += [folder / "training.h5" for folder in extra_training]
    provenance = {
        "family": family.family,
        "class_precision": family.extra_args,
        "l_max": family.l_max,
        "networks_config": family.networks,
        "data_files": [str(path) for path in files],
        "data_hash": data_hash([path for path in files if path.is_file()]),
    }
    from cosmicnet_cobaya.networks.domain import Domain

    domain = Domain({p.name: [p.low, p.high] for p in family.params}, family.constraints)
    return family, networks, provenance, domain


def run(args: argparse.Namespace) -> int:
    """Train every requested network; returns the exit status."""
    from cosmicnet_cobaya.networks.network_set import NetworkSetError
    from training.configuration.family import ConfigError
    from training.configuration.networks import NetworkConfigError
    from training.learning.data_access import CombinedSets, SetReader
    from training.learning.history_plot import plot_histories
    from training.learning.pipeline import train_network_set

    try:
        family, networks, provenance, domain = load_inputs(args, args.extra_training)
    except (ConfigError, NetworkConfigError) as error:
        logger.error("%s", error)
        return 2
    only = tuple(args.only.split(",")) if args.only else None
    names = only or networks.train
    unknown = [name for name in names if name not in networks.networks]
    if unknown:
        logger.error("unknown networks %s; known: %s", unknown, sorted(networks.networks))
        return 2
    missing = [name for name in names if networks.networks[name].source not in family.targets]
    if missing:
        logger.error("the family stores no targets for %s; it stores %s", missing, family.targets)
        return 2
    try:
        networks = with_overrides(networks, args)
    except ValueError as error:
        logger.error("%s", error)
        return 2
    readers: list[SetReader] = []
    try:
        for folder in [args.data, *args.extra_training]:
            readers.append(SetReader(folder / "training.h5", args.limit))
        training = CombinedSets(readers)
    except (OSError, ValueError) as error:
        for reader in readers:
            reader.close()
        logger.error("%s", error)
        return 2
    validation = SetReader(args.data / "validation.h5", validation_limit(args))
    try:
        metadata = train_network_set(
            networks,
            training,
            validation,
            args.out,
            provenance,
            domain,
            only=names,
            progress=not args.no_progress,
            init_from=args.init_from,
            cache_bytes=int(args.cache_gb * 2**30),
        )
    except (ValueError, NetworkSetError) as error:
        logger.error("%s", error)
        return 2
    finally:
        training.close()
        validation.close()
    for name, entry in metadata.networks.items():
        losses = entry.history["val_loss"]
        kept = entry.history.get("best_epoch", [len(losses)])[0]
        logger.info(
            "%s: val_loss %.4g (epoch %d of %d, kept)", name, losses[kept - 1], kept, len(losses)
        )
    curves = plot_histories(metadata.networks, args.out / "training_history.png")
    logger.info("training curves: %s", curves)
    return 0


def with_overrides(networks: Any, args: argparse.Namespace) -> Any:
    """``networks`` with the command line's epochs, learning rate, decay and warmup."""
    overrides = {
        key: value
        for key, value in (
            ("epochs", args.epochs),
            ("learning_rate", args.learning_rate),
            ("learning_rate_decay", args.learning_rate_decay),
        )
        if value is not None
    }
    decay = overrides.get("learning_rate_decay", 1.0)
    if any(value <= 0 for value in overrides.values()) or decay > 1:
        raise ValueError(
            "--epochs, --learning-rate must be > 0 and --learning-rate-decay in (0, 1]"
        )
    if args.warmup_steps is not None:
        if args.warmup_steps < 0:
            raise ValueError("--warmup-steps must be >= 0 (0: no warmup)")
        overrides["learning_rate_warmup_steps"] = args.warmup_steps
    if not overrides:
        return networks
    return replace(
        networks, networks={n: replace(c, **overrides) for n, c in networks.networks.items()}
    )
