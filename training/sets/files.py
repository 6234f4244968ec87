"""Copying a network set: its metadata, model files and correction files, nothing else."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from cosmicnet_cobaya.networks.network_set import METADATA_FILE, read_metadata


def set_files(source: Path) -> list[str]:
    """Names of the files a set consists of (metadata first; checkpoints are not part of it)."""
    metadata = read_metadata(source)
    names = [METADATA_FILE]
    for entry in metadata.networks.values():
        names.append(entry.file)
        if entry.correction:
            names.append(entry.correction["file"])
    return list(dict.fromkeys(names))


def copy_network_set(
    source: Path, target: Path, replace: bool = False, skip: Iterable[str] = ()
) -> None:
    """Copy the set in ``source`` to ``target`` (emptied first when ``replace``).

    Files named in ``skip`` are left for the caller to write.
    """
    if source.resolve() == target.resolve():
        raise ValueError(f"cannot copy {source} onto itself: choose another output folder")
    if replace and target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    skipped = set(skip)
    for name in set_files(source):
        if name not in skipped:
            shutil.copyfile(source / name, target / name)
