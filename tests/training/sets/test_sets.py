"""Network-set handling: export, assemble, interpolate."""

from __future__ import annotations

from cosmicnet_cobaya.networks.network_set import (
    load_network_set,
    read_metadata,
)
from training.cli import main


def test_export_strips_optimizer_state_and_reproduces_outputs(trained_set, tmp_path):
    from training.cli import main

    out = tmp_path / "shipped"
    assert main(["export", str(trained_set), "--out", str(out)]) == 0
    for entry in read_metadata(out).networks.values():
        assert (out / entry.file).stat().st_size < (trained_set / entry.file).stat().st_size
    assert load_network_set(out).metadata.to_dict() == read_metadata(trained_set).to_dict()
    averaged = tmp_path / "averaged"
    argv = ["export", str(trained_set), "--out", str(averaged)]
    assert main([*argv, "--references", "tau_reio=0.05", "tau_reio=0.06,H0=70"]) == 0
    references = {
        name: entry.references for name, entry in read_metadata(averaged).networks.items()
    }
    # t0 stops at 1.5 tau_rec; t2 serves every time and delta_m is no CMB source.
    assert references == {
        "t0": ({"tau_reio": 0.05}, {"tau_reio": 0.06, "H0": 70.0}),
        "t0_late": (),
        "t2": (),
        "delta_m": (),
    }
    experimental = tmp_path / "experimental"
    argv = ["export", str(trained_set), "--out", str(experimental)]
    assert main([*argv, "--experimental", "TT 4x its tolerance"]) == 0
    assert read_metadata(experimental).provenance["experimental"] == "TT 4x its tolerance"
    assert "experimental" not in read_metadata(out).provenance
    outside = ["export", str(trained_set), "--out", str(tmp_path / "outside")]
    assert main([*outside, "--references", "tau_reio=0.05,H0=80"]) == 2
    assert main(["export", str(trained_set), "--out", str(tmp_path / "small"), "--max-mb", "1e-4"])
    assert main(["export", str(trained_set), "--out", str(trained_set)]) == 2


def test_assemble_set_replaces_the_named_networks(trained_set, tmp_path, caplog):
    """cosmicnet assemble: the named networks come from the other set, the rest
    and the provenance from the base, whose measured accuracy is dropped."""
    import shutil
    from dataclasses import replace

    from cosmicnet_cobaya.networks.network_set import read_metadata

    base_dir, tuned = tmp_path / "base", tmp_path / "tuned"
    shutil.copytree(trained_set, base_dir)
    shutil.copytree(trained_set, tuned)
    base = read_metadata(base_dir)
    replace(base, provenance={**base.provenance, "accuracy": {"none": {}}}).write(base_dir)
    metadata = read_metadata(tuned)
    tuned_t0 = replace(metadata.networks["t0"], history={"val_loss": [0.5]})
    replace(metadata, networks={**metadata.networks, "t0": tuned_t0}).write(tuned)
    out = tmp_path / "out"
    command = ["assemble", "--base", str(base_dir), "--from", str(tuned)]
    assert main([*command, "--names", "t0", "--out", str(out)]) == 0
    assembled = read_metadata(out)
    assert assembled.networks["t0"].history == {"val_loss": [0.5]}
    assert assembled.networks["t2"] == base.networks["t2"]
    assert assembled.provenance["fine_tuning_data"]["networks"] == ["t0"]
    assert "accuracy" not in assembled.provenance
    assert main([*command, "--names", "t9", "--out", str(tmp_path / "bad")]) == 2
    assert "has no network ['t9']" in caplog.text
    # a second network tuned on the same data joins the first one's record
    again = tmp_path / "again"
    on_assembled = ["assemble", "--base", str(out), "--from", str(tuned)]
    assert main([*on_assembled, "--names", "t2", "--out", str(again)]) == 0
    assert read_metadata(again).provenance["fine_tuning_data"]["networks"] == ["t0", "t2"]


def test_fine_tuning_records_keep_every_fine_tuned_network():
    """A fine-tuned network that stays in the set keeps its data record, whether the new
    networks were tuned on the same data or on other data."""
    from training.sets.assemble import fine_tuning_records as records

    data_a = {"data_files": ["a.h5"], "data_hash": "a"}
    data_b = {"data_files": ["b.h5"], "data_hash": "b"}
    first = records(None, [], ["t0"], data_a)
    assert first == {"fine_tuning_data": {"networks": ["t0"], **data_a}}
    same = records(first["fine_tuning_data"], [], ["t2"], data_a)
    assert same == {"fine_tuning_data": {"networks": ["t0", "t2"], **data_a}}
    other = records(same["fine_tuning_data"], [], ["t2"], data_b)
    assert other["fine_tuning_data"] == {"networks": ["t2"], **data_b}
    assert other["earlier_fine_tuning_data"] == [{"networks": ["t0"], **data_a}]
    replaced = records(other["fine_tuning_data"], other["earlier_fine_tuning_data"], ["t0"], data_a)
    assert replaced == {
        "fine_tuning_data": {"networks": ["t0"], **data_a},
        "earlier_fine_tuning_data": [{"networks": ["t2"], **data_b}],
    }
    # an earlier record on the tuned data joins the new one rather than staying apart
    back = records({"networks": ["t1"], **data_b}, [{"networks": ["t0"], **data_a}], ["t2"], data_a)
    assert back == {
        "fine_tuning_data": {"networks": ["t0", "t2"], **data_a},
        "earlier_fine_tuning_data": [{"networks": ["t1"], **data_b}],
    }


def test_interpolated_network_weights_are_the_mixture(tmp_path):
    """cosmicnet interpolate: alpha 0 gives the base weights, alpha 1 the
    other's, 0.25 a quarter of the way (on a copy of t1 with doubled weights)."""
    import io
    import zipfile
    from pathlib import Path

    import h5py
    import numpy as np

    from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
    from cosmicnet_cobaya.networks.network_set import read_metadata
    from training.sets import interpolate

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
