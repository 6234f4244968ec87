"""Affine and logarithmic rescalings of network inputs and outputs (paper eq. 2.12-2.13).

Every coefficient is a plain number or list, so it is stored in the network
set's ``metadata.json`` and read back without any training code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OUTPUT_TRANSFORMS = ("affine", "affine_k", "log_abs", "asinh")
"""affine: one mean and standard deviation per source (the paper); affine_k: one
per k (each standard deviation kept within ``std_floor`` and ``std_cap`` times
the source's overall one, so that the loss weighs the damped high-k tail by its
own scale without being swamped by k values where the source vanishes, nor
neglecting the large-scale k values); log_abs: sign * exp(mean_k + std_k * y),
for single-signed sources with a large dynamic range; asinh:
scale * sinh(mean_k + std_k * y), logarithmic for |S| >> scale but tolerant
of sign changes (phi_plus_psi, delta_m, delta_cb)."""


@dataclass(frozen=True)
class Standardiser:
    """x -> (x - mean) / std for a fixed list of named quantities."""

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, names: Sequence[str], samples: Iterable[Mapping[str, float]]) -> Standardiser:
        """Mean and standard deviation of each name over ``samples`` (eq. 2.12)."""
        rows = np.array([[float(sample[name]) for name in names] for sample in samples])
        if rows.size == 0:
            raise ValueError("cannot fit a standardiser on an empty set")
        std = rows.std(axis=0)
        std[std == 0.0] = 1.0
        return cls(tuple(names), rows.mean(axis=0), std)

    def apply(self, values: Mapping[str, float]) -> np.ndarray:
        """The standardised vector of ``values`` in the order of ``names``."""
        missing = [name for name in self.names if name not in values]
        if missing:
            raise KeyError(f"missing quantities {missing} (have {sorted(values)})")
        raw = np.array([float(values[name]) for name in self.names])
        return (raw - self.mean) / self.std

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready coefficients."""
        return {"names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Standardiser:
        """Inverse of :meth:`to_dict`."""
        names = tuple(data["names"])
        mean = np.asarray(data["mean"], dtype=float)
        std = np.asarray(data["std"], dtype=float)
        if mean.shape != (len(names),) or std.shape != (len(names),):
            raise ValueError("standardiser coefficients do not match its names")
        return cls(names, mean, std)


@dataclass(frozen=True)
class InputNormalisation:
    """Coefficients of the scalar inputs: parameters, scales and the g, g' peaks."""

    params: Standardiser
    scales: Standardiser
    g_max_mean: float
    g_prime_max_mean: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready coefficients."""
        return {
            "params": self.params.to_dict(),
            "scales": self.scales.to_dict(),
            "g_max_mean": self.g_max_mean,
            "g_prime_max_mean": self.g_prime_max_mean,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputNormalisation:
        """Inverse of :meth:`to_dict`."""
        return cls(
            params=Standardiser.from_dict(data["params"]),
            scales=Standardiser.from_dict(data["scales"]),
            g_max_mean=float(data["g_max_mean"]),
            g_prime_max_mean=float(data["g_prime_max_mean"]),
        )


@dataclass
class _Moments:
    """Running sums for a mean and standard deviation over axis 0 of 2-d blocks."""

    count: int = 0
    total: np.ndarray | float = 0.0
    squares: np.ndarray | float = 0.0

    def add(self, block: np.ndarray) -> None:
        self.count += block.shape[0]
        self.total = self.total + block.sum(axis=0)
        self.squares = self.squares + (block**2).sum(axis=0)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.total / self.count)
        var = np.maximum(np.asarray(self.squares / self.count) - mean**2, 0.0)
        std = np.sqrt(var)
        return mean, np.where(std > 0.0, std, 1.0)


@dataclass(frozen=True)
class OutputTransform:
    """Maps a physical source S(k) to the standardised network output y(k) and back."""

    kind: str
    mean: np.ndarray
    std: np.ndarray
    sign: float = 1.0
    floor: float = 0.0
    """log_abs: |S| is clipped below at this value before the logarithm;
    asinh: the scale below which the transform is linear."""

    def __post_init__(self) -> None:
        if self.kind not in OUTPUT_TRANSFORMS:
            raise ValueError(f"unknown output transform {self.kind!r}: use {OUTPUT_TRANSFORMS}")

    @classmethod
    def fit(
        cls,
        kind: str,
        targets: Iterable[np.ndarray],
        std_floor: float = 0.0,
        std_cap: float = 0.0,
    ) -> OutputTransform:
        """Fit the coefficients on (n_tau, n_k) target arrays of the training set.

        affine_k only: no per-k standard deviation is taken below ``std_floor``
        or (when ``std_cap`` > 0) above ``std_cap`` times the standard deviation
        of the source over every k, the one ``affine`` uses.
        """
        if (std_floor or std_cap) and kind != "affine_k":
            raise ValueError(f"std_floor and std_cap apply to affine_k, not {kind!r}")
        if std_floor < 0.0 or std_cap < 0.0 or (std_cap and std_cap < std_floor):
            raise ValueError(f"need 0 <= std_floor <= std_cap, got {std_floor}, {std_cap}")
        moments = _Moments()
        signs = set()
        peak = 0.0
        blocks = list(targets) if kind in ("log_abs", "asinh") else targets
        floor = 0.0
        if kind == "log_abs":
            peak = max(float(np.abs(block).max()) for block in blocks)
            floor = 1e-30 * peak
        elif kind == "asinh":
            magnitudes = np.concatenate([np.abs(np.ravel(block)) for block in blocks])
            floor = (
                float(np.quantile(magnitudes[magnitudes > 0], 0.01)) if np.any(magnitudes) else 1.0
            )
        for block in blocks:
            block = np.asarray(block, dtype=float)
            if kind == "log_abs":
                nonzero = block[block != 0.0]
                signs.update(np.unique(np.sign(nonzero)).tolist())
                block = np.log(np.maximum(np.abs(block), floor))
            elif kind == "asinh":
                block = np.arcsinh(block / floor)
            moments.add(block if kind != "affine" else block.reshape(-1, 1))
        if moments.count == 0:
            raise ValueError("cannot fit an output transform on an empty set")
        mean, std = moments.result()
        if kind == "affine":
            mean, std = mean.reshape(()), std.reshape(())
        if std_floor or std_cap:
            overall_mean = float(np.mean(mean))
            overall = np.sqrt(max(float(np.mean(std**2 + mean**2)) - overall_mean**2, 0.0))
            std = np.maximum(std, std_floor * overall)
            if std_cap:
                std = np.minimum(std, std_cap * overall)
        sign = 1.0
        if kind == "log_abs":
            if len(signs) > 1:
                raise ValueError("log_abs needs a source of one sign; this one changes sign")
            sign = float(signs.pop()) if signs else 1.0
        return cls(kind, np.asarray(mean, float), np.asarray(std, float), sign, floor)

    def forward(self, source: np.ndarray) -> np.ndarray:
        """Physical source -> standardised output."""
        if self.kind == "log_abs":
            source = np.log(np.maximum(np.abs(source), self.floor))
        elif self.kind == "asinh":
            source = np.arcsinh(source / self.floor)
        return (source - self.mean) / self.std

    @functools.cached_property
    def _float32_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        return self.std.astype(np.float32), self.mean.astype(np.float32)

    def inverse(self, output: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Standardised output -> physical source.

        float64, or written into ``out`` in its precision (float32 or float64)
        when given: float32 keeps the networks' own precision at half the memory.
        """
        if out is not None and out.dtype == np.float32:
            std, mean = self._float32_coefficients
            value = np.multiply(output, std, out=out)
        else:
            std, mean = self.std, self.mean
            value = np.multiply(output, std, dtype=np.float64, out=out)
        value += mean
        if self.kind == "log_abs":
            np.exp(value, out=value)
            value *= self.sign
        elif self.kind == "asinh":
            # sinh from two exp calls: NumPy's exp is vectorised, its sinh is not (3x slower).
            negative = np.exp(np.negative(value))
            np.exp(value, out=value)
            value -= negative
            value *= 0.5 * self.floor
        return value

    @property
    def is_affine(self) -> bool:
        """Whether the physical source is an affine function of the output (affine kinds)."""
        return self.kind in ("affine", "affine_k")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready coefficients."""
        return {
            "kind": self.kind,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "sign": self.sign,
            "floor": self.floor,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputTransform:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=str(data["kind"]),
            mean=np.asarray(data["mean"], dtype=float),
            std=np.asarray(data["std"], dtype=float),
            sign=float(data.get("sign", 1.0)),
            floor=float(data.get("floor", 0.0)),
        )
