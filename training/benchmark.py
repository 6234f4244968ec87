"""Speed of ClassNet against full CLASS, measured in one run (paper Table 5).

For each thread count and each cosmology: the perturbation step (CLASS
integrating, vs. network sources including input features and installation)
and a whole lensed-C_l evaluation, for a plain classy object and a
:class:`~cosmicnet_cobaya.hooked_class.HookedClass`. Medians and ratios.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from tqdm import tqdm

from cosmicnet_cobaya.hook.bridge import classy
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.sources import SourceProvider

log = logging.getLogger(__name__)

CMB_OUTPUT = {"output": "tCl,pCl,lCl", "lensing": "yes"}


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


def _time_full_class(settings: Mapping[str, Any], l_max: int) -> dict[str, float]:
    cosmo = classy.Class()
    cosmo.set(dict(settings))
    start = time.perf_counter()
    cosmo.compute(level=["thermodynamics"])
    thermodynamics = time.perf_counter() - start
    start = time.perf_counter()
    cosmo.compute(level=["perturbations"])
    to_perturbations = time.perf_counter() - start
    start = time.perf_counter()
    cosmo.compute()
    cosmo.lensed_cl(l_max)
    whole = time.perf_counter() - start
    cosmo.struct_cleanup()
    # compute() restarts from the input module, so the second call includes thermodynamics.
    return {"perturbations": max(to_perturbations - thermodynamics, 0.0), "whole": whole}


def _time_hooked(
    settings: Mapping[str, Any], provider: SourceProvider, l_max: int
) -> dict[str, float]:
    cosmo = HookedClass()
    cosmo.source_provider = provider
    cosmo.set(dict(settings))
    start = time.perf_counter()
    cosmo.compute()
    cosmo.lensed_cl(l_max)
    whole = time.perf_counter() - start
    steps = cosmo.last_timings
    cosmo.struct_cleanup()
    return {
        "perturbations": steps["prepare"] + steps["sources"] + steps["install"],
        "whole": whole,
    }


def run_benchmark(
    provider: SourceProvider,
    extra_args: Mapping[str, Any],
    points: Sequence[Mapping[str, float]],
    thread_counts: Sequence[int],
    l_max: int = 2508,
) -> dict[str, Any]:
    """Time CLASS and the provider on every point for every thread count.

    One untimed evaluation of each at the first point comes first, so that
    one-off costs (imports, caches, thread pools), paid once per chain, stay
    out of the per-evaluation times.
    """
    results: dict[str, Any] = {"l_max": l_max, "n_cosmologies": len(points), "threads": {}}
    inputs = [{**CMB_OUTPUT, "l_max_scalars": l_max, **extra_args, **point} for point in points]
    for threads in thread_counts:
        rows = {"class": [], "network": []}
        with class_threads(threads):
            _time_full_class(inputs[0], l_max)
            _time_hooked(inputs[0], provider, l_max)
            for settings in tqdm(inputs, desc=f"benchmark, {threads} thread(s)", unit="cosmo"):
                rows["class"].append(_time_full_class(settings, l_max))
                rows["network"].append(_time_hooked(settings, provider, l_max))
        results["threads"][str(threads)] = summarise_timings(rows)
    return results


STEPS = ("perturbations", "whole")


def summarise_timings(rows: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, Any]:
    """Medians, ranges and speed-ups of per-point timings.

    ``rows["class"]`` and ``rows["network"]`` hold one ``{step: seconds}`` per
    point; the speed-up is the ratio of the medians, and the range of the
    per-point ratios shows how much single points vary on a shared machine.
    """
    summary: dict[str, Any] = {}
    for step in STEPS:
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
    summary["raw"] = {name: [dict(row) for row in values] for name, values in rows.items()}
    return summary


def format_table(results: Mapping[str, Any]) -> str:
    """Plain-text table of medians and speed-ups, with the per-point range."""
    lines = [
        f"{results['n_cosmologies']} cosmologies, lensed C_l to l={results['l_max']}",
        f"{'threads':>7}  {'step':<13} {'CLASS [s]':>10} {'network [s]':>12} {'speed-up':>9}"
        f"  {'per point':>13}",
    ]
    for threads, summary in results["threads"].items():
        for step in STEPS:
            row = summary[step]
            low, high = row.get("speedup_range", (row["speedup"], row["speedup"]))
            spread = f"{low:.1f}-{high:.1f}x"
            lines.append(
                f"{threads:>7}  {step:<13} {row['class_median_s']:>10.3f} "
                f"{row['network_median_s']:>12.4f} {row['speedup']:>8.1f}x  {spread:>13}"
            )
    return "\n".join(lines)
