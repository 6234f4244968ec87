"""A network set with some networks taken from another (fine-tuned) set.

    .venv/bin/python benchmarks/assemble_set.py --base cosmicnet_cobaya/data/default_networks \
        --from work/nets_tuned --names t0 --out work/nets_full

Copies ``--base`` to ``--out`` and replaces the networks in ``--names`` by
those of ``--from`` (their files and metadata entries). The provenance keeps
the base set's and records the fine-tuning data of the replaced networks
(beside those of base networks fine-tuned before, see ``fine_tuning_records``); the
base set's measured accuracy is dropped (re-measure with ``cosmicnet
validate --record``). Both sets must share inputs, k grid and normalisation,
as a set fine-tuned with ``cosmicnet train --init-from BASE`` does.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from cosmicnet_cobaya.networks.network_set import read_metadata
from training.kgrid import same_k_grid

logger = logging.getLogger("assemble_set")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="set to start from")
    parser.add_argument("--from", dest="tuned", type=Path, required=True, help="fine-tuned set")
    parser.add_argument("--names", required=True, help="comma-separated networks to replace")
    parser.add_argument("--out", type=Path, required=True, help="new set folder (replaced)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base, tuned = read_metadata(args.base), read_metadata(args.tuned)
    names = args.names.split(",")
    missing = [name for name in names if name not in tuned.networks]
    if missing:
        raise SystemExit(f"{args.tuned} has no network {missing}")
    if not same_k_grid(base.k, tuned.k) or base.normalisation.to_dict() != (
        tuned.normalisation.to_dict()
    ):
        raise SystemExit(f"{args.tuned} has another k grid or input normalisation than the base")
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.base, args.out)
    networks = dict(base.networks)
    for name in names:
        networks[name] = tuned.networks[name]
        shutil.copyfile(args.tuned / tuned.networks[name].file, args.out / networks[name].file)
    provenance = dict(base.provenance)
    provenance.pop("accuracy", None)
    provenance.update(
        fine_tuning_records(
            provenance.get("fine_tuning_data"),
            provenance.pop("earlier_fine_tuning_data", []),
            names,
            {
                "data_files": tuned.provenance.get("data_files", []),
                "data_hash": tuned.provenance.get("data_hash", ""),
            },
        )
    )
    replace(base, networks=networks, provenance=provenance).write(args.out)
    logger.info(
        "assembled %s: %s from %s, the rest from %s", args.out, names, args.tuned, args.base
    )


if __name__ == "__main__":
    main()
