"""Training batches: the served rows of one or several cosmologies, padded and stacked.

One batch is one cosmology (all its tau slices, paper section 3.2) or several
(``cosmologies_per_batch``), each weighing the same; ``BatchCache`` keeps built
batches within a memory limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cosmicnet_cobaya.features import CosmologyFeatures, k_bases
from cosmicnet_cobaya.networks.inputs import assemble_inputs
from cosmicnet_cobaya.networks.normalisation import InputNormalisation, OutputTransform
from cosmicnet_cobaya.networks.time_ranges import rows_in_range
from training.configuration.networks import NetworkConfig
from training.learning.line_of_sight import (
    spectrum_weights,
    trapezoid_weights,
)


class CosmologySet(Protocol):
    """Random access to the cosmologies of a generated set."""

    k: np.ndarray
    param_names: tuple[str, ...]

    def __len__(self) -> int: ...

    def features(self, index: int) -> CosmologyFeatures: ...

    def target(self, index: int, name: str) -> np.ndarray: ...


@dataclass(frozen=True)
class Batch:
    """Inputs and standardised targets of one cosmology."""

    inputs: dict[str, np.ndarray]
    target: np.ndarray
    line_of_sight: np.ndarray | None = None
    """Per slice: tau [Mpc], its trapezoid weight in units of tau_rec and the distance
    tau_0 - tau [Mpc] (projected loss)."""
    spectrum_weights: np.ndarray | None = None
    """Per multipole and k: v_l(k) of the projection onto relative C_l errors."""

    @property
    def nbytes(self) -> int:
        """Memory held by the inputs, the target and the line-of-sight columns."""
        extras = (self.line_of_sight, self.spectrum_weights)
        return (
            self.target.nbytes
            + sum(value.nbytes for value in self.inputs.values())
            + sum(value.nbytes for value in extras if value is not None)
        )


def served_rows(features: CosmologyFeatures, config: NetworkConfig) -> np.ndarray:
    """Mask of the tau slices of a cosmology that the network serves."""
    return rows_in_range(features.tau, features.scalars["tau_rec"], config.tau_range)


def make_batch(
    data: CosmologySet,
    index: int,
    config: NetworkConfig,
    norm: InputNormalisation,
    transform: OutputTransform,
) -> Batch:
    """Network inputs and standardised target of cosmology ``index`` (served rows only)."""
    every = data.features(index)
    mask = served_rows(every, config)
    features = every.rows(mask)
    bases = k_bases(features, data.k)
    inputs = assemble_inputs(features, config.inputs, norm, bases)
    whole_source = np.asarray(data.target(index, config.source), dtype=np.float64)
    target = transform.forward(whole_source[mask])
    line_of_sight = line_of_sight_columns(every)
    spectrum = None
    if config.projection.spectrum:
        if not transform.is_affine:
            raise ValueError(
                f"{config.source}: the spectrum projection needs an affine output transform"
            )
        # Affine: a network error err is a source error std * err (std per k or one value).
        scale = np.broadcast_to(transform.std, data.k.shape)
        partner = (
            np.asarray(data.target(index, config.projection.partner_source), dtype=np.float64)
            if config.projection.te_weight
            else None
        )
        spectrum = spectrum_weights(
            whole_source, line_of_sight, data.k, config.projection, scale, partner
        ).astype(np.float32)
    return Batch(
        inputs,
        np.ascontiguousarray(target, dtype=np.float32),
        line_of_sight[mask].astype(np.float32),
        spectrum,
    )


def line_of_sight_columns(features: CosmologyFeatures) -> np.ndarray:
    """tau, its trapezoid weight in units of tau_rec, and tau_0 - tau, per slice."""
    weights = trapezoid_weights(features.tau) / features.scalars["tau_rec"]
    # Flat cosmologies: the conformal age is tau_rec plus the comoving distance to it.
    distance = features.scalars["tau_rec"] + features.scalars["ra_rec"] - features.tau
    return np.stack([features.tau, weights, distance], axis=1)


PAD_MULTIPLE = 64
"""Batches are padded to a multiple of this many tau slices (with zero sample
weight), so that cosmologies with different tau counts reuse a few traced graphs."""


def padded(batch: Batch, multiple: int = PAD_MULTIPLE) -> tuple[dict, np.ndarray, np.ndarray]:
    """Inputs, target and sample weights of one cosmology, padded to a multiple of ``multiple``."""
    return stacked([batch], multiple)


def stacked(
    batches: Sequence[Batch], multiple: int = PAD_MULTIPLE
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Several cosmologies in one training step, padded to a multiple of ``multiple`` rows.

    Padding rows weigh zero and the rows of each cosmology weigh
    n_padded / (n_cosmologies n_rows), so the weighted mean is the mean over
    the cosmologies of their own mean squared error: every cosmology counts
    the same, whatever its number of tau slices.
    """
    batches = [batch for batch in batches if batch.target.shape[0]]
    if not batches:
        raise ValueError("no cosmology in this step has a tau slice in the network's range")
    n = sum(batch.target.shape[0] for batch in batches)
    m = -(-n // multiple) * multiple

    def join(values: list[np.ndarray]) -> np.ndarray:
        first = values[0]
        return np.concatenate([*values, np.zeros((m - n, *first.shape[1:]), first.dtype)])

    weights = np.concatenate(
        [np.full(b.target.shape[0], m / (len(batches) * b.target.shape[0])) for b in batches]
        + [np.zeros(m - n)]
    ).astype(np.float32)
    inputs = {key: join([batch.inputs[key] for batch in batches]) for key in batches[0].inputs}
    return inputs, join([batch.target for batch in batches]), weights


def with_line_of_sight(batches: Sequence[Batch], target: np.ndarray) -> np.ndarray:
    """``stacked``'s target with the columns the projected loss reads.

    Appends tau, its trapezoid weight, the distance tau_0 - tau and the
    cosmology's place in the step (padding rows: one past the last, with zero
    weight); with spectrum weights, the multipole a row carries (the first rows
    of each cosmology, one multipole each; -1: none) and its weights v_l(k).
    """
    batches = [batch for batch in batches if batch.target.shape[0]]
    spectrum = batches[0].spectrum_weights
    extra = 0 if spectrum is None else 1 + spectrum.shape[1]
    columns = np.zeros((target.shape[0], 4 + extra), np.float32)
    columns[:, 3] = len(batches)
    if extra:
        columns[:, 4] = -1.0
    start = 0
    for place, batch in enumerate(batches):
        stop = start + batch.target.shape[0]
        columns[start:stop, :3] = batch.line_of_sight
        columns[start:stop, 3] = place
        if extra:
            weights = batch.spectrum_weights
            if weights.shape[0] > stop - start:
                raise ValueError("a cosmology has fewer tau slices than projected multipoles")
            columns[start : start + weights.shape[0], 4] = np.arange(weights.shape[0])
            columns[start : start + weights.shape[0], 5:] = weights
        start = stop
    return np.concatenate([target, columns], axis=1)


class BatchCache:
    """Batches kept in memory after their first use, up to ``max_bytes`` in all.

    Building a batch (HDF5 read, k bases, input assembly) costs more than a
    training step on a CPU, so every epoch after the first reuses them.
    """

    def __init__(self, build: Callable[[CosmologySet, int], Batch], max_bytes: int) -> None:
        self._build = build
        self._max_bytes = max_bytes
        self._batches: dict[tuple[int, int], Batch] = {}
        self.bytes = 0

    def __call__(self, data: CosmologySet, index: int) -> Batch:
        key = (id(data), index)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._build(data, index)
            if self.bytes + batch.nbytes <= self._max_bytes:
                self._batches[key] = batch
                self.bytes += batch.nbytes
        return batch
