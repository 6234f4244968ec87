"""Training losses: the paper's mean squared error, plus its line-of-sight projection.

The C_l see a source through Delta_l(k) = int dtau S(k, tau) j_l(k (tau_0 - tau)).
For l >> 1 the Bessel function oscillates as cos(k tau) and sin(k tau) across
the recombination slices, so an error pattern reaches the spectra through its
Fourier component at frequency k along tau,

    P(k) = sum_r dtau_r err(k, tau_r) exp(i k tau_r),

summed over the tau slices of one cosmology.  Errors that cancel along the line
of sight cost nothing there; errors coherent over the visibility peak cost
much, and the plain MSE does not tell the two apart.  ``ProjectedSourceLoss``
adds ``weight * mean_k |P(k)|^2`` (dtau in units of tau_rec) to each slice's MSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

LINE_OF_SIGHT_COLUMNS = ("tau", "dtau_over_tau_rec", "cosmology")
"""Columns appended to the target when the projected loss is used."""


def trapezoid_weights(tau: np.ndarray) -> np.ndarray:
    """Weights of the trapezoid rule over the (ascending) slices ``tau``."""
    if tau.size < 2:
        return np.zeros_like(tau)
    edges = np.diff(tau) / 2.0
    return np.concatenate([edges, [0.0]]) + np.concatenate([[0.0], edges])


@keras.saving.register_keras_serializable(package="cosmicnet")
class ProjectedSourceLoss(keras.losses.Loss):
    """MSE per tau slice plus ``weight`` times its cosmology's projected error."""

    def __init__(
        self,
        k: Sequence[float],
        weight: float,
        segments: int,
        name: str = "projected_source_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.k = [float(value) for value in k]
        self.weight = float(weight)
        self.segments = int(segments)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        n = len(self.k)
        error = y_pred - y_true[:, :n]
        tau, dtau = y_true[:, n], y_true[:, n + 1]
        ids = ops.cast(y_true[:, n + 2], "int32")
        phase = ops.expand_dims(tau, 1) * ops.expand_dims(ops.convert_to_tensor(self.k), 0)
        weighted = error * ops.expand_dims(dtau, 1)
        real = ops.segment_sum(weighted * ops.cos(phase), ids, num_segments=self.segments)
        imaginary = ops.segment_sum(weighted * ops.sin(phase), ids, num_segments=self.segments)
        projected = ops.mean(real**2 + imaginary**2, axis=1)
        return ops.mean(error**2, axis=1) + self.weight * ops.take(projected, ids)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "k": self.k,
            "weight": self.weight,
            "segments": self.segments,
        }


def projected_error(error: np.ndarray, tau: np.ndarray, dtau: np.ndarray, k: np.ndarray) -> float:
    """mean_k |P(k)|^2 of one cosmology's error (slices x k), NumPy (diagnostics)."""
    phase = np.exp(1j * np.outer(tau, k))
    projected = np.sum(error * dtau[:, None] * phase, axis=0)
    return float(np.mean(np.abs(projected) ** 2))
