"""Network sets on disk: the NumPy forward pass, loading, broken sets, served rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import ROOT, SyntheticSet, copy_set_files

from cosmicnet_cobaya.networks.forward import load_numpy_model
from cosmicnet_cobaya.networks.network_set import (
    FORMAT_VERSION,
    NetworkSetError,
    load_network_set,
    read_metadata,
)


def test_numpy_forward_matches_keras(tmp_path):
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.models import build_model

    rng = np.random.default_rng(0)
    for name in ("t0", "t1", "delta_m"):
        config = parse_networks_config(None).networks[name]
        model = build_model(config, 57, 4, 5)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        inputs = {
            "time": rng.normal(size=(9, len(config.time_inputs))),
            "params": rng.normal(size=(9, 4)),
            "scales": rng.normal(size=(9, 5)),
            "k": rng.normal(size=(9, 57, 3)),
        }
        inputs = {key: value.astype(np.float32) for key, value in inputs.items()}
        expected = np.asarray(model.predict(inputs, verbose=0))
        got = load_numpy_model(path)(inputs)
        assert got.shape == (9, 57)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("length", [23, 26])
@pytest.mark.parametrize("kernel, stride", [(2, 5), (5, 5), (3, 1), (7, 2), (6, 4)])
def test_numpy_conv_matches_keras_without_padding_copies(tmp_path, padding, length, kernel, stride):
    """Non-overlapping windows (a strided view) and overlapping ones (one matmul per
    tap), with the padding's edge windows; lengths that end mid-stride included."""
    import keras

    inputs = keras.Input(shape=(length, 3), name="k")
    hidden = keras.layers.Conv1D(4, kernel, strides=stride, padding=padding, activation="relu")(
        inputs
    )
    hidden = keras.layers.Conv1D(2, 3, padding=padding, activation="tanh")(hidden)
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(hidden))
    model = keras.Model(inputs, outputs)
    path = tmp_path / "conv.keras"
    model.save(path)
    x = np.random.default_rng(1).normal(size=(5, length, 3)).astype(np.float32)
    expected = np.asarray(model.predict(x, verbose=0))
    got = load_numpy_model(path)({"k": x})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


def test_trained_set_loads_in_fresh_process(trained_set):
    script = f"""
import sys, json, numpy as np
from cosmicnet_cobaya.networks.network_set import load_network_set
from cosmicnet_cobaya.features import k_bases
sys.path.insert(0, {str(ROOT / "tests")!r})
from helpers import SyntheticSet
data = SyntheticSet(1, seed=5)
nets = load_network_set({str(trained_set)!r})
features = data.features(0)
bases = k_bases(features, nets.k)
out = {{}}
for name in ("t0", "t2", "delta_m"):
    value = nets.predict_source(name, features, bases)
    out[name] = [list(value.shape), bool(np.all(np.isfinite(value)))]
out["tf"] = "tensorflow" in sys.modules or "keras" in sys.modules
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.pop("tf") is False
    assert report == {name: [[30, 40], True] for name in ("t0", "t2", "delta_m")}
    metadata = read_metadata(trained_set)
    assert set(metadata.sources) == {"t0", "t2", "p", "delta_m"}
    assert len(metadata.networks["t0"].history["val_loss"]) == 1
    assert metadata.networks["delta_m"].output.kind == "asinh"


def test_broken_sets_fail_clearly(trained_set, tmp_path):
    with pytest.raises(NetworkSetError, match="does not exist"):
        load_network_set(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NetworkSetError, match=r"no metadata\.json"):
        load_network_set(empty)
    corrupt = copy_set_files(trained_set, tmp_path / "corrupt")
    (corrupt / "metadata.json").write_text("{not json")
    with pytest.raises(NetworkSetError, match="corrupt"):
        load_network_set(corrupt)
    old = copy_set_files(trained_set, tmp_path / "old")
    data = json.loads((old / "metadata.json").read_text())
    data["format_version"] = FORMAT_VERSION + 1
    (old / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(NetworkSetError, match="format version"):
        load_network_set(old)
    missing = copy_set_files(trained_set, tmp_path / "missing")
    (missing / "t2.keras").unlink()
    with pytest.raises(NetworkSetError, match=r"t2\.keras is missing"):
        load_network_set(missing)
    broken = copy_set_files(trained_set, tmp_path / "broken")
    (broken / "t0.keras").write_bytes(b"not a zip")
    with pytest.raises(NetworkSetError, match=r"not a readable \.keras"):
        load_network_set(broken)
    assert zipfile.is_zipfile(trained_set / "t0.keras")


def test_late_network_serves_only_its_rows(trained_set, tmp_path):
    from cosmicnet_cobaya.features import k_bases

    nets = load_network_set(trained_set)
    assert [entry.name for entry in nets.metadata.networks_of("t0")] == ["t0", "t0_late"]
    features = SyntheticSet(1, seed=5).features(0)
    bases = k_bases(features, nets.k)
    early_mask, early = nets.predict("t0", features, bases)
    late_mask, late = nets.predict("t0_late", features, bases)
    ratio = features.tau / features.scalars["tau_rec"]
    np.testing.assert_array_equal(early_mask, ratio < 1.5)
    np.testing.assert_array_equal(late_mask, ~early_mask)
    assert 0 < early.shape[0] < features.tau.size
    combined = nets.predict_source("t0", features, bases)
    np.testing.assert_array_equal(combined[early_mask], early)
    np.testing.assert_array_equal(combined[late_mask], late)
    # Rows are taken as one slice per range, so unordered tau slices are refused.
    from cosmicnet_cobaya.features import FeatureError

    order = np.r_[np.flatnonzero(late_mask)[:2], np.flatnonzero(early_mask)]
    order = np.r_[order, np.setdiff1d(np.arange(features.tau.size), order)]
    with pytest.raises(FeatureError, match="increasing order"):
        features.rows(order)

    # Without its late network, t0 is no longer a source the set can serve.
    partial = copy_set_files(trained_set, tmp_path / "partial")
    data = json.loads((partial / "metadata.json").read_text())
    del data["networks"]["t0_late"]
    (partial / "metadata.json").write_text(json.dumps(data))
    assert "t0" not in read_metadata(partial).sources

    # Overlapping ranges are refused when the set is read.
    overlap = copy_set_files(trained_set, tmp_path / "overlap")
    data = json.loads((overlap / "metadata.json").read_text())
    data["networks"]["t0_late"]["tau_range"] = [1.2, None]
    (overlap / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(NetworkSetError, match="must not overlap"):
        read_metadata(overlap)
