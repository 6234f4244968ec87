"""Candidate architectures of the hyperparameter search (paper section 3.2)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from training.configuration.networks import ConvLayer, NetworkConfig


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_candidate(config: NetworkConfig, rng: np.random.Generator) -> NetworkConfig:
    """A candidate architecture: each ranged size drawn from a log-uniform prior."""
    ranges = config.search.ranges

    def integer(key: str, current: int) -> int:
        if key not in ranges:
            return current
        return max(1, round(_log_uniform(rng, *ranges[key])))

    changes: dict[str, Any] = {
        "time_dense": tuple(integer("time_dense", units) for units in config.time_dense),
        "central_dense": tuple(integer("central_dense", units) for units in config.central_dense),
        "params_dense": integer("params_dense", config.params_dense) if config.params_dense else 0,
        "scales_dense": integer("scales_dense", config.scales_dense) if config.scales_dense else 0,
        "conv_branches": tuple(
            tuple(
                ConvLayer(
                    filters=integer("conv_filters", layer.filters),
                    kernel=integer("conv_kernel", layer.kernel),
                    stride=integer("conv_stride", layer.stride),
                    pool=layer.pool,
                )
                for layer in branch
            )
            for branch in config.conv_branches
        ),
    }
    if "learning_rate" in ranges:
        changes["learning_rate"] = _log_uniform(rng, *ranges["learning_rate"])
    return replace(config, **changes)
