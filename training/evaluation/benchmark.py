"""Speed of ClassNet against full CLASS, measured in one run (paper Table 5).

For each thread count and each cosmology: the perturbation step (CLASS
integrating, vs. network sources including input features and installation)
and a whole lensed-C_l evaluation, for a plain classy object and a
:class:`~cosmicnet_cobaya.hooked_class.HookedClass`. Medians and ratios.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from tqdm import tqdm

from cosmicnet_cobaya.hook.bridge import classy
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.networks.accuracy import L_MAX
from cosmicnet_cobaya.sources import SourceProvider


@contextmanager
def class_threads(count: int) -> Iterator[None]:
    """Run CLASS and the networks' BLAS on ``count`` threads.

    CLASS reads OMP_NUM_THREADS at each parallel region; NumPy's BLAS thread
    pool is limited with threadpoolctl, so that the networks get no more cores
    than CLASS in the comparison.
    """
    from threadpoolctl import threadpool_limits

    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = previous


PRIMORDIAL_STEP = {"A_s": 1.01, "n_s": 1.002}
"""Factors applied to A_s and n_s for the primordial-only step (a fast MCMC step)."""


def _primordial_step(settings: Mapping[str, Any]) -> dict[str, float]:
    return {name: settings[name] * factor for name, factor in PRIMORDIAL_STEP.items()}


def _time_evaluation(cosmo: Any, l_max: int) -> float:
    start = time.perf_counter()
    cosmo.compute()
    cosmo.lensed_cl(l_max)
    return time.perf_counter() - start


def _time_full_class(settings: Mapping[str, Any], l_max: int) -> dict[str, float]:
    cosmo = classy.Class()
    cosmo.set(dict(settings))
    start = time.perf_counter()
    cosmo.compute(level=["thermodynamics"])
    thermodynamics = time.perf_counter() - start
    start = time.perf_counter()
    cosmo.compute(level=["perturbations"])
    to_perturbations = time.perf_counter() - start
    # compute() restarts from the input module, so this includes thermodynamics.
    whole = _time_evaluation(cosmo, l_max)
    cosmo.set(_primordial_step(settings))
    primordial = _time_evaluation(cosmo, l_max)
    cosmo.struct_cleanup()
    return {
        "perturbations": max(to_perturbations - thermodynamics, 0.0),
        "whole": whole,
        "primordial": primordial,
    }


def _time_hooked(
    settings: Mapping[str, Any], provider: SourceProvider, l_max: int, hmcode_stride: int
) -> dict[str, Any]:
    cosmo = HookedClass()
    cosmo.source_provider = provider
    cosmo.hmcode_stride = hmcode_stride
    cosmo.set(dict(settings))
    whole = _time_evaluation(cosmo, l_max)
    steps = dict(cosmo.last_timings)
    served = cosmo.last_served
    cosmo.set(_primordial_step(settings))
    primordial = _time_evaluation(cosmo, l_max)
    fast = cosmo.last_fast
    cosmo.struct_cleanup()
    return {
        "perturbations": steps.get("prepare", 0.0)
        + steps.get("sources", 0.0)
        + steps.get("install", 0.0),
        "whole": whole,
        "primordial": primordial,
        "steps": steps,
        "served": served,
        "primordial_fast_path": fast,
    }


def run_benchmark(
    provider: SourceProvider,
    points: Mapping[str, Sequence[Mapping[str, Any]]],
    thread_counts: Sequence[int],
    l_max: int = L_MAX,
    hmcode_stride: int = 1,
) -> dict[str, Any]:
    """Time CLASS and the provider on every point, per non-linear mode and thread count.

    ``points`` maps a non-linear mode (``none``, ``hmcode``) to complete CLASS
    inputs.  Per point: the perturbation step, a whole evaluation, then a
    primordial-only step (A_s and n_s changed) on the same object, which
    classy computes in full and ClassNet by its fast path.  One untimed
    evaluation of each at the first point comes first, so that one-off costs
    (imports, caches, thread pools), paid once per chain, stay out.
    """
    n_points = len(next(iter(points.values())))
    results: dict[str, Any] = {"l_max": l_max, "n_cosmologies": n_points, "modes": {}}
    results["hmcode_stride"] = hmcode_stride
    for mode, inputs in points.items():
        results["modes"][mode] = {}
        for threads in thread_counts:
            rows: dict[str, list] = {"class": [], "network": []}
            with class_threads(threads):
                _time_full_class(inputs[0], l_max)
                _time_hooked(inputs[0], provider, l_max, hmcode_stride)
                label = f"benchmark {mode}, {threads} thread(s)"
                for settings in tqdm(inputs, desc=label, unit="cosmo"):
                    rows["class"].append(_time_full_class(settings, l_max))
                    rows["network"].append(_time_hooked(settings, provider, l_max, hmcode_stride))
            results["modes"][mode][str(threads)] = summarise_timings(rows)
    return results


STEPS = ("perturbations", "whole", "primordial")


def summarise_timings(rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Medians, ranges and speed-ups of per-point timings.

    ``rows["class"]`` and ``rows["network"]`` hold one ``{step: seconds}`` per
    point; the speed-up is the ratio of the medians, and the range of the
    per-point ratios shows how much single points vary on a shared machine.
    Network rows may carry ``steps`` (CLASS module -> seconds), summarised as
    medians.
    """
    summary: dict[str, Any] = {}
    for step in STEPS:
        if not all(step in row for row in (*rows["class"], *rows["network"])):
            continue
        class_times = np.array([row[step] for row in rows["class"]])
        net_times = np.array([row[step] for row in rows["network"]])
        class_median, net_median = float(np.median(class_times)), float(np.median(net_times))
        ratios = class_times / np.where(net_times > 0, net_times, np.nan)
        summary[step] = {
            "class_median_s": class_median,
            "network_median_s": net_median,
            "network_range_s": [float(net_times.min()), float(net_times.max())],
            "speedup": class_median / net_median if net_median > 0 else float("inf"),
            "speedup_range": [float(np.nanmin(ratios)), float(np.nanmax(ratios))],
        }
    module_rows = [row["steps"] for row in rows["network"] if "steps" in row]
    if module_rows:
        names = dict.fromkeys(name for row in module_rows for name in row)
        summary["network_steps_median_s"] = {
            name: float(np.median([row.get(name, 0.0) for row in module_rows])) for name in names
        }
    summary["raw"] = {name: [dict(row) for row in values] for name, values in rows.items()}
    return summary


def format_table(results: Mapping[str, Any]) -> str:
    """Plain-text table of medians and speed-ups, with the per-point range and steps."""
    lines = [
        f"{results['n_cosmologies']} cosmologies, lensed C_l to l={results['l_max']}",
        f"{'non_linear':<10} {'threads':>7}  {'step':<13} {'CLASS [s]':>10} "
        f"{'network [s]':>12} {'speed-up':>9}  {'per point':>13}",
    ]
    for mode, by_threads in results["modes"].items():
        for threads, summary in by_threads.items():
            for step in STEPS:
                if step not in summary:
                    continue
                row = summary[step]
                low, high = row["speedup_range"]
                lines.append(
                    f"{mode:<10} {threads:>7}  {step:<13} {row['class_median_s']:>10.3f} "
                    f"{row['network_median_s']:>12.4f} {row['speedup']:>8.1f}x  "
                    f"{f'{low:.1f}-{high:.1f}x':>13}"
                )
            steps = summary.get("network_steps_median_s", {})
            if steps:
                parts = ", ".join(f"{name} {seconds:.3f}" for name, seconds in steps.items())
                lines.append(f"{'':<10} {threads:>7}  ClassNet steps [s]: {parts}")
    for chain in results.get("chains", []):
        lines.append(
            f"chain {chain['config']}: {chain['accepted']} accepted in {chain['wall_s']:.0f} s, "
            f"{chain['s_per_accepted']:.2f} s per accepted step"
        )
    if len(results.get("chains", [])) == 2:
        first, second = results["chains"]
        ratio = second["s_per_accepted"] / first["s_per_accepted"]
        lines.append(f"chain speed-up ({first['config']} over {second['config']}): {ratio:.1f}x")
    return "\n".join(lines)
