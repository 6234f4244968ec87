"""Importance reweighting of a ClassNet chain with full CLASS (``cosmicnet verify-chain``).

A chain sampled with ClassNet is thinned to N points drawn in proportion to
their weights (an equal-weight sample of ClassNet's posterior).  Each point's
log-posterior is recomputed with Cobaya's classy in place of ClassNet (same
``extra_args``, likelihoods, priors); the weights exp(logpost_CLASS -
logpost_ClassNet) turn the sample into one of the exact posterior, so the
shift of every mean, the change of every standard deviation and the effective
sample size of the weights measure the networks' bias directly, with a Monte
Carlo error.  Each finished point is appended to ``points.jsonl`` at once, so
a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cosmicnet_cobaya.atomic import atomic_write_text
from cosmicnet_cobaya.errors import CosmicNetError
from cosmicnet_cobaya.hooked_class import SERVED_PARAMETER

CLASSNET_ONLY_OPTIONS = ("sources", "networks", "out_of_domain", "hmcode_stride", "fast_primordial")
"""ClassNet options that Cobaya's classy does not know."""
SELECTION_FILE = "selection.json"
POINTS_FILE = "points.jsonl"
TARGETS = {
    "max_abs_mean_shift_sigma": 0.1,
    "max_abs_std_ratio_deviation": 0.05,
    "ess_fraction": 0.9,
}
"""What the reweighting must show: mean shifts, standard deviations, effective sample size."""


class NotAChainError(CosmicNetError, ValueError):
    """The prefix does not name a Cobaya chain written with ClassNet."""


@dataclass(frozen=True)
class Chain:
    """A Cobaya chain after burn-in: its updated input and its samples."""

    prefix: str
    info: dict[str, Any]
    samples: Any
    """pandas DataFrame: weight, minuslogpost, parameters (chains concatenated)."""
    sampled: tuple[str, ...]
    derived: tuple[str, ...]

    def stds(self) -> dict[str, float]:
        """Weighted standard deviation of each parameter over the chain."""
        weight = self.samples["weight"].to_numpy(dtype=float)
        result = {}
        for name in self.sampled + self.derived:
            values = self.samples[name].to_numpy(dtype=float)
            mean = np.average(values, weights=weight)
            result[name] = float(np.sqrt(np.average((values - mean) ** 2, weights=weight)))
        return result


def read_chain(prefix: str, burn_in: float) -> Chain:
    """The chain at ``prefix`` (``<prefix>.updated.yaml`` and ``<prefix>.N.txt``)."""
    from cobaya import load_samples

    updated = Path(f"{prefix}.updated.yaml")
    if not updated.is_file():
        raise NotAChainError(f"{prefix} is not a Cobaya chain: {updated} does not exist")
    info = yaml.safe_load(updated.read_text())
    theory_name(info)  # refuses a chain not sampled with ClassNet
    try:
        samples = load_samples(prefix, skip=burn_in or 0, combined=True)  # cobaya: int 0
    except Exception as error:  # cobaya raises several kinds for a missing or bad file
        raise NotAChainError(f"cannot read the samples of {prefix}: {error}") from error
    if samples is None or len(samples) == 0:
        raise NotAChainError(f"{prefix} has no samples after a burn-in of {burn_in}")
    data = samples.data
    params = info.get("params", {})
    sampled = tuple(n for n, p in params.items() if isinstance(p, dict) and "prior" in p)
    derived = tuple(
        n for n in data.columns if n in params and n not in sampled and not _is_fixed(params[n])
    )
    return Chain(prefix, info, data.reset_index(drop=True), sampled, derived)


def _is_fixed(spec: Any) -> bool:
    return not isinstance(spec, dict) or "value" in spec


def theory_name(info: Mapping[str, Any]) -> str:
    """The key of the ClassNet theory in a Cobaya input."""
    for name, options in (info.get("theory") or {}).items():
        external = (options or {}).get("external", "") if isinstance(options, dict) else ""
        if "ClassNet" in name or "ClassNet" in str(external):
            return name
    raise NotAChainError("the chain's theory is not ClassNet: nothing to verify")


def classy_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The chain's input with Cobaya's classy in place of ClassNet (same extra_args)."""
    name = theory_name(info)
    theories = dict(info["theory"])
    options = dict(theories.pop(name) or {})
    for key in (*CLASSNET_ONLY_OPTIONS, "external", "python_path", "version", "path"):
        options.pop(key, None)
    theories["classy"] = options
    params = {k: v for k, v in info.get("params", {}).items() if k != SERVED_PARAMETER}
    keep = ("likelihood", "prior", "packages_path", "debug")
    return {
        **{key: info[key] for key in keep if key in info},
        "theory": theories,
        "params": params,
    }


def select_points(chain: Chain, n: int, seed: int) -> list[int]:
    """Rows drawn in proportion to their weights (systematic resampling), sorted."""
    weight = chain.samples["weight"].to_numpy(dtype=float)
    cumulative = np.cumsum(weight) / np.sum(weight)
    start = np.random.default_rng(seed).uniform(0.0, 1.0 / n)
    picks = np.searchsorted(cumulative, start + np.arange(n) / n, side="right")
    return [int(i) for i in np.minimum(picks, weight.size - 1)]


def prepare(out: Path, chain: Chain, n: int, seed: int, burn_in: float) -> list[int]:
    """The selected rows, from ``out/selection.json`` when resuming (same settings)."""
    settings = {"prefix": chain.prefix, "n": n, "seed": seed, "burn_in": burn_in,
                "rows": len(chain.samples)}  # fmt: skip
    path = out / SELECTION_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved["settings"] != settings:
            raise ValueError(
                f"{out} holds a verification with other settings ({saved['settings']}): "
                "use another --out, or the same settings to resume"
            )
        return [int(i) for i in saved["rows"]]
    rows = select_points(chain, n, seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"settings": settings, "rows": rows}))
    return rows


def done_points(out: Path) -> dict[int, dict[str, Any]]:
    """Points already recomputed (a torn last line from a kill is ignored)."""
    path = out / POINTS_FILE
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[int(record["slot"])] = record
    return done


_WORKER_MODEL: Any = None
"""The Cobaya model of a worker process (built once by :func:`_start_worker`)."""


def _start_worker(info: dict[str, Any]) -> None:
    global _WORKER_MODEL
    from cobaya.model import get_model

    logging.getLogger("cobaya").setLevel(logging.WARNING)
    _WORKER_MODEL = get_model(info)


def _log_posterior(task: tuple[int, dict[str, float]]) -> dict[str, Any]:
    slot, point = task
    result = _WORKER_MODEL.logposterior(point)
    return {
        "slot": slot,
        "logpost": float(result.logpost),
        "loglikes": [float(v) for v in np.atleast_1d(result.loglikes)],
    }


def recompute(
    info: dict[str, Any],
    tasks: Sequence[tuple[int, dict[str, float]]],
    out: Path,
    workers: int,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items,
) -> None:
    """Full-CLASS log-posteriors of ``tasks``, appended to ``out/points.jsonl`` as they end."""
    if not tasks:
        return
    with (
        ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(info,)) as pool,
        (out / POINTS_FILE).open("a") as handle,
    ):
        futures = [pool.submit(_log_posterior, task) for task in tasks]
        for future in progress(as_completed(futures)):
            record = future.result()
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
