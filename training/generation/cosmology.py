"""One cosmology of a training set: CLASS sources and network inputs.

Runs in worker processes: ``classy`` is imported lazily, after
``OMP_NUM_THREADS=1`` is set, so each worker uses one CLASS thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from training.configuration.family import FamilyConfig

logger = logging.getLogger(__name__)

MAX_EXTRA_K = 30
"""CLASS accepts at most this many ``k_output_values``."""


@dataclass(frozen=True)
class CosmologyResult:
    """What a worker returns for one point: data, or the error that stopped CLASS."""

    set_name: str
    index: int
    params: dict[str, float]
    seconds: float
    scalars: dict[str, float] | None = None
    tau: np.ndarray | None = None
    time: dict[str, np.ndarray] | None = None
    targets: dict[str, np.ndarray] | None = None
    """Source name -> (n_tau, n_k) on the family k grid, in the storage dtype."""
    p_over_t2_maxrel: float = float("nan")
    """max |p - sqrt(6) t2| / max |p| of CLASS's own sources."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the cosmology was computed."""
        return self.error is None


def _extra_k(k_family: np.ndarray, k_class: np.ndarray) -> np.ndarray:
    """Family wavenumbers outside CLASS's own list for this cosmology."""
    outside = k_family[(k_family < k_class[0]) | (k_family > k_class[-1])]
    if outside.size > MAX_EXTRA_K:
        raise ValueError(
            f"{outside.size} family k values lie outside CLASS's k range "
            f"[{k_class[0]:.4g}, {k_class[-1]:.4g}]: widen the CLASS k range or narrow the box"
        )
    return outside


def to_family_grid(
    k_class: np.ndarray, sources: Mapping[str, np.ndarray], k_family: np.ndarray
) -> dict[str, np.ndarray]:
    """Sources (n_tau, n_k_class) moved onto ``k_family`` by a cubic spline in k."""
    names = list(sources)
    stacked = np.stack([sources[name] for name in names], axis=0)
    moved = CubicSpline(k_class, stacked, axis=2)(k_family)
    return {name: moved[i] for i, name in enumerate(names)}


def compute_cosmology(
    config: FamilyConfig,
    k_family: np.ndarray,
    set_name: str,
    index: int,
    point: Mapping[str, float],
) -> CosmologyResult:
    """Run CLASS for one point and return inputs and targets on the family k grid.

    CLASS first runs to thermodynamics to fix its own tau sampling (the one the
    theory will use at inference) and the network inputs on it; the family k
    values outside this cosmology's own k range are then added through
    ``k_output_values`` so that every target value comes from CLASS's ODE
    solution or a spline inside its range, never an extrapolation.
    """
    os.environ["OMP_NUM_THREADS"] = "1"
    from cosmicnet_cobaya.features import FeatureError, compute_features
    from cosmicnet_cobaya.hook import bridge

    classy = bridge.classy
    params = {name: float(value) for name, value in point.items()}
    start = time.perf_counter()
    cosmo = classy.Class()
    try:
        settings = config.class_settings(params)
        cosmo.set(settings)
        cosmo.compute(level=["thermodynamics"])
        prepared = bridge.prepare_perturbations(cosmo)
        features = compute_features(cosmo, prepared.tau, params)
        extra = _extra_k(k_family, prepared.k)
        if extra.size:
            cosmo.set({"k_output_values": ",".join(f"{value:.17g}" for value in extra)})
        cosmo.compute(level=["perturbations"])
        k_class, tau, sources = bridge.read_sources(cosmo)
        if tau.shape != prepared.tau.shape or not np.array_equal(tau, prepared.tau):
            raise ValueError("CLASS's tau sampling changed when k values were added")
        missing = [name for name in config.targets if name not in sources]
        if missing:
            raise ValueError(f"CLASS computed no source {missing}: check extra_args.output")
        moved = to_family_grid(k_class, {n: sources[n] for n in config.targets}, k_family)
        dtype = np.dtype(config.storage.dtype)
        p_rel = float("nan")
        if "p" in sources and "t2" in sources:
            scale = float(np.max(np.abs(sources["p"]))) or 1.0
            p_rel = float(np.max(np.abs(sources["p"] - np.sqrt(6.0) * sources["t2"])) / scale)
    except (
        classy.CosmoComputationError,
        classy.CosmoSevereError,
        bridge.HookError,
        FeatureError,
        ValueError,
    ) as error:
        message = f"{type(error).__name__}: {str(error).strip()}"
        logger.warning("%s[%d] failed: %s", set_name, index, message)
        return CosmologyResult(
            set_name=set_name,
            index=index,
            params=params,
            seconds=time.perf_counter() - start,
            error=message,
        )
    finally:
        cosmo.struct_cleanup()
        cosmo.empty()
    return CosmologyResult(
        set_name=set_name,
        index=index,
        params=params,
        seconds=time.perf_counter() - start,
        scalars=features.scalars,
        tau=features.tau,
        time=features.time,
        targets={name: value.astype(dtype) for name, value in moved.items()},
        p_over_t2_maxrel=p_rel,
    )
