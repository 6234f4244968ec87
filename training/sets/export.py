"""A trained network set made ready to ship: no optimizer state, checked against Keras.

The copy holds ``metadata.json`` and every network without its optimizer
state (training checkpoints keep it; inference does not need it, and it
triples the size).  ``check_export`` loads the copy with the NumPy forward
pass and compares it with the Keras models.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def export_network_set(
    source: Path,
    target: Path,
    references: Sequence[Mapping[str, float]] = (),
    experimental: str | None = None,
) -> int:
    """Write the stripped copy into ``target``; returns its size in bytes.

    ``experimental``: why the set is not for unattended use (stored as
    ``provenance.experimental``): ``networks: null`` then never picks it.
    """
    import keras

    from cosmicnet_cobaya.networks.network_set import METADATA_FILE, read_metadata

    metadata = read_metadata(source)
    target.mkdir(parents=True, exist_ok=True)
    for entry in metadata.networks.values():
        model = keras.models.load_model(source / entry.file, compile=False)
        model.save(target / entry.file)
        if entry.correction:
            file = entry.correction["file"]
            shutil.copyfile(source / file, target / file)
    shutil.copyfile(source / METADATA_FILE, target / METADATA_FILE)
    if references:
        metadata = with_references(metadata, references)
    if experimental:
        provenance = {**metadata.provenance, "experimental": experimental}
        metadata = dataclasses.replace(metadata, provenance=provenance)
    if references or experimental:
        metadata.write(target)
    return sum(path.stat().st_size for path in target.iterdir() if path.is_file())


def with_references(metadata: Any, references: Sequence[Mapping[str, float]]) -> Any:
    """``metadata`` with ``references`` on every network the symmetries allow (checked)."""
    from cosmicnet_cobaya.networks.references import parse_references
    from cosmicnet_cobaya.networks.reionization import (
        LATEST_END_IN_TAU_REC,
        SCALING_SOURCES,
        ends_before_reionization,
    )

    parsed = parse_references(list(references), "--references")
    networks = dict(metadata.networks)
    chosen = [
        name
        for name, entry in networks.items()
        if entry.source in SCALING_SOURCES and ends_before_reionization(entry.tau_range)
    ]
    if not chosen:
        raise ValueError(
            f"no network of {SCALING_SOURCES} stops by {LATEST_END_IN_TAU_REC} tau_rec: "
            "--references needs recombination networks (a tau_range split)"
        )
    for name in chosen:
        networks[name] = dataclasses.replace(networks[name], references=parsed)
    updated = dataclasses.replace(metadata, networks=networks)
    updated.expansion  # noqa: B018 -- checks the references against the set
    logger.info("networks %s averaged over the references %s", chosen, list(parsed))
    return updated


def check_export(source: Path, target: Path, seed: int = 0) -> float:
    """Largest |NumPy copy - Keras original| over random inputs, relative to the output scale."""
    import keras

    from cosmicnet_cobaya.networks.network_set import load_network_set

    shipped = load_network_set(target)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for name, entry in shipped.metadata.networks.items():
        original = keras.models.load_model(source / entry.file, compile=False)
        inputs = {
            tensor.name: rng.normal(size=(4, *tensor.shape[1:])).astype(np.float32)
            for tensor in original.inputs
        }
        expected = np.asarray(original.predict(inputs, verbose=0))
        got = shipped.models[name](inputs)
        worst = max(worst, float(np.max(np.abs(got - expected)) / np.max(np.abs(expected))))
    return worst
