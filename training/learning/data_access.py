"""Random access to a generated set for training (features cached, targets read lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures
from training.generation.dataset import GeneratedSet, open_set
from training.generation.kgrid import same_k_grid


class SetReader:
    """A :class:`training.learning.batches.CosmologySet` over ``<data>/<set>.h5``."""

    def __init__(self, path: str | Path, limit: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no generated set {path}: run `cosmicnet generate` first")
        self.path = path
        self._set: GeneratedSet = open_set(path)
        indices = self._set.indices
        self._indices = indices if limit is None else indices[:limit]
        if self._indices.size == 0:
            raise ValueError(f"{path} holds no complete cosmology")
        self.k: np.ndarray = self._set.k
        self.param_names: tuple[str, ...] = self._set.param_names
        self.target_names: tuple[str, ...] = self._set.target_names
        self._features: dict[int, CosmologyFeatures] = {}

    def __len__(self) -> int:
        return int(self._indices.size)

    def features(self, index: int) -> CosmologyFeatures:
        """Network inputs of the ``index``-th complete cosmology (cached)."""
        if index not in self._features:
            self._features[index] = self._set.cosmology(int(self._indices[index]), ()).features
        return self._features[index]

    def target(self, index: int, name: str) -> np.ndarray:
        """Source ``name`` of the ``index``-th complete cosmology, (n_tau, n_k)."""
        if name not in self.target_names:
            raise KeyError(f"{self.path} stores no target {name!r} (it has {self.target_names})")
        return self._set.cosmology(int(self._indices[index]), (name,)).targets[name]

    def close(self) -> None:
        """Close the HDF5 file."""
        self._set.close()


class CombinedSets:
    """Several generated sets of one family read as one ``CosmologySet`` (learning/train.py).

    E.g. the family's training set plus a set drawn from the centre of the box
    (``box_fraction``), generated in another folder with the same k grid.
    """

    def __init__(self, readers: Sequence[SetReader]) -> None:
        if not readers:
            raise ValueError("no set to combine")
        first = readers[0]
        for reader in readers[1:]:
            if not same_k_grid(reader.k, first.k):
                raise ValueError(
                    f"{reader.path} has another k grid than {first.path}: "
                    "generate both with the same family config (k_grid, params box)"
                )
            if (reader.param_names, reader.target_names) != (first.param_names, first.target_names):
                raise ValueError(
                    f"{reader.path} varies or stores other quantities than {first.path}"
                )
        self.readers = tuple(readers)
        self.k: np.ndarray = first.k
        self.param_names: tuple[str, ...] = first.param_names
        self.target_names: tuple[str, ...] = first.target_names
        self._starts = np.cumsum([0] + [len(reader) for reader in readers])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int) -> tuple[SetReader, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"cosmology {index} of {len(self)}")
        which = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.readers[which], index - int(self._starts[which])

    def features(self, index: int) -> CosmologyFeatures:
        """Network inputs of the ``index``-th cosmology of the combined sets."""
        reader, local = self._locate(index)
        return reader.features(local)

    def target(self, index: int, name: str) -> np.ndarray:
        """Source ``name`` of the ``index``-th cosmology of the combined sets."""
        reader, local = self._locate(index)
        return reader.target(local, name)

    def close(self) -> None:
        """Close every set's HDF5 file."""
        for reader in self.readers:
            reader.close()
