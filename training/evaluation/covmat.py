"""Cobaya covariance-matrix files (``# name1 name2 ...`` header, then the matrix)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def read_covmat(path: Path) -> tuple[list[str], np.ndarray]:
    """A Cobaya covmat file: parameter names from the ``#`` header, then the matrix."""
    with open(path) as stream:
        header = stream.readline()
    if not header.startswith("#"):
        raise ValueError(f"{path}: a covmat starts with '# name1 name2 ...'")
    names = header[1:].split()
    matrix = np.atleast_2d(np.loadtxt(path))
    if matrix.shape != (len(names), len(names)):
        raise ValueError(f"{path}: {len(names)} names but a {matrix.shape} matrix")
    return names, matrix


def covariance_of(path: Path, wanted: Sequence[str]) -> np.ndarray:
    """The rows and columns of ``wanted`` (in that order) of the covmat at ``path``."""
    names, matrix = read_covmat(path)
    missing = [name for name in wanted if name not in names]
    if missing:
        raise ValueError(f"{path} has no row for {missing} (it has {names})")
    index = [names.index(name) for name in wanted]
    return matrix[np.ix_(index, index)]
