"""Read generated sets (layout: docs/data-format.md).

    from training.generation.dataset import open_set

    with open_set("work/lcdm/training.h5") as data:
        data.k                       # (n_k,) family k grid [1/Mpc]
        data.param_names, data.target_names, data.metadata
        len(data)                    # complete cosmologies
        for item in data:            # complete cosmologies only, by index
            item.features            # cosmicnet_cobaya.features.CosmologyFeatures
            item.targets["t0"]       # (n_tau, n_k) on data.k
        data.params_table()          # (n_complete, n_params)
        data.failures()              # {index: CLASS error message}

Only cosmologies flagged complete are ever returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures
from training.generation.storage import STATUS_COMPLETE, STATUS_FAILED, cosmology_key


@dataclass(frozen=True)
class Cosmology:
    """One complete cosmology: network inputs and targets."""

    index: int
    features: CosmologyFeatures
    targets: dict[str, np.ndarray]
    """Source name -> (n_tau, n_k) on the family k grid."""

    @property
    def tau(self) -> np.ndarray:
        """Conformal times [Mpc] of the rows of every target (CLASS's own sampling)."""
        return self.features.tau


class GeneratedSet:
    """An open set file; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "r")
        attrs = self._file.attrs
        self.metadata: dict[str, Any] = {key: _plain(attrs[key]) for key in attrs}
        self.k: np.ndarray = self._file["k"][...]
        self.points: np.ndarray = self._file["points"][...]
        """Every Latin-hypercube point of the set, by index (complete or not)."""
        self.status: np.ndarray = self._file["status"][...]
        self.param_names: tuple[str, ...] = tuple(self.metadata["param_names"])
        self.target_names: tuple[str, ...] = tuple(self.metadata["target_names"])
        self.scalar_names: tuple[str, ...] = tuple(self.metadata["scalar_names"])
        self.time_names: tuple[str, ...] = tuple(self.metadata["time_names"])
        self.indices: np.ndarray = np.flatnonzero(self.status == STATUS_COMPLETE)
        """Indices of the complete cosmologies, increasing."""

    @property
    def config(self) -> dict[str, Any]:
        """The family config mapping the set was generated with."""
        return json.loads(self.metadata["config_json"])

    def __len__(self) -> int:
        return int(self.indices.size)

    def __iter__(self) -> Iterator[Cosmology]:
        for index in self.indices:
            yield self.cosmology(int(index))

    def cosmology(self, index: int, targets: Sequence[str] | None = None) -> Cosmology:
        """Complete cosmology ``index`` (KeyError if it is not complete)."""
        if not 0 <= index < self.status.size or self.status[index] != STATUS_COMPLETE:
            raise KeyError(f"cosmology {index} is not complete in {self.path}")
        group = self._file["cosmologies"][cosmology_key(index)]
        params = group["params"][...]
        scalars = group["scalars"][...]
        features = CosmologyFeatures(
            params=dict(zip(self.param_names, map(float, params), strict=True)),
            scalars=dict(zip(self.scalar_names, map(float, scalars), strict=True)),
            tau=group["tau"][...],
            time={name: group["time"][name][...] for name in self.time_names},
        )
        names = self.target_names if targets is None else tuple(targets)
        return Cosmology(
            index=index,
            features=features,
            targets={name: group["targets"][name][...] for name in names},
        )

    def params_table(self) -> np.ndarray:
        """Parameters of the complete cosmologies, shape (len(self), n_params)."""
        return self.points[self.indices]

    def failures(self) -> dict[int, str]:
        """CLASS error message of each failed point."""
        indices = self._file["failures/index"][...]
        messages = self._file["failures/message"].asstr()[...]
        return dict(zip((int(i) for i in indices), messages, strict=True))

    def counts(self) -> dict[str, int]:
        """Complete, failed and pending numbers in this file."""
        return {
            "complete": int(np.sum(self.status == STATUS_COMPLETE)),
            "failed": int(np.sum(self.status == STATUS_FAILED)),
            "pending": int(np.sum(self.status == 0)),
        }

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> GeneratedSet:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def open_set(path: str | Path) -> GeneratedSet:
    """Open a generated set file (``<out>/<set>.h5``) for reading."""
    return GeneratedSet(path)
