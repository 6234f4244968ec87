"""Sampling of a family's parameter box: Latin hypercube (scipy.stats.qmc),
uniform or, with a set's ``covmat``, Gaussian."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm, qmc

from training.configuration.family import ConfigError, FamilyConfig, SetSpec
from training.evaluation.covmat import covariance_of

MAX_GAUSSIAN_ROUNDS = 50
"""Gaussian sets: rounds of redrawing points outside the box before giving up."""


def _unit_hypercube(rng: np.random.Generator, dimension: int, size: int) -> np.ndarray:
    try:
        sampler = qmc.LatinHypercube(d=dimension, rng=rng)
    except TypeError:  # scipy < 1.15 names the generator `seed`
        sampler = qmc.LatinHypercube(d=dimension, seed=rng)
    return sampler.random(size)


def _sampled_box(config: FamilyConfig, spec: SetSpec) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the part of the box a set covers (``box_fraction``)."""
    lows = np.array([p.low for p in config.params])
    highs = np.array([p.high for p in config.params])
    centres, half_widths = (lows + highs) / 2, spec.box_fraction * (highs - lows) / 2
    return centres - half_widths, centres + half_widths


def allowed(config: FamilyConfig, points: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` meet every constraint of the family."""
    keep = np.ones(points.shape[0], dtype=bool)
    columns = {name: points[:, i] for i, name in enumerate(config.param_names)}
    for constraint in config.constraints:
        keep &= constraint.holds(columns)
    return keep


def _rounds(draw: Any, config: FamilyConfig, spec: SetSpec, what: str) -> np.ndarray:
    """``spec.size`` allowed points from successive rounds of ``draw()`` (deterministic)."""
    kept, count = [], 0
    for _ in range(MAX_GAUSSIAN_ROUNDS):
        points = draw()
        points = points[allowed(config, points)]
        kept.append(points)
        count += points.shape[0]
        if count >= spec.size:
            return np.concatenate(kept)[: spec.size]
    raise ConfigError(
        f"sets.{spec.name}: fewer than {spec.size} of {MAX_GAUSSIAN_ROUNDS * spec.size} "
        f"{what} meet the box and the constraints; widen the box or loosen the constraints"
    )


def latin_hypercube(config: FamilyConfig, spec: SetSpec) -> np.ndarray:
    """``spec.size`` points of the box, shape (size, n_params), columns in param order.

    The sample depends only on the box, the constraints, ``spec.seed`` and
    ``spec.box_fraction`` (the central part of the box it covers); sets with
    different seeds are independent. With constraints, hypercubes are drawn
    in rounds and the points that break one are dropped.
    """
    rng = np.random.default_rng(spec.seed)
    lows, highs = _sampled_box(config, spec)

    def draw() -> np.ndarray:
        return qmc.scale(_unit_hypercube(rng, len(config.params), spec.size), lows, highs)

    if not config.constraints:
        return draw()
    return _rounds(draw, config, spec, "hypercube points")


def gaussian_hypercube(config: FamilyConfig, spec: SetSpec) -> np.ndarray:
    """``spec.size`` draws from a Gaussian about the box centre with the covariance of
    ``spec.covmat`` (its rows for the varied parameters), inside the sampled box.

    Each round maps a Latin hypercube through the normal quantiles and the
    Cholesky factor of the covariance (stratified in each decorrelated direction);
    draws outside the box are replaced by the next round's. Deterministic in
    ``spec.seed``.
    """
    names = list(config.param_names)
    try:
        covariance = covariance_of(Path(spec.covmat), names)
        factor = np.linalg.cholesky(covariance)
    except (OSError, ValueError, np.linalg.LinAlgError) as error:
        raise ConfigError(
            f"sets.{spec.name}.covmat: {error}; give a positive-definite Cobaya covmat "
            f"with rows for {names} (relative paths are read from the folder you run in)"
        ) from error
    lows, highs = _sampled_box(config, spec)
    centre = (lows + highs) / 2
    rng = np.random.default_rng(spec.seed)

    def draw() -> np.ndarray:
        unit = _unit_hypercube(rng, len(names), spec.size)
        draws = centre + norm.ppf(unit) @ factor.T
        return draws[np.all((draws >= lows) & (draws <= highs), axis=1)]

    return _rounds(draw, config, spec, "Gaussian draws (is the covmat much wider than the box?)")


def sample_set(config: FamilyConfig, spec: SetSpec) -> np.ndarray:
    """The points of one set: Gaussian with ``spec.covmat``, else a uniform hypercube."""
    return gaussian_hypercube(config, spec) if spec.covmat else latin_hypercube(config, spec)
