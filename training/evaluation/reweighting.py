"""What importance weights say about a chain: mean shifts, widths, effective sample size.

``values`` are an equal-weight sample of the sampled posterior (ClassNet's);
``log_ratio`` is log(exact posterior / sampled posterior) at each point.  The
reweighted sample represents the exact posterior.  Mean shifts are given in
units of the chain's standard deviation, with the Monte Carlo error of the
shift estimated by the delta method (the same points enter both means, so the
error is that of sum_i (r_i - 1)(x_i - mean) / N, r the normalised weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def normalised_weights(log_ratio: np.ndarray) -> np.ndarray:
    """exp(log_ratio) scaled to mean 1 (points with -inf get weight 0)."""
    finite = np.isfinite(log_ratio)
    if not np.any(finite):
        raise ValueError("no point has a finite exact log-posterior")
    weights = np.where(finite, np.exp(log_ratio - np.max(log_ratio[finite])), 0.0)
    return weights * weights.size / np.sum(weights)


def parameter_shift(values: np.ndarray, weights: np.ndarray, chain_std: float) -> dict[str, float]:
    """Shift of the mean (in chain standard deviations, with its error) and width ratio."""
    n = values.size
    mean = float(np.mean(values))
    reweighted = float(np.sum(weights * values) / np.sum(weights))
    error = float(np.std((weights - 1.0) * (values - mean)) / np.sqrt(n))
    std = float(np.std(values))
    reweighted_std = float(np.sqrt(np.sum(weights * (values - reweighted) ** 2) / np.sum(weights)))
    return {
        "mean_sampled": mean,
        "mean_reweighted": reweighted,
        "mean_shift_sigma": (reweighted - mean) / chain_std if chain_std > 0 else 0.0,
        "mean_shift_error": error / chain_std if chain_std > 0 else 0.0,
        "std_ratio": reweighted_std / std if std > 0 else 1.0,
    }


def summarise_reweighting(
    values: Mapping[str, np.ndarray],
    log_ratio: np.ndarray,
    chain_stds: Mapping[str, float],
    targets: Mapping[str, float],
) -> dict[str, Any]:
    """Per-parameter shifts, the weights' effective sample size and the verdict."""
    weights = normalised_weights(log_ratio)
    n = weights.size
    ess = float(np.sum(weights) ** 2 / np.sum(weights**2))
    params = {name: parameter_shift(x, weights, chain_stds[name]) for name, x in values.items()}
    worst_shift = max(abs(p["mean_shift_sigma"]) for p in params.values())
    worst_width = max(abs(p["std_ratio"] - 1.0) for p in params.values())
    finite = log_ratio[np.isfinite(log_ratio)]
    summary = {
        "n_points": n,
        "n_failed": int(n - finite.size),
        "parameters": params,
        "ess": ess,
        "ess_fraction": ess / n,
        "log_posterior_difference": _distribution(finite),
        "max_abs_mean_shift_sigma": worst_shift,
        "max_abs_std_ratio_deviation": worst_width,
        "targets": dict(targets),
    }
    passed = (
        worst_shift < targets["max_abs_mean_shift_sigma"]
        and worst_width < targets["max_abs_std_ratio_deviation"]
        and summary["ess_fraction"] > targets["ess_fraction"]
        and summary["n_failed"] == 0
    )
    summary["verdict"] = "pass" if passed else "fail"
    return summary


def _distribution(values: Sequence[float]) -> dict[str, float]:
    values = np.asarray(values, dtype=float)
    percentiles = np.percentile(values, [2.5, 16, 50, 84, 97.5])
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        **{f"p{q:g}": float(v) for q, v in zip((2.5, 16, 50, 84, 97.5), percentiles, strict=True)},
    }
