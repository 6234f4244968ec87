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

Over late times, where the distance tau_0 - tau changes much along the
range, the fixed frequencies do not stand for the Bessel kernel (most dtau
lies near today, which multipoles l >= 30 do not see).  There the projection
can use the kernel itself, at chosen multipoles and for k <= k_max,

    B_l(k) = sum_r dtau_r err(k, tau_r) j_l(k (tau_0 - tau_r)),

with j_l interpolated linearly in a table (step :data:`BESSEL_STEP`); a
polarisation source (S_T2) is projected with the E-mode kernel j_l(x) / x^2.
A Bessel-kernel projection only sees the chosen multipoles; with
``frequency_weight`` the loss also adds that weight times the frequency
projection, which keeps the error small between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from training.learning.line_of_sight import BESSEL_STEP, LineOfSightProjection, bessel_table


@keras.saving.register_keras_serializable(package="cosmicnet")
class ProjectedSourceLoss(keras.losses.Loss):
    """MSE per tau slice plus ``weight`` times its cosmology's projected error.

    ``y_true`` carries, after the n_k targets, the columns tau, dtau, tau_0 - tau
    and the cosmology's place in the step (``training.learning.batches.with_line_of_sight``);
    with ``spectrum``, then the multipole whose weights v_l(k) a row carries
    (-1: none; with the TE term, the number of multipoles plus i for the TE
    weights of multipole i) and those weights
    (``training.learning.line_of_sight.spectrum_weights``).
    """

    def __init__(
        self,
        k: Sequence[float],
        weight: float,
        segments: int,
        frequencies: Sequence[float] = (0.0,),
        multipoles: Sequence[int] = (),
        k_max: float = 0.1,
        spectrum: bool = False,
        frequency_weight: float = 0.0,
        te_weight: float = 0.0,
        shift_weight: float = 0.0,
        shift_matrix: Sequence[Sequence[float]] = (),
        polarisation: bool = False,
        name: str = "projected_source_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.k = [float(value) for value in k]
        self.weight = float(weight)
        self.segments = int(segments)
        self.frequency_weight = float(frequency_weight)
        if self.frequency_weight and not multipoles:
            raise ValueError(
                "frequency_weight adds the frequency projection to a Bessel-kernel one: "
                "give multipoles too (without them the frequency projection is the loss, "
                "weighted by weight)"
            )
        self.projection = LineOfSightProjection(
            tuple(float(value) for value in frequencies),
            tuple(int(value) for value in multipoles),
            float(k_max),
            bool(spectrum),
            float(te_weight),
            float(shift_weight),
            tuple(tuple(float(value) for value in row) for row in shift_matrix),
            bool(polarisation),
        )
        self._table = (
            bessel_table(self.projection.multipoles, self.projection.k_max)
            if self.projection.multipoles
            else None
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        n = len(self.k)
        error = y_pred - y_true[:, :n]
        tau, dtau, distance = y_true[:, n], y_true[:, n + 1], y_true[:, n + 2]
        ids = ops.cast(y_true[:, n + 3], "int32")
        weighted = error * ops.expand_dims(dtau, 1)
        projected, added = 0.0, 0.0
        if self._table is None:
            projected = self._frequency_projection(weighted, tau, ids)
        else:
            if self.frequency_weight:
                added = self.frequency_weight * self._frequency_projection(weighted, tau, ids)
            used = self.projection.k_count(np.asarray(self.k))
            k = ops.convert_to_tensor(np.asarray(self.k[:used], np.float32))
            size = self._table.shape[1]
            position = ops.clip(
                ops.expand_dims(distance, 1) * ops.expand_dims(k, 0) / BESSEL_STEP,
                0.0,
                size - 1.000001,
            )
            index = ops.floor(position)
            fraction = position - index
            index = ops.cast(index, "int32")
            weighted = weighted[:, :used]
            if self.projection.polarisation:
                # The E-mode kernel j_l(x) / x^2 (j_l vanishes at x = 0 for l >= 2).
                x = ops.expand_dims(distance, 1) * ops.expand_dims(k, 0)
                weighted = weighted * ops.where(x > 0.0, 1.0 / ops.maximum(x, 1e-6) ** 2, 0.0)
            spectrum = self.projection.spectrum
            tt_errors: list[Any] = []
            te_errors: list[Any] = []
            for place, row in enumerate(self._table):
                table = ops.convert_to_tensor(row)
                kernel = (
                    ops.take(table, index) * (1.0 - fraction)
                    + ops.take(table, index + 1) * fraction
                )
                summed = ops.segment_sum(weighted * kernel, ids, num_segments=self.segments)
                if not spectrum:
                    projected = projected + ops.mean(summed**2, axis=1)
                    continue
                tt = self._relative_error(y_true, summed, place, ids)
                projected = projected + tt**2
                tt_errors.append(tt)
                if self.projection.te_weight:
                    te_place = place + len(self.projection.multipoles)
                    te = self._relative_error(y_true, summed, te_place, ids)
                    projected = projected + self.projection.te_weight * te**2
                    te_errors.append(te)
            if self.projection.shift_weight:
                shift = self._shift(tt_errors + te_errors)
                projected = projected + self.projection.shift_weight * shift
        return ops.mean(error**2, axis=1) + ops.take(self.weight * projected + added, ids)

    def _shift(self, relative: list[Any]) -> Any:
        """sum_p (M (r, t))_p^2 per cosmology; ``relative``: the r_i, then the t_i."""
        ops = keras.ops
        errors = ops.stack(relative, axis=1)
        matrix = ops.convert_to_tensor(np.asarray(self.projection.shift_matrix, np.float32))
        return ops.sum(ops.matmul(errors, ops.transpose(matrix)) ** 2, axis=1)

    def _relative_error(self, y_true: Any, summed: Any, place: int, ids: Any) -> Any:
        """Per cosmology: the relative C_l error whose weights the rows marked ``place`` carry."""
        ops = keras.ops
        n = len(self.k)
        used = summed.shape[1]
        mine = ops.expand_dims(ops.cast(ops.equal(y_true[:, n + 4], float(place)), "float32"), 1)
        weights = ops.segment_sum(
            y_true[:, n + 5 : n + 5 + used] * mine, ids, num_segments=self.segments
        )
        return ops.sum(weights * summed, axis=1)

    def _frequency_projection(self, weighted: Any, tau: Any, ids: Any) -> Any:
        """sum_f mean_k |P_f(k)|^2 per cosmology of the step."""
        ops = keras.ops
        k_tau = ops.expand_dims(tau, 1) * ops.expand_dims(ops.convert_to_tensor(self.k), 0)
        projected = 0.0
        for fraction in self.projection.frequencies:
            phase = fraction * k_tau
            real = ops.segment_sum(weighted * ops.cos(phase), ids, num_segments=self.segments)
            imaginary = ops.segment_sum(weighted * ops.sin(phase), ids, num_segments=self.segments)
            projected = projected + ops.mean(real**2 + imaginary**2, axis=1)
        return projected

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "k": self.k,
            "weight": self.weight,
            "segments": self.segments,
            "frequencies": list(self.projection.frequencies),
            "multipoles": list(self.projection.multipoles),
            "k_max": self.projection.k_max,
            "spectrum": self.projection.spectrum,
            "frequency_weight": self.frequency_weight,
            "te_weight": self.projection.te_weight,
            "shift_weight": self.projection.shift_weight,
            "shift_matrix": [list(row) for row in self.projection.shift_matrix],
            "polarisation": self.projection.polarisation,
        }
