"""The benchmark's summary of per-point timings (no CLASS run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.benchmark import format_table, summarise_timings


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
    from training.chain_timing import chain_input

    root = Path(__file__).resolve().parents[1]
    info = chain_input(root / "configs" / "mcmc_classnet.yaml", 7, tmp_path)
    assert info["output"] is None and info["packages_path"] == str(tmp_path)
    assert info["sampler"]["mcmc"]["max_samples"] == 7
    assert Path(info["sampler"]["mcmc"]["covmat"]) == root / "configs" / "mcmc_lcdm.covmat"


def test_fisher_budget_takes_points_from_a_generated_set(tmp_path, monkeypatch):
    """benchmarks/fisher_budget.py --points-from: the first cosmologies of a stored set,
    the other parameters from the template, labelled by the file's name."""
    import importlib
    import sys
    from pathlib import Path

    import h5py
    import numpy as np

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
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


def test_interpolated_network_weights_are_the_mixture(tmp_path, monkeypatch):
    """benchmarks/interpolate_networks.py: alpha 0 gives the base weights, alpha 1 the
    other's, 0.25 a quarter of the way (on a copy of t1 with doubled weights)."""
    import importlib
    import io
    import sys
    import zipfile
    from pathlib import Path

    import h5py
    import numpy as np

    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
    from cosmicnet_cobaya.networks.network_set import read_metadata

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    interpolate = importlib.import_module("interpolate_networks")

    def weights(path):
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
        found = {}
        with h5py.File(io.BytesIO(data), "r") as handle:
            handle.visititems(
                lambda name, item: (
                    found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
                )
            )
        return found

    base = Path(DEFAULT_NETWORKS) / "t1.keras"
    members = interpolate._archive(base)  # a copy of t1 with every float weight doubled
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as handle:
        handle.visititems(
            lambda name, item: (
                item.__setitem__(Ellipsis, 2 * item[()])
                if isinstance(item, h5py.Dataset) and item.dtype.kind == "f"
                else None
            )
        )
    members["model.weights.h5"] = buffer.getvalue()
    doubled = tmp_path / "doubled.keras"
    with zipfile.ZipFile(doubled, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    start = weights(base)
    for alpha, factor in ((0.0, 1.0), (1.0, 2.0), (0.25, 1.25)):
        out = tmp_path / f"mixed_{alpha}.keras"
        assert interpolate.interpolate_file(base, doubled, out, alpha) > 0
        mixed = weights(out)
        assert mixed.keys() == start.keys()
        assert all(np.allclose(mixed[name], factor * start[name]) for name in start)
    shipped = read_metadata(DEFAULT_NETWORKS)
    provenance = interpolate.mixture_provenance(shipped, shipped, ["t0"], 0.5)
    assert "accuracy" in shipped.provenance and "accuracy" not in provenance
    assert provenance["weight_mixture"]["networks"] == ["t0"]
    assert provenance["weight_mixture"]["alpha"] == 0.5
    assert provenance["data_hash"] == shipped.provenance["data_hash"]
    sys.modules.pop("interpolate_networks", None)
