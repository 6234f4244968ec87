"""Saving trained networks into a set: model files, metadata, data hash, checkpoints."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosmicnet_cobaya.atomic import atomic_write
from cosmicnet_cobaya.networks.domain import Domain
from cosmicnet_cobaya.networks.network_set import (
    NetworkEntry,
    NetworkSetMetadata,
    read_metadata,
)
from cosmicnet_cobaya.networks.normalisation import InputNormalisation
from training.generation.kgrid import same_k_grid
from training.learning.batches import CosmologySet


def data_hash(paths: Sequence[Path]) -> str:
    """SHA-256 over the bytes of the data files a set was trained on."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def save_network(
    out_dir: Path,
    metadata: NetworkSetMetadata,
    name: str,
    model: Any,
    entry: NetworkEntry,
) -> NetworkSetMetadata:
    """Save a trained model into the set and rewrite metadata.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / entry.file, model.save)
    networks = {**metadata.networks, name: entry}
    updated = dataclasses.replace(metadata, networks=networks)
    updated.write(out_dir)
    return updated


def start_metadata(
    out_dir: Path,
    training: CosmologySet,
    norm: InputNormalisation,
    provenance: dict[str, Any],
    domain: Domain,
) -> NetworkSetMetadata:
    """The set's metadata, read back when resuming into an existing set."""
    if (out_dir / "metadata.json").is_file():
        existing = read_metadata(out_dir)
        if not same_k_grid(existing.k, training.k):
            raise ValueError(f"{out_dir} holds a network set on another k grid; use a new --out")
        return existing
    metadata = NetworkSetMetadata(
        k=np.asarray(training.k, dtype=float),
        param_names=tuple(training.param_names),
        normalisation=norm,
        networks={},
        domain=dict(domain.ranges),
        provenance=provenance,
        constraints=tuple(domain.constraints),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata.write(out_dir)
    return metadata


def clear_checkpoint(checkpoint_dir: Path) -> None:
    """Remove a finished network's checkpoint."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
