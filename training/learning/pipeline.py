"""Training and selection of a whole network set from generated data sets."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.networks.domain import Domain
from cosmicnet_cobaya.networks.network_set import (
    NetworkEntry,
    NetworkSetMetadata,
    load_network_set,
)
from training.configuration.networks import NetworkConfig, NetworksConfig
from training.generation.kgrid import same_k_grid
from training.learning.batches import CosmologySet
from training.learning.candidates import draw_candidate
from training.learning.saving import clear_checkpoint, save_network, start_metadata
from training.learning.select import rank_candidates, spectrum_error
from training.learning.train import fit_normalisation, fit_output, train_network

log = logging.getLogger(__name__)


def provenance(extra: dict[str, Any]) -> dict[str, Any]:
    """CLASS and package versions plus ``extra`` (precision, data hash, config)."""
    versions = {}
    for package in (
        "classy",
        "cosmicnet_cobaya",
        "keras",
        "tensorflow",
        "tensorflow-cpu",
        "jax",
        "torch",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"versions": versions, **extra}


def _entry(
    name: str,
    config: NetworkConfig,
    transform: Any,
    history: dict,
    sizes: tuple[int, int],
    selection: dict | None = None,
    architecture: dict | None = None,
) -> NetworkEntry:
    """A trained network's metadata entry; ``sizes``: training and validation cosmologies."""
    return NetworkEntry(
        name=name,
        file=f"{name}.keras",
        inputs=config.inputs,
        output=transform,
        architecture={
            **(architecture or config.architecture()),
            "training_cosmologies": sizes[0],
            "validation_cosmologies": sizes[1],
        },
        history=history,
        selection=selection or {},
        source=config.source or name,
        tau_range=config.tau_range,
    )


def _open_network_set(
    out_dir: Path,
    training: CosmologySet,
    extra_provenance: dict[str, Any],
    domain: Domain,
    normalisation: Any = None,
) -> NetworkSetMetadata:
    """Set up the devices, then the set's metadata (new, or read back to resume).

    A new set takes ``normalisation`` (an ``InputNormalisation``) when given,
    else fits it on ``training``.
    """
    from training.learning.train import _configure_devices

    device = _configure_devices()
    if (out_dir / "metadata.json").is_file():
        normalisation = None
    elif normalisation is None:
        normalisation = fit_normalisation(training)
    return start_metadata(
        out_dir,
        training,
        normalisation,
        provenance({**extra_provenance, "device": device}),
        domain,
    )


def train_network_set(
    networks: NetworksConfig,
    training: CosmologySet,
    validation: CosmologySet,
    out_dir: Path,
    extra_provenance: dict[str, Any],
    domain: Domain,
    only: Sequence[str] | None = None,
    progress: bool = True,
    init_from: Path | None = None,
    cache_bytes: int = 0,
) -> NetworkSetMetadata:
    """Train every configured network into ``out_dir``; finished ones are kept on resume.

    With ``init_from`` (a network set), a network of the same name there is
    the starting point: its weights, fine-tuned with the configured tau range,
    epochs and learning rate; it replaces a network of ``out_dir`` not yet
    fine-tuned from that set.  A new ``out_dir`` keeps ``init_from``'s input
    normalisation (so the training data may have grown since).  The output
    normalisation is kept too, unless the config asks for another output
    transform: then it is fitted anew and the output layer rewritten
    (:func:`training.learning.train.retarget_output_layer`).  The starting network's
    own run is appended to the entry's ``architecture["lineage"]`` and its selection
    record (how ``cosmicnet select`` chose it) is kept.  Networks
    ``init_from`` lacks start from random weights.
    """
    out_dir = Path(out_dir)
    names = tuple(only) if only else networks.train
    start_set = None
    if init_from:
        from cosmicnet_cobaya.networks.network_set import read_metadata

        start_set = read_metadata(init_from)
    metadata = _open_network_set(
        out_dir, training, extra_provenance, domain, start_set.normalisation if start_set else None
    )
    initial = _initial_networks(init_from, start_set, metadata) if start_set else {}
    for name in names:
        checkpoint = out_dir / "checkpoints" / name
        existing = metadata.networks.get(name)
        start = initial.get(name)
        done = existing is not None and (
            start is None or existing.architecture.get("initialised_from") == str(init_from)
        )
        if done and not checkpoint.exists():
            log.info("%s: already trained in %s, skipped", name, out_dir)
            continue
        config = networks.networks[name]
        keep_output = start is not None and not _wants_new_output_transform(start, config)
        transform = start.output if keep_output else fit_output(training, config)
        model, history = train_network(
            name,
            config,
            training,
            validation,
            metadata.normalisation,
            transform,
            checkpoint,
            progress=progress,
            initial_model=init_from / start.file if start else None,
            cache_bytes=cache_bytes,
            initial_transform=start.output if start else None,
        )
        architecture = None
        if start:
            architecture = {
                **start.architecture,
                **{key: value for key, value in config.architecture().items() if key in _TRAINING},
                "initialised_from": str(init_from),
                "lineage": [*start.architecture.get("lineage", []), _run_summary(start)],
            }
        sizes = (len(training), len(validation))
        selection = start.selection if start else None
        entry = _entry(
            name, config, transform, history, sizes, selection=selection, architecture=architecture
        )
        metadata = save_network(out_dir, metadata, name, model, entry)
        clear_checkpoint(checkpoint)
    return metadata


def _run_summary(entry: NetworkEntry) -> dict[str, Any]:
    """How a network was trained in its last run (kept in its successors' ``lineage``).

    Every training setting of :data:`_LINEAGE_SETTINGS`, with NetworkConfig's default
    where the entry predates the setting.
    """
    val_loss = entry.history.get("val_loss", [])
    defaults = {item.name: item.default for item in fields(NetworkConfig)}
    settings = {
        key: _json_ready(entry.architecture.get(key, defaults.get(key)))
        for key in _LINEAGE_SETTINGS
    }
    return {
        "initialised_from": entry.architecture.get("initialised_from"),
        "epochs": len(val_loss),
        **settings,
        "training_cosmologies": entry.architecture.get("training_cosmologies"),
        "output_transform": entry.output.kind,
        "best_val_loss": min(val_loss) if val_loss else None,
    }


def _json_ready(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _wants_new_output_transform(start: NetworkEntry, config: NetworkConfig) -> bool:
    """Whether the config's output transform differs from the starting network's."""
    floor = float(start.architecture.get("output_std_floor", 0.0))
    cap = float(start.architecture.get("output_std_cap", 0.0))
    return (
        config.output_transform != start.output.kind
        or config.output_std_floor != floor
        or config.output_std_cap != cap
    )


_TRAINING = NetworkConfig.run_settings()
"""Settings of a fine-tuning run that replace those of the starting network."""

_LINEAGE_SETTINGS = tuple(
    key
    for key in _TRAINING
    if key not in ("epochs", "seed", "source", "tau_range", "output_transform")
)
"""The settings a network's ``lineage`` records of each earlier run."""


def _initial_networks(
    init_from: Path, initial: NetworkSetMetadata, metadata: NetworkSetMetadata
) -> dict[str, NetworkEntry]:
    """The networks of ``initial`` (read from ``init_from``), after checking its input
    normalisation matches.

    The check fails only when ``out_dir`` already held a set of its own.
    """
    if initial.normalisation.to_dict() != metadata.normalisation.to_dict():
        raise ValueError(
            f"{init_from} was trained with another input normalisation than the set "
            "already in the output folder: fine-tune into a new folder, or train from scratch"
        )
    if not same_k_grid(initial.k, metadata.k):
        raise ValueError(f"{init_from} predicts on another k grid than this set")
    return dict(initial.networks)


def select_network(
    name: str,
    networks: NetworksConfig,
    training: CosmologySet,
    validation: CosmologySet,
    reference: Any,
    out_dir: Path,
    extra_provenance: dict[str, Any],
    domain: Domain,
    progress: bool = True,
    cache_bytes: int = 0,
) -> dict[str, Any]:
    """Select network ``name``: candidates by validation loss, then by C_l error.

    Each candidate trains for ``search.epochs``; the winner is copied into
    ``out_dir`` with the record of every candidate (hyperparameters, validation
    loss, C_l error) in its metadata entry.
    """
    base = networks.networks[name]
    search = base.search
    out_dir = Path(out_dir)
    work = out_dir / "selection" / name
    rng = np.random.default_rng([base.seed, 104729])
    metadata = _open_network_set(out_dir, training, extra_provenance, domain)
    transform = fit_output(training, base)
    records = []
    for index in range(search.candidates):
        candidate = replace(draw_candidate(base, rng), seed=base.seed + index)
        directory = work / f"candidate{index:03d}"
        entry = _trained_candidate(
            name, candidate, directory, training, validation, metadata, transform,
            search.epochs, progress, cache_bytes,
        )  # fmt: skip
        records.append(
            {
                "candidate": index,
                "directory": str(directory),
                "val_loss": entry.history["val_loss"][-1],
                "architecture": entry.architecture,
            }
        )
        log.info("%s candidate %d: val_loss %.4g", name, index, records[-1]["val_loss"])
    kept = rank_candidates(records, search.keep)
    for record in kept:
        errors = spectrum_error(load_network_set(record["directory"]), name, reference)
        record.update(errors)
        log.info(
            "%s candidate %d: %s error %.4g",
            name,
            record["candidate"],
            errors["observable"],
            errors["cl_error"],
        )
    best = min(kept, key=lambda item: item["cl_error"])
    winner = load_network_set(best["directory"]).metadata.networks[name]
    selection = {
        "chosen": best["candidate"],
        "candidates": [
            {key: value for key, value in item.items() if key != "directory"} for item in records
        ],
    }
    shutil.copyfile(Path(best["directory"]) / winner.file, out_dir / winner.file)
    current = start_metadata(out_dir, training, None, {}, domain)
    networks_now = {**current.networks, name: replace(winner, selection=selection)}
    replace(current, networks=networks_now).write(out_dir)
    return selection


def _trained_candidate(
    name: str,
    candidate: Any,
    directory: Path,
    training: CosmologySet,
    validation: CosmologySet,
    metadata: NetworkSetMetadata,
    transform: Any,
    epochs: int,
    progress: bool,
    cache_bytes: int,
) -> Any:
    """The metadata entry of one candidate, trained into ``directory`` unless it is there."""
    if not (directory / "metadata.json").is_file() or name not in load_network_set_metadata(
        directory
    ):
        model, history = train_network(
            name, candidate, training, validation, metadata.normalisation, transform,
            directory / "checkpoint", epochs=epochs, progress=progress, cache_bytes=cache_bytes,
        )  # fmt: skip
        empty = replace(metadata, networks={})
        entry = _entry(name, candidate, transform, history, (len(training), len(validation)))
        save_network(directory, empty, name, model, entry)
        clear_checkpoint(directory / "checkpoint")
    return load_network_set(directory).metadata.networks[name]


def load_network_set_metadata(directory: Path) -> dict[str, Any]:
    """The networks recorded in a set directory (empty when none)."""
    from cosmicnet_cobaya.networks.network_set import read_metadata

    return read_metadata(directory).networks
