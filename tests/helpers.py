"""Shared test helpers: the repository root and a synthetic stand-in for a generated set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmicnet_cobaya.features import SCALAR_NAMES, CosmologyFeatures

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("omega_b", "omega_cdm", "H0", "tau_reio")
TINY = {
    "seed": 3,
    "train": ["t0", "t0_late", "t2", "delta_m"],
    **{
        name: {
            "epochs": 1,
            "time_dense": [8, 6],
            "params_dense": 4,
            "scales_dense": 3,
            "central_dense": [12],
            "conv_branches": [[{"filters": 3, "kernel": 3, "stride": 2, "pool": 2}]],
        }
        for name in ("t0", "t0_late", "t2", "delta_m")
    },
}
TINY["t2"]["tau_range"] = None  # one network for all times


class SyntheticSet:
    """A few fake cosmologies with the shapes of a generated set."""

    def __init__(self, n: int, seed: int, n_tau: int = 30, n_k: int = 40) -> None:
        rng = np.random.default_rng(seed)
        self.k = np.geomspace(1e-4, 0.3, n_k)
        self.param_names = PARAMS
        self._items = []
        for _ in range(n):
            params = dict(
                zip(PARAMS, (0.0224, 0.12, 67.0, 0.055) * rng.uniform(0.9, 1.1, 4), strict=True)
            )
            half = n_tau // 2
            tau = np.sort(
                np.concatenate(
                    [rng.uniform(200.0, 400.0, half), rng.uniform(450.0, 14000.0, n_tau - half)]
                )
            )
            g = np.exp(-(((tau - 280.0) / 20.0) ** 2)) / 20.0
            time = {
                "g": g,
                "g_prime": np.gradient(g, tau),
                "e_kappa": 1.0 / (1.0 + np.exp(-(tau - 280.0) / 10.0)),
                "r_s": 150.0 * np.tanh(tau / 300.0),
                "k_D": 0.1 + 1e-3 * tau,
            }
            scalars = dict(
                zip(SCALAR_NAMES, rng.uniform(100.0, 500.0, len(SCALAR_NAMES)), strict=True)
            )
            scalars["tau_rec"] = 280.0 * rng.uniform(0.98, 1.02)
            features = CosmologyFeatures(params, scalars, tau, time)
            kr = np.outer(time["r_s"], self.k)
            targets = {
                "t0": np.cos(kr) * g[:, None] * 10.0,
                "t2": np.sin(kr) * g[:, None],
                "delta_m": -(np.outer(tau, self.k) ** 2) * 1e-2 - 1e-9,
            }
            self._items.append((features, targets))

    def __len__(self) -> int:
        return len(self._items)

    def features(self, index: int) -> CosmologyFeatures:
        return self._items[index][0]

    def target(self, index: int, name: str) -> np.ndarray:
        return self._items[index][1][name]


def copy_set_files(source: Path, target: Path) -> Path:
    """Copy every plain file of a set folder into a new folder ``target``."""
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    return target
