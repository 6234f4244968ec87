"""Latin-hypercube sampling of a family's parameter box (scipy.stats.qmc)."""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from training.config import FamilyConfig, SetSpec


def latin_hypercube(config: FamilyConfig, spec: SetSpec) -> np.ndarray:
    """``spec.size`` points of the box, shape (size, n_params), columns in param order.

    The sample depends only on the box, ``spec.seed`` and ``spec.box_fraction``
    (the central part of the box it covers); sets with different seeds are
    independent.
    """
    dimension = len(config.params)
    try:
        sampler = qmc.LatinHypercube(d=dimension, rng=np.random.default_rng(spec.seed))
    except TypeError:  # scipy < 1.15 names the generator `seed`
        sampler = qmc.LatinHypercube(d=dimension, seed=np.random.default_rng(spec.seed))
    unit = sampler.random(spec.size)
    lows = np.array([p.low for p in config.params])
    highs = np.array([p.high for p in config.params])
    if spec.box_fraction < 1.0:
        centres, half_widths = (lows + highs) / 2, spec.box_fraction * (highs - lows) / 2
        lows, highs = centres - half_widths, centres + half_widths
    return qmc.scale(unit, lows, highs)
