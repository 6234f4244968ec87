"""The fixed k grid of a network family.

CLASS picks its k list per cosmology (its ends scale with the conformal age,
its linear steps with the sound horizon).  The family grid is the CLASS k list
of the domain's central cosmology (refined by ``k_grid.density``), extended
down to the smallest first k and up to the largest last k found over the
domain's corners, times one last log step (the last CLASS point overshoots
the required k_max by up to one step, by an amount that is not monotonic in
the parameters), plus a relative margin.  Only CLASS's cheap preparation
(thermodynamics + perturbation indices) runs here.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from training.configuration.family import FamilyConfig

logger = logging.getLogger(__name__)

MAX_CORNERS = 64
"""Above this many corners, a seeded random subset of them is used."""


@dataclass(frozen=True)
class KGrid:
    """The family k grid and what it was built from."""

    k: np.ndarray
    """Increasing wavenumbers [1/Mpc]."""
    centre_k_size: int
    k_min_domain: float
    k_max_domain: float


def domain_probe_points(config: FamilyConfig) -> list[dict[str, float]]:
    """The centre and the corners of the domain (a seeded subset if too many)."""
    lows = [p.low for p in config.params]
    highs = [p.high for p in config.params]
    corners = list(itertools.product(*zip(lows, highs, strict=True)))
    if len(corners) > MAX_CORNERS:
        rng = np.random.default_rng(0)
        chosen = rng.choice(len(corners), size=MAX_CORNERS, replace=False)
        corners = [corners[i] for i in sorted(chosen)]
    centre = {p.name: p.centre for p in config.params}
    return [centre] + [dict(zip(config.param_names, corner, strict=True)) for corner in corners]


def class_k_list(config: FamilyConfig, point: dict[str, float]) -> np.ndarray:
    """CLASS's own k list for one point (runs CLASS to thermodynamics only)."""
    from cosmicnet_cobaya.hook import bridge

    cosmo = bridge.classy.Class()
    try:
        cosmo.set(config.class_settings(point))
        cosmo.compute(level=["thermodynamics"])
        return bridge.prepare_perturbations(cosmo).k.copy()
    finally:
        cosmo.struct_cleanup()
        cosmo.empty()


def refine(k: np.ndarray, density: float) -> np.ndarray:
    """``k`` with ``density`` times as many points, interpolated in log k by index."""
    if density == 1.0:
        return k.copy()
    size = max(2, round((k.size - 1) * density) + 1)
    position = np.linspace(0.0, k.size - 1, size)
    return np.exp(np.interp(position, np.arange(k.size), np.log(k)))


def extend(k: np.ndarray, k_low: float, k_high: float) -> np.ndarray:
    """``k`` extended to [k_low, k_high] with its end steps (linear below, log above)."""
    low = [k_low] if k_low < k[0] else []
    step = k[1] - k[0]
    while low and low[-1] + step < k[0] * (1.0 - 1e-9):
        low.append(low[-1] + step)
    high = []
    ratio = k[-1] / k[-2]
    current = k[-1]
    while current < k_high:
        current = min(current * ratio, k_high)
        high.append(current)
    inside = k[(k >= k_low) & (k <= k_high)]
    return np.concatenate([low, inside, high])


SAME_K_RTOL = 1e-12
"""Two k grids built by CLASS from one config may differ in the last bit."""


def same_k_grid(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two k grids are the same grid, up to floating-point rounding."""
    return first.shape == second.shape and bool(
        np.allclose(first, second, rtol=SAME_K_RTOL, atol=0.0)
    )


def build_k_grid(config: FamilyConfig) -> KGrid:
    """The family k grid for ``config`` (about 0.2 s of CLASS per probe point)."""
    from cosmicnet_cobaya.hook.bridge import classy

    points = domain_probe_points(config)
    lists = [class_k_list(config, points[0])]  # the centre must work
    for point in points[1:]:
        try:
            lists.append(class_k_list(config, point))
        except classy.CosmoComputationError as error:
            logger.warning("domain corner %s skipped, CLASS fails there: %s", point, error)
    centre = lists[0]
    k_low = min(k[0] for k in lists) * (1.0 - config.k_grid.margin)
    last_step = max(k[-1] / k[-2] for k in lists)
    k_high = max(k[-1] for k in lists) * last_step * (1.0 + config.k_grid.margin)
    k = extend(refine(centre, config.k_grid.density), k_low, k_high)
    logger.info(
        "family k grid: %d points in [%.6g, %.6g] 1/Mpc (centre's CLASS list: %d points)",
        k.size,
        k[0],
        k[-1],
        centre.size,
    )
    return KGrid(
        k=k,
        centre_k_size=centre.size,
        k_min_domain=min(k[0] for k in lists),
        k_max_domain=max(k[-1] for k in lists),
    )
