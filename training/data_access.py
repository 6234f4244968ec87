"""Random access to a generated set for training (features cached, targets read lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures
from training.dataset import GeneratedSet, open_set


class SetReader:
    """A :class:`training.train.CosmologySet` over ``<data>/<set>.h5``."""

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
