"""A network set whose named networks interpolate the weights of two sets.

    .venv/bin/python benchmarks/interpolate_networks.py \
        --base cosmicnet_cobaya/data/default_networks --other work/nets_tuned \
        --names t0 --alpha 0.5 --out work/nets_mixed

Copies ``--other`` (a set fine-tuned from ``--base`` with ``--init-from``) to
``--out`` and sets each named network's weights to
``(1 - alpha) * base + alpha * other`` ("model soup"): networks fine-tuned
from the same start usually stay on one side of the loss landscape, so the
mixture can keep part of what each learned (the shipped t0: the box accuracy
of the base t0 and the chain-point shifts of one tuned on posterior draws).
Both sets must share the k grid, the input normalisation and each named
network's output normalisation. The metadata are ``--other``'s, less its
measured accuracy, plus a ``weight_mixture`` record in the provenance (which
networks, alpha, and each parent's fine-tuning data). Re-measure with
``cosmicnet validate --record``.
"""

from __future__ import annotations

import argparse
import io
import logging
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py

from cosmicnet_cobaya.networks.network_set import NetworkSetMetadata, read_metadata
from training.kgrid import same_k_grid

logger = logging.getLogger("interpolate_networks")
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


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="set fine-tuning started from")
    parser.add_argument("--other", type=Path, required=True, help="fine-tuned set")
    parser.add_argument("--names", required=True, help="comma-separated networks to mix")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of --other (0-1)")
    parser.add_argument("--out", type=Path, required=True, help="new set folder (replaced)")
    args = parser.parse_args()
    if not 0 <= args.alpha <= 1:
        parser.error("--alpha must be in [0, 1]")
    base, other = read_metadata(args.base), read_metadata(args.other)
    if not same_k_grid(base.k, other.k) or base.normalisation.to_dict() != (
        other.normalisation.to_dict()
    ):
        parser.error("the two sets have different k grids or input normalisations")
    names = args.names.split(",")
    for name in names:
        if name not in base.networks or name not in other.networks:
            parser.error(f"{name} is not in both sets")
        if base.networks[name].output.to_dict() != other.networks[name].output.to_dict():
            parser.error(f"{name}: the sets normalise its output differently")
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.other, args.out, ignore=shutil.ignore_patterns("checkpoints"))
    for name in names:
        entry = other.networks[name]
        count = interpolate_file(
            args.base / base.networks[name].file,
            args.other / entry.file,
            args.out / entry.file,
            args.alpha,
        )
        logger.info("%s: %d weight arrays mixed, alpha %.3g", name, count, args.alpha)
    replace(other, provenance=mixture_provenance(base, other, names, args.alpha)).write(args.out)


if __name__ == "__main__":
    main()
