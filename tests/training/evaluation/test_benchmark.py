"""The benchmark's summary of per-point timings (no CLASS run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT

from training.evaluation.benchmark import format_table, summarise_timings


def test_summary_gives_median_ratio_and_per_point_range():
    rows = {
        "class": [
            {"perturbations": 8.0, "whole": 12.0},
            {"perturbations": 6.0, "whole": 10.0},
            {"perturbations": 9.0, "whole": 11.0},
        ],
        "network": [
            {"perturbations": 0.2, "whole": 4.0},
            {"perturbations": 0.3, "whole": 3.0},
            {"perturbations": 0.15, "whole": 3.5},
        ],
    }
    rows["network"][0]["steps"] = {"transfer": 1.0, "fourier": 0.5}
    rows["network"][1]["steps"] = {"transfer": 2.0}
    summary = summarise_timings(rows)
    step = summary["perturbations"]
    assert step["class_median_s"] == 8.0 and step["network_median_s"] == 0.2
    assert step["speedup"] == pytest.approx(40.0)  # ratio of the medians
    assert step["speedup_range"] == pytest.approx([20.0, 60.0])  # 6 / 0.3 and 9 / 0.15
    assert step["network_range_s"] == [0.15, 0.3]
    assert summary["whole"]["speedup"] == pytest.approx(11.0 / 3.5)
    assert summary["raw"]["class"][1]["whole"] == 10.0
    assert "primordial" not in summary  # no row timed it
    assert summary["network_steps_median_s"] == {"transfer": 1.5, "fourier": 0.25}
    results = {
        "n_cosmologies": 3,
        "l_max": 2508,
        "modes": {"hmcode": {"1": summary}},
        "chains": [
            {"config": "a.yaml", "accepted": 10, "wall_s": 20.0, "s_per_accepted": 2.0},
            {"config": "b.yaml", "accepted": 10, "wall_s": 100.0, "s_per_accepted": 10.0},
        ],
    }
    table = format_table(results)
    assert "40.0x" in table and "20.0-60.0" in table and "transfer 1.500" in table
    assert "chain speed-up (a.yaml over b.yaml): 5.0x" in table


def test_chain_input_stops_at_accepted_steps_without_output(tmp_path):
    from training.evaluation.chain_timing import chain_input

    root = ROOT
    info = chain_input(root / "configs" / "mcmc_classnet.yaml", 7, tmp_path)
    assert info["output"] is None and info["packages_path"] == str(tmp_path)
    assert info["sampler"]["mcmc"]["max_samples"] == 7
    assert Path(info["sampler"]["mcmc"]["covmat"]) == root / "configs" / "mcmc_lcdm.covmat"


def test_fisher_budget_takes_points_from_a_generated_set(tmp_path, monkeypatch):
    """benchmarks/fisher_budget.py --points-from: the first cosmologies of a stored set,
    the other parameters from the template, labelled by the file's name."""
    import importlib
    import sys

    import h5py
    import numpy as np

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    fisher_budget = importlib.import_module("fisher_budget")
    path = tmp_path / "training.h5"
    with h5py.File(path, "w") as handle:  # a set file's layout, no cosmology computed
        names = {"param_names": ["omega_b", "H0"], "target_names": ["t0"]}
        for key in ("param_names", "target_names", "scalar_names", "time_names"):
            handle.attrs[key] = np.array(names.get(key, []), dtype=h5py.string_dtype())
        handle["k"] = np.geomspace(1e-4, 1.0, 5)
        handle["points"] = np.array([[0.022, 67.0], [0.023, 68.0], [0.024, 69.0]])
        handle["status"] = np.zeros(3, dtype=np.int8)
    template = {"omega_b": 0.0224, "H0": 67.66, "tau_reio": 0.054}
    points = fisher_budget.stored_points(path, template, 2)
    assert points == {
        "training_0": {"omega_b": 0.022, "H0": 67.0, "tau_reio": 0.054},
        "training_1": {"omega_b": 0.023, "H0": 68.0, "tau_reio": 0.054},
    }
    assert template["H0"] == 67.66  # the template is not changed
    sys.modules.pop("fisher_budget", None)
