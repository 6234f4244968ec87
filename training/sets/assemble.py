"""A network set with some networks taken from another set fine-tuned from it.

The provenance keeps the base set's and records the fine-tuning data of the
replaced networks (beside those of base networks fine-tuned before, see
``fine_tuning_records``); the base set's measured accuracy is dropped
(re-measure with ``cosmicnet validate --record``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from cosmicnet_cobaya.networks.network_set import NetworkSetMetadata, read_metadata
from training.generation.kgrid import same_k_grid
from training.sets.files import copy_network_set

logger = logging.getLogger(__name__)


def check_compatible(base: NetworkSetMetadata, other: NetworkSetMetadata, where: str) -> None:
    """Refuse two sets that do not share the k grid and the input normalisation."""
    if not same_k_grid(base.k, other.k) or base.normalisation.to_dict() != (
        other.normalisation.to_dict()
    ):
        raise ValueError(
            f"{where} has another k grid or input normalisation than the base set: "
            "fine-tune it from the base with `cosmicnet train --init-from BASE`"
        )


def fine_tuning_records(
    base_record: dict | None, earlier: list[dict], names: list[str], tuned_data: dict
) -> dict:
    """Provenance entries once ``names`` are replaced by networks tuned on ``tuned_data``.

    Every base network that was fine-tuned before and is not replaced keeps its
    record: in ``fine_tuning_data`` beside the new ones when its data are the same
    (same hash), else in ``earlier_fine_tuning_data`` (oldest first).
    """
    joined, kept_records = [], []
    for record in [*earlier, *([base_record] if base_record else [])]:
        kept = [name for name in record["networks"] if name not in names]
        if kept and record.get("data_hash") == tuned_data["data_hash"]:
            joined += kept
        elif kept:
            kept_records.append({**record, "networks": kept})
    records = {"fine_tuning_data": {"networks": joined + names, **tuned_data}}
    if kept_records:
        records["earlier_fine_tuning_data"] = kept_records
    return records


def assemble_network_set(base_dir: Path, tuned_dir: Path, names: Sequence[str], out: Path) -> None:
    """Write ``out``: the set in ``base_dir`` with ``names`` taken from ``tuned_dir``."""
    base, tuned = read_metadata(base_dir), read_metadata(tuned_dir)
    missing = [name for name in names if name not in tuned.networks]
    if missing:
        raise ValueError(f"{tuned_dir} has no network {missing}")
    check_compatible(base, tuned, str(tuned_dir))
    copy_network_set(base_dir, out, replace=True)
    networks = dict(base.networks)
    for name in names:
        networks[name] = tuned.networks[name]
        shutil.copyfile(tuned_dir / tuned.networks[name].file, out / networks[name].file)
    provenance = dict(base.provenance)
    provenance.pop("accuracy", None)
    tuned_data = {
        "data_files": tuned.provenance.get("data_files", []),
        "data_hash": tuned.provenance.get("data_hash", ""),
    }
    provenance.update(
        fine_tuning_records(
            provenance.get("fine_tuning_data"),
            provenance.pop("earlier_fine_tuning_data", []),
            list(names),
            tuned_data,
        )
    )
    replace(base, networks=networks, provenance=provenance).write(out)
    logger.info("assembled %s: %s from %s, the rest from %s", out, list(names), tuned_dir, base_dir)
