"""Training losses: the paper's mean squared error, plus its line-of-sight projection.

The C_l see a source through Delta_l(k) = int dtau S(k, tau) j_l(k (tau_0 - tau)).
Along tau, j_l oscillates with the local frequency omega = k sqrt(1 - (l / x)^2),
x = k (tau_0 - tau): from omega ~ 0 at the turning point x ~ l, where most of
C_l comes from, up to omega ~ k for x >> l.  An error pattern therefore
reaches the spectra through its Fourier components along tau at frequencies
omega = f k, 0 <= f <= 1 (default f = 0, 0.25, 0.5),

    P_f(k) = sum_r dtau_r err(k, tau_r) exp(i f k tau_r),

summed over the tau slices of one cosmology (f = 0: the plain integral).
Errors that cancel along the line of sight cost nothing there; errors coherent
over the visibility peak cost much, and the plain MSE does not tell the two
apart.  ``ProjectedSourceLoss`` adds ``weight * sum_f mean_k |P_f(k)|^2``
(dtau in units of tau_rec) to each slice's MSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np


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
        frequencies: Sequence[float] = (0.0,),
        name: str = "projected_source_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.k = [float(value) for value in k]
        self.weight = float(weight)
        self.segments = int(segments)
        self.frequencies = [float(value) for value in frequencies]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        n = len(self.k)
        error = y_pred - y_true[:, :n]
        tau, dtau = y_true[:, n], y_true[:, n + 1]
        ids = ops.cast(y_true[:, n + 2], "int32")
        weighted = error * ops.expand_dims(dtau, 1)
        k_tau = ops.expand_dims(tau, 1) * ops.expand_dims(ops.convert_to_tensor(self.k), 0)
        projected = 0.0
        for fraction in self.frequencies:
            phase = fraction * k_tau
            real = ops.segment_sum(weighted * ops.cos(phase), ids, num_segments=self.segments)
            imaginary = ops.segment_sum(weighted * ops.sin(phase), ids, num_segments=self.segments)
            projected = projected + ops.mean(real**2 + imaginary**2, axis=1)
        return ops.mean(error**2, axis=1) + self.weight * ops.take(projected, ids)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "k": self.k,
            "weight": self.weight,
            "segments": self.segments,
            "frequencies": self.frequencies,
        }


def projected_error(
    error: np.ndarray,
    tau: np.ndarray,
    dtau: np.ndarray,
    k: np.ndarray,
    frequencies: Sequence[float] = (0.0,),
) -> float:
    """sum_f mean_k |P_f(k)|^2 of one cosmology's error (slices x k), NumPy."""
    total = 0.0
    for fraction in frequencies:
        phase = np.exp(1j * fraction * np.outer(tau, k))
        projected = np.sum(error * dtau[:, None] * phase, axis=0)
        total += float(np.mean(np.abs(projected) ** 2))
    return total
