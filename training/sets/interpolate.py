"""A network set whose named networks interpolate the weights of two sets ("model soup").

Networks fine-tuned from the same start usually stay on one side of the loss
landscape, so ``(1 - alpha) * base + alpha * other`` can keep part of what
each learned.  Both sets must share the k grid, the input normalisation and
each named network's output normalisation.  The metadata are ``other``'s,
less its measured accuracy, plus a ``weight_mixture`` record.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py

from cosmicnet_cobaya.networks.network_set import NetworkSetMetadata, read_metadata
from training.sets.assemble import check_compatible
from training.sets.files import copy_network_set

logger = logging.getLogger(__name__)
WEIGHTS = "model.weights.h5"


def _archive(path: Path) -> dict[str, bytes]:
    """Every member of a ``.keras`` archive."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def interpolate_file(base: Path, other: Path, out: Path, alpha: float) -> int:
    """Write ``out``: ``other``'s archive with interpolated float weights; returns their count."""
    base_members, other_members = _archive(base), _archive(other)
    buffer = io.BytesIO(other_members[WEIGHTS])
    mixed = 0
    with (
        h5py.File(io.BytesIO(base_members[WEIGHTS]), "r") as base_weights,
        h5py.File(buffer, "r+") as weights,
    ):

        def mix(name: str, item: object) -> None:
            nonlocal mixed
            if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                start = base_weights[name][()]
                if start.shape != item.shape:
                    raise ValueError(f"{base}: {name} is {start.shape}, not {item.shape}")
                item[...] = (1 - alpha) * start + alpha * item[()]
                mixed += 1

        weights.visititems(mix)
    other_members[WEIGHTS] = buffer.getvalue()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in other_members.items():
            archive.writestr(name, data)
    return mixed


def mixture_provenance(
    base: NetworkSetMetadata, other: NetworkSetMetadata, names: list[str], alpha: float
) -> dict[str, Any]:
    """``other``'s provenance for the mixed set: its accuracy dropped, the mixture recorded."""
    provenance = {key: value for key, value in other.provenance.items() if key != "accuracy"}
    provenance["weight_mixture"] = {
        "networks": list(names),
        "alpha": alpha,
        "rule": "(1 - alpha) * base + alpha * other, every float weight",
        "base_fine_tuning_data": base.provenance.get("fine_tuning_data"),
        "other_fine_tuning_data": other.provenance.get("fine_tuning_data"),
        "note": "the mixed networks' history is the other set's fine-tuning",
    }
    return provenance


def interpolate_network_set(
    base_dir: Path, other_dir: Path, names: Sequence[str], alpha: float, out: Path
) -> None:
    """Write ``out``: ``other_dir``'s set with ``names`` mixed with ``base_dir``'s."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    base, other = read_metadata(base_dir), read_metadata(other_dir)
    check_compatible(base, other, str(other_dir))
    for name in names:
        if name not in base.networks or name not in other.networks:
            raise ValueError(f"{name} is not in both sets")
        if base.networks[name].output.to_dict() != other.networks[name].output.to_dict():
            raise ValueError(f"{name}: the sets normalise its output differently")
    copy_network_set(other_dir, out, replace=True)
    for name in names:
        entry = other.networks[name]
        count = interpolate_file(
            base_dir / base.networks[name].file, other_dir / entry.file, out / entry.file, alpha
        )
        logger.info("%s: %d weight arrays mixed, alpha %.3g", name, count, alpha)
    replace(other, provenance=mixture_provenance(base, other, list(names), alpha)).write(out)
