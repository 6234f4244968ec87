"""Crash-safe HDF5 storage of generated sets (layout: docs/data-format.md).

Safety rests on two rules.  (1) A file is only ever created under a temporary
name and renamed into place (``os.replace``, atomic) once it is complete and
fsynced, so a kill at any moment leaves either the old file or the new one,
never a partial one.  (2) Each finished cosmology is written at once, by the
single writer process, to its own small staging file; the set file
``<set>.h5`` is rebuilt from the previous set file plus the staging files at
the end of a run and only then are those staging files removed.  A restart
deletes leftover temporary files and staging files already in the set file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cosmicnet_cobaya.atomic import replace_into_place
from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.features import SCALAR_NAMES, TIME_NAMES
from training.configuration.family import FamilyConfig
from training.generation.cosmology import CosmologyResult

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
STATUS_PENDING, STATUS_COMPLETE, STATUS_FAILED = 0, 1, 2
FAMILY_FILE = "family.h5"
STAGING = "staging"
TMP_SUFFIX = ".tmp"


class StorageError(CosmicNetError, RuntimeError):
    """The output folder cannot be used as asked."""


def cosmology_key(index: int) -> str:
    """Group name of cosmology ``index`` inside a set file."""
    return f"c{index:07d}"


def set_path(out: Path, set_name: str) -> Path:
    """The consolidated file of a set."""
    return out / f"{set_name}.h5"


def staging_dir(out: Path, set_name: str) -> Path:
    """Folder of the staging files of a set."""
    return out / STAGING / set_name


@dataclass(frozen=True)
class FamilyRecord:
    """What ``family.h5`` holds: the frozen plan of an output folder."""

    config_json: str
    k: np.ndarray
    points: dict[str, np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)


FINGERPRINT_IGNORED = ("networks", "description")
"""Config keys that may change without invalidating generated data."""


def config_fingerprint(config: FamilyConfig) -> str:
    """Canonical JSON of the config mapping, minus keys that do not affect the data."""
    relevant = {k: v for k, v in config.raw.items() if k not in FINGERPRINT_IGNORED}
    return json.dumps(relevant, sort_keys=True, default=str)


def write_family(out: Path, record: FamilyRecord) -> None:
    """Write ``family.h5`` atomically."""
    out.mkdir(parents=True, exist_ok=True)
    final = out / FAMILY_FILE
    tmp = final.with_name(final.name + TMP_SUFFIX)
    with h5py.File(tmp, "w") as handle:
        handle.attrs["format_version"] = FORMAT_VERSION
        handle.attrs["config_json"] = record.config_json
        for key, value in record.metadata.items():
            handle.attrs[key] = value
        handle.create_dataset("k", data=record.k)
        for name, points in record.points.items():
            handle.create_dataset(f"points/{name}", data=points)
    replace_into_place(tmp, final, durable=True)


def read_family(out: Path) -> FamilyRecord | None:
    """``family.h5`` of an output folder, or None when there is none yet."""
    path = out / FAMILY_FILE
    if not path.exists():
        return None
    with h5py.File(path, "r") as handle:
        metadata = {key: handle.attrs[key] for key in handle.attrs}
        return FamilyRecord(
            config_json=str(metadata.pop("config_json")),
            k=handle["k"][...],
            points={name: handle["points"][name][...] for name in handle["points"]},
            metadata=metadata,
        )


def write_staging(out: Path, result: CosmologyResult, config: FamilyConfig) -> Path:
    """Store one finished (or failed) cosmology atomically in the staging folder."""
    folder = staging_dir(out, result.set_name)
    folder.mkdir(parents=True, exist_ok=True)
    key = cosmology_key(result.index)
    if not result.ok:
        final = folder / f"{key}.failed.json"
        tmp = folder / f"{key}.failed.json{TMP_SUFFIX}"
        record = {"index": result.index, "params": result.params, "error": result.error}
        tmp.write_text(json.dumps(record))
        replace_into_place(tmp, final, durable=True)
        return final
    final = folder / f"{key}.h5"
    tmp = folder / f"{key}.h5{TMP_SUFFIX}"
    with h5py.File(tmp, "w") as handle:
        write_cosmology_group(handle.create_group("cosmology"), result, config)
    replace_into_place(tmp, final, durable=True)
    return final


def write_cosmology_group(group: h5py.Group, result: CosmologyResult, config: FamilyConfig) -> None:
    """One cosmology's data in ``group`` (layout in docs/data-format.md)."""
    storage = config.storage
    group.attrs["index"] = result.index
    group.attrs["complete"] = 1
    group.attrs["seconds"] = result.seconds
    group.attrs["p_over_t2_maxrel"] = result.p_over_t2_maxrel
    group.create_dataset(
        "params", data=np.array([result.params[n] for n in config.param_names], dtype=np.float64)
    )
    group.create_dataset(
        "scalars", data=np.array([result.scalars[n] for n in SCALAR_NAMES], dtype=np.float64)
    )
    group.create_dataset("tau", data=result.tau)
    for name in TIME_NAMES:
        group.create_dataset(f"time/{name}", data=result.time[name])
    n_tau, n_k = result.targets[config.targets[0]].shape
    options: dict[str, Any] = {"chunks": (min(n_tau, 64), n_k)}
    if storage.compression is not None:
        options.update(compression=storage.compression, shuffle=True)
        if storage.compression == "gzip":
            options["compression_opts"] = storage.compression_level
    for name in config.targets:
        group.create_dataset(f"targets/{name}", data=result.targets[name], **options)


@dataclass
class SetState:
    """Where a set stands: the consolidated file plus staging files."""

    size: int
    status: np.ndarray
    staged: dict[int, Path]
    """index -> staging file of a complete cosmology not yet in the set file."""
    failed_staged: dict[int, Path]

    def counts(self) -> dict[str, int]:
        """Complete, failed and pending numbers."""
        status = self.status.copy()
        status[list(self.staged)] = STATUS_COMPLETE
        status[list(self.failed_staged)] = STATUS_FAILED
        return {
            "size": self.size,
            "complete": int(np.sum(status == STATUS_COMPLETE)),
            "failed": int(np.sum(status == STATUS_FAILED)),
            "pending": int(np.sum(status == STATUS_PENDING)),
        }

    def pending(self, retry_failed: bool) -> list[int]:
        """Indices still to compute."""
        todo = []
        for index in range(self.size):
            if index in self.staged:
                continue
            state = self.status[index]
            failed = state == STATUS_FAILED or index in self.failed_staged
            if state == STATUS_COMPLETE or (failed and not retry_failed):
                continue
            todo.append(index)
        return todo


def _index_of(path: Path) -> int:
    return int(path.name[1:8])


def _readable(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as handle:
            return int(handle["cosmology"].attrs["complete"]) == 1
    except (OSError, KeyError):
        return False


def scan_set(out: Path, set_name: str, size: int, clean: bool) -> SetState:
    """State of a set; ``clean`` (writer only) removes leftovers of a killed run."""
    final = set_path(out, set_name)
    status = np.zeros(size, dtype=np.int8)
    if final.exists():
        with h5py.File(final, "r") as handle:
            status = handle["status"][...]
    folder = staging_dir(out, set_name)
    staged: dict[int, Path] = {}
    failed: dict[int, Path] = {}
    if clean:
        for leftover in [final.with_name(final.name + TMP_SUFFIX), *folder.glob(f"*{TMP_SUFFIX}")]:
            if leftover.exists():
                logger.info("removing %s left by an interrupted run", leftover)
                leftover.unlink()
    for path in sorted(folder.glob("c*.h5")) if folder.exists() else []:
        index = _index_of(path)
        if status[index] == STATUS_COMPLETE or (clean and not _readable(path)):
            if clean:
                path.unlink()
            continue
        staged[index] = path
    for path in sorted(folder.glob("c*.failed.json")) if folder.exists() else []:
        index = _index_of(path)
        if status[index] != STATUS_PENDING or index in staged:
            if clean:
                path.unlink()
            continue
        failed[index] = path
    return SetState(size=size, status=status, staged=staged, failed_staged=failed)


def _failures_from(handle: h5py.File | None) -> dict[int, str]:
    if handle is None or "failures" not in handle:
        return {}
    indices = handle["failures/index"][...]
    messages = handle["failures/message"].asstr()[...]
    return dict(zip((int(i) for i in indices), messages, strict=True))


def consolidate(
    out: Path,
    set_name: str,
    config: FamilyConfig,
    record: FamilyRecord,
    metadata: Mapping[str, Any],
    retried: Iterable[int] = (),
) -> dict[str, int]:
    """Rebuild ``<set>.h5`` from the old set file and the staging files, atomically.

    Raw (compressed) chunks are copied, nothing is recompressed.  ``retried``
    failures found again in the staging folder replace the old records.
    """
    points = record.points[set_name]
    state = scan_set(out, set_name, points.shape[0], clean=True)
    final = set_path(out, set_name)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    old = h5py.File(final, "r") if final.exists() else None
    try:
        failures = _failures_from(old)
        for index in retried:
            if index in state.staged or index in state.failed_staged:
                failures.pop(index, None)
        for index, path in state.failed_staged.items():
            failures[index] = json.loads(path.read_text())["error"]
        status = np.zeros(points.shape[0], dtype=np.int8)
        with h5py.File(tmp, "w") as handle:
            handle.attrs["format_version"] = FORMAT_VERSION
            handle.attrs["set"] = set_name
            handle.attrs["config_json"] = record.config_json
            for key, value in metadata.items():
                handle.attrs[key] = value
            handle.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            handle.create_dataset("k", data=record.k)
            handle.create_dataset("points", data=points)
            group = handle.create_group("cosmologies")
            p_rel = []
            if old is not None:
                for key in old["cosmologies"]:
                    index = int(old["cosmologies"][key].attrs["index"])
                    group.copy(old["cosmologies"][key], key)
                    status[index] = STATUS_COMPLETE
                    p_rel.append(float(old["cosmologies"][key].attrs["p_over_t2_maxrel"]))
            for index, path in sorted(state.staged.items()):
                with h5py.File(path, "r") as source:
                    group.copy(source["cosmology"], cosmology_key(index))
                    p_rel.append(float(source["cosmology"].attrs["p_over_t2_maxrel"]))
                status[index] = STATUS_COMPLETE
            for index in failures:
                if status[index] != STATUS_COMPLETE:
                    status[index] = STATUS_FAILED
            failures = {i: m for i, m in failures.items() if status[i] == STATUS_FAILED}
            order = sorted(failures)
            handle.create_dataset("failures/index", data=np.array(order, dtype=np.int64))
            handle.create_dataset(
                "failures/message",
                data=[failures[i] for i in order],
                dtype=h5py.string_dtype(),
            )
            handle.create_dataset("status", data=status)
            handle.attrs["p_over_t2_maxrel"] = max(p_rel) if p_rel else float("nan")
    finally:
        if old is not None:
            old.close()
    replace_into_place(tmp, final, durable=True)
    for path in [*state.staged.values(), *state.failed_staged.values()]:
        path.unlink()
    counts = scan_set(out, set_name, points.shape[0], clean=False).counts()
    logger.info("%s: %s", final, counts)
    return counts
