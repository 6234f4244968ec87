"""Network sets: normalisation, NumPy forward pass, training, saving and loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cosmicnet_cobaya.features import SCALAR_NAMES, CosmologyFeatures
from cosmicnet_cobaya.networks.forward import load_numpy_model
from cosmicnet_cobaya.networks.network_set import (
    FORMAT_VERSION,
    NetworkSetError,
    load_network_set,
    read_metadata,
)
from cosmicnet_cobaya.networks.normalisation import OutputTransform, Standardiser

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("omega_b", "omega_cdm", "H0", "tau_reio")
TINY = {
    "seed": 3,
    "train": ["t0", "t0_late", "t2", "delta_m"],
    **{
        name: {
            "epochs": 1,
            "time_dense": [8, 6],
            "params_dense": 4,
            "scales_dense": 3,
            "central_dense": [12],
            "conv_branches": [[{"filters": 3, "kernel": 3, "stride": 2, "pool": 2}]],
        }
        for name in ("t0", "t0_late", "t2", "delta_m")
    },
}
TINY["t2"]["tau_range"] = None  # one network for all times


class SyntheticSet:
    """A few fake cosmologies with the shapes of a generated set."""

    def __init__(self, n: int, seed: int, n_tau: int = 30, n_k: int = 40) -> None:
        rng = np.random.default_rng(seed)
        self.k = np.geomspace(1e-4, 0.3, n_k)
        self.param_names = PARAMS
        self._items = []
        for _ in range(n):
            params = dict(
                zip(PARAMS, (0.0224, 0.12, 67.0, 0.055) * rng.uniform(0.9, 1.1, 4), strict=True)
            )
            half = n_tau // 2
            tau = np.sort(
                np.concatenate(
                    [rng.uniform(200.0, 400.0, half), rng.uniform(450.0, 14000.0, n_tau - half)]
                )
            )
            g = np.exp(-(((tau - 280.0) / 20.0) ** 2)) / 20.0
            time = {
                "g": g,
                "g_prime": np.gradient(g, tau),
                "e_kappa": 1.0 / (1.0 + np.exp(-(tau - 280.0) / 10.0)),
                "r_s": 150.0 * np.tanh(tau / 300.0),
                "k_D": 0.1 + 1e-3 * tau,
            }
            scalars = dict(
                zip(SCALAR_NAMES, rng.uniform(100.0, 500.0, len(SCALAR_NAMES)), strict=True)
            )
            scalars["tau_rec"] = 280.0 * rng.uniform(0.98, 1.02)
            features = CosmologyFeatures(params, scalars, tau, time)
            kr = np.outer(time["r_s"], self.k)
            targets = {
                "t0": np.cos(kr) * g[:, None] * 10.0,
                "t2": np.sin(kr) * g[:, None],
                "delta_m": -(np.outer(tau, self.k) ** 2) * 1e-2 - 1e-9,
            }
            self._items.append((features, targets))

    def __len__(self) -> int:
        return len(self._items)

    def features(self, index: int) -> CosmologyFeatures:
        return self._items[index][0]

    def target(self, index: int, name: str) -> np.ndarray:
        return self._items[index][1][name]


@pytest.mark.parametrize("kind", ["affine", "affine_k", "log_abs", "asinh"])
def test_output_transform_round_trip(kind):
    rng = np.random.default_rng(1)
    blocks = [-np.exp(rng.normal(size=(5, 7)) * 3) for _ in range(3)]
    transform = OutputTransform.fit(kind, blocks)
    restored = OutputTransform.from_dict(json.loads(json.dumps(transform.to_dict())))
    for block in blocks:
        y = restored.forward(block)
        np.testing.assert_allclose(restored.inverse(y), block, rtol=1e-12)
    y = restored.forward(blocks[0]).astype(np.float32)
    out = np.full((9, 7), np.nan)
    written = restored.inverse(y, out=out[2:7])
    assert np.shares_memory(written, out)
    np.testing.assert_array_equal(out[2:7], restored.inverse(y))  # the same, in place
    assert np.all(np.isnan(out[:2])) and np.all(np.isnan(out[7:]))
    stacked = np.concatenate([transform.forward(b) for b in blocks])
    assert abs(stacked.mean()) < 1e-10
    assert stacked.std() == pytest.approx(1.0, rel=1e-10)


def test_affine_k_std_floor_bounds_the_weights_of_vanishing_k():
    rng = np.random.default_rng(2)
    scale = np.geomspace(1.0, 1e-6, 9)  # a source damped by six decades across k
    blocks = [rng.normal(size=(20, 9)) * scale for _ in range(3)]
    plain = OutputTransform.fit("affine_k", blocks)
    overall = float(OutputTransform.fit("affine", blocks).std)
    floored = OutputTransform.fit("affine_k", blocks, std_floor=0.01)
    assert plain.std.min() < 1e-5 * plain.std.max()
    np.testing.assert_allclose(floored.std, np.maximum(plain.std, 0.01 * overall))
    np.testing.assert_allclose(floored.inverse(floored.forward(blocks[0])), blocks[0], atol=1e-15)
    clipped = OutputTransform.fit("affine_k", blocks, std_floor=0.01, std_cap=0.5)
    np.testing.assert_allclose(clipped.std, np.clip(plain.std, 0.01 * overall, 0.5 * overall))
    assert clipped.std.max() < plain.std.max()
    with pytest.raises(ValueError, match="affine_k"):
        OutputTransform.fit("affine", blocks, std_floor=0.01)
    with pytest.raises(ValueError, match="std_floor <= std_cap"):
        OutputTransform.fit("affine_k", blocks, std_floor=0.5, std_cap=0.1)


def test_output_layer_retargeted_to_another_affine_transform_keeps_the_source():
    import keras

    from training.train import retarget_output_layer

    rng = np.random.default_rng(4)
    blocks = [rng.normal(size=(6, 5)) * np.geomspace(3.0, 0.01, 5) + 0.5 for _ in range(2)]
    old = OutputTransform.fit("affine", blocks)
    new = OutputTransform.fit("affine_k", blocks, std_floor=0.05)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(5, name="output")(inputs))
    x = rng.normal(size=(4, 3)).astype("float32")
    before = old.inverse(model.predict_on_batch(x))
    retarget_output_layer(model, old, new)
    after = new.inverse(model.predict_on_batch(x))
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="only affine"):
        retarget_output_layer(model, new, OutputTransform.fit("asinh", blocks))


def test_log_abs_refuses_sign_change():
    with pytest.raises(ValueError, match="one sign"):
        OutputTransform.fit("log_abs", [np.array([[1.0, -2.0]])])


def test_standardiser_round_trip():
    samples = [{"a": 1.0, "b": 10.0}, {"a": 3.0, "b": 30.0}]
    fitted = Standardiser.fit(("a", "b"), samples)
    np.testing.assert_allclose(fitted.apply({"a": 3.0, "b": 10.0}), [1.0, -1.0])
    restored = Standardiser.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_array_equal(
        restored.apply({"a": 2.5, "b": 7.0}), fitted.apply({"a": 2.5, "b": 7.0})
    )
    with pytest.raises(KeyError, match="missing"):
        fitted.apply({"a": 1.0})


def test_config_rejects_unknown_keys():
    from training.network_config import NetworkConfigError, parse_networks_config

    with pytest.raises(NetworkConfigError, match="unknown key"):
        parse_networks_config({"t0": {"epoch": 3}})
    with pytest.raises(NetworkConfigError, match="unknown key"):
        parse_networks_config({"t0": {"search": {"ranges": {"depth": [1, 2]}}}})
    with pytest.raises(NetworkConfigError, match="unknown networks"):
        parse_networks_config({"train": ["t9"]})
    parsed = parse_networks_config({"t2": {"epochs": 2, "central_dense": [10, 20]}})
    assert parsed.networks["t2"].central_dense == (10, 20)
    assert parsed.networks["t0"].epochs == 15


def test_paper_architectures_have_paper_sizes():
    from training.models import build_model
    from training.network_config import parse_networks_config

    networks = parse_networks_config(None).networks
    counts = {
        name: build_model(networks[name], 568, 4, 5).count_params() for name in ("t0", "t1", "t2")
    }
    # Tables 2-4: 407K, 38K and 328K trainable parameters.
    assert counts["t0"] == pytest.approx(407e3, rel=0.01)
    assert counts["t1"] == pytest.approx(38e3, rel=0.03)
    assert counts["t2"] == pytest.approx(328e3, rel=0.01)


def test_numpy_forward_matches_keras(tmp_path):
    from training.models import build_model
    from training.network_config import parse_networks_config

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


@pytest.fixture(scope="module")
def trained_set(tmp_path_factory):
    """A toy network set trained for one epoch on synthetic data."""
    from training.network_config import parse_networks_config
    from training.pipeline import train_network_set

    out = tmp_path_factory.mktemp("netset")
    train_network_set(
        parse_networks_config(TINY),
        SyntheticSet(3, seed=1),
        SyntheticSet(2, seed=2),
        out,
        {"class_precision": {}},
        {"H0": [60.0, 75.0]},
        progress=False,
    )
    return out


def test_trained_set_loads_in_fresh_process(trained_set):
    script = f"""
import sys, json, numpy as np
from cosmicnet_cobaya.networks.network_set import load_network_set
from cosmicnet_cobaya.features import k_bases
sys.path.insert(0, {str(ROOT / "tests")!r})
from test_networks import SyntheticSet
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


def test_training_resumes_from_checkpoint(tmp_path):
    from training.network_config import parse_networks_config
    from training.train import fit_normalisation, fit_output, train_network

    config = parse_networks_config(TINY).networks["t0"]
    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    norm = fit_normalisation(data)
    transform = fit_output(data, config)
    _, first = train_network(
        "t0", config, data, validation, norm, transform, tmp_path, epochs=1, progress=False
    )
    _, resumed = train_network(
        "t0", config, data, validation, norm, transform, tmp_path, epochs=2, progress=False
    )
    assert resumed["val_loss"][0] == first["val_loss"][0]
    assert len(resumed["val_loss"]) == 2


def test_head_only_run_changes_only_the_output_layer(tmp_path):
    """trainable_layers: [output] refits the head of a trained network; the next run
    from it without the key trains every layer again; unknown names fail clearly."""
    import keras

    from training.network_config import parse_networks_config
    from training.train import fit_normalisation, fit_output, train_network

    full = parse_networks_config(TINY).networks["t0"]
    head = parse_networks_config(
        {**TINY, "t0": {**TINY["t0"], "trainable_layers": ["output"]}}
    ).networks["t0"]
    assert head.trainable_layers == ("output",)
    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    norm = fit_normalisation(data)
    transform = fit_output(data, full)
    start, _ = train_network(
        "t0", full, data, validation, norm, transform, tmp_path / "a", epochs=1, progress=False
    )
    initial = tmp_path / "start.keras"
    start.save(initial)
    refit, _ = train_network(
        "t0",
        head,
        data,
        validation,
        norm,
        transform,
        tmp_path / "b",
        epochs=1,
        progress=False,
        initial_model=initial,
    )
    before = {layer.name: layer.get_weights() for layer in start.layers if layer.weights}
    for layer in refit.layers:
        if not layer.weights:
            continue
        same = all(
            np.array_equal(a, b)
            for a, b in zip(before[layer.name], layer.get_weights(), strict=True)
        )
        assert same == (layer.name != "output"), layer.name
    refit.save(tmp_path / "refit.keras")
    again, _ = train_network(
        "t0",
        full,
        data,
        validation,
        norm,
        transform,
        tmp_path / "c",
        epochs=1,
        progress=False,
        initial_model=tmp_path / "refit.keras",
    )
    assert all(layer.trainable for layer in again.layers)
    wrong = parse_networks_config(
        {**TINY, "t0": {**TINY["t0"], "trainable_layers": ["head"]}}
    ).networks["t0"]
    with pytest.raises(ValueError, match=r"no layer\(s\) \['head'\]"):
        train_network(
            "t0",
            wrong,
            data,
            validation,
            norm,
            transform,
            tmp_path / "d",
            epochs=1,
            progress=False,
            initial_model=initial,
        )
    assert keras.models.load_model(initial).get_layer("output").trainable


def _copy_set(source: Path, target: Path) -> Path:
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    return target


def test_broken_sets_fail_clearly(trained_set, tmp_path):
    with pytest.raises(NetworkSetError, match="does not exist"):
        load_network_set(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NetworkSetError, match=r"no metadata\.json"):
        load_network_set(empty)
    corrupt = _copy_set(trained_set, tmp_path / "corrupt")
    (corrupt / "metadata.json").write_text("{not json")
    with pytest.raises(NetworkSetError, match="corrupt"):
        load_network_set(corrupt)
    old = _copy_set(trained_set, tmp_path / "old")
    data = json.loads((old / "metadata.json").read_text())
    data["format_version"] = FORMAT_VERSION + 1
    (old / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(NetworkSetError, match="format version"):
        load_network_set(old)
    missing = _copy_set(trained_set, tmp_path / "missing")
    (missing / "t2.keras").unlink()
    with pytest.raises(NetworkSetError, match=r"t2\.keras is missing"):
        load_network_set(missing)
    broken = _copy_set(trained_set, tmp_path / "broken")
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
    partial = _copy_set(trained_set, tmp_path / "partial")
    data = json.loads((partial / "metadata.json").read_text())
    del data["networks"]["t0_late"]
    (partial / "metadata.json").write_text(json.dumps(data))
    assert "t0" not in read_metadata(partial).sources

    # Overlapping ranges are refused when the set is read.
    overlap = _copy_set(trained_set, tmp_path / "overlap")
    data = json.loads((overlap / "metadata.json").read_text())
    data["networks"]["t0_late"]["tau_range"] = [1.2, None]
    (overlap / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(NetworkSetError, match="must not overlap"):
        read_metadata(overlap)


def test_learning_rate_decays_and_best_epoch_is_kept(tmp_path):
    from training.network_config import parse_networks_config
    from training.train import fit_normalisation, fit_output, train_network

    block = {**TINY, "t0": {**TINY["t0"], "learning_rate_decay": 0.5, "epochs": 3}}
    config = parse_networks_config(block).networks["t0"]
    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    norm = fit_normalisation(data)
    model, history = train_network(
        "t0", config, data, validation, norm, fit_output(data, config), tmp_path, progress=False
    )
    np.testing.assert_allclose(history["learning_rate"], [1e-3, 5e-4, 2.5e-4], rtol=1e-6)
    best = int(np.argmin(history["val_loss"]))
    assert history["best_epoch"] == [best + 1]
    batch_norm = fit_output(data, config)
    from training.train import make_batch, padded

    batch = make_batch(validation, 0, config, norm, batch_norm)
    inputs, _, _ = padded(batch)
    prediction = np.asarray(model.predict_on_batch(inputs))[: batch.target.shape[0]]
    loss = float(np.mean((prediction - batch.target) ** 2))
    np.testing.assert_allclose(loss, history["val_loss"][best], rtol=1e-4)


def test_tau_range_keys_are_validated():
    from training.network_config import NetworkConfigError, parse_networks_config

    with pytest.raises(NetworkConfigError, match="tau_range"):
        parse_networks_config({"t0": {"tau_range": [2.0, 1.0]}})
    with pytest.raises(NetworkConfigError, match="learning_rate_decay"):
        parse_networks_config({"t0": {"learning_rate_decay": 1.5}})


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def test_fine_tuning_starts_from_another_set(trained_set, tmp_path):
    from training.network_config import parse_networks_config
    from training.pipeline import train_network_set

    block = {**TINY, "train": ["t2"], "t2": {**TINY["t2"], "tau_range": [0, 1.5]}}
    args = (SyntheticSet(3, seed=1), SyntheticSet(2, seed=2), tmp_path / "tuned")
    extra = ({"class_precision": {}}, {"H0": [60.0, 75.0]})
    tuned = train_network_set(
        parse_networks_config(block), *args, *extra, progress=False, init_from=trained_set
    )
    start = read_metadata(trained_set).networks["t2"]
    entry = tuned.networks["t2"]
    assert entry.architecture["initialised_from"] == str(trained_set)
    assert entry.tau_range == (0.0, 1.5) and start.tau_range == (0.0, None)
    assert entry.output == start.output  # the starting network's normalisation is kept
    # A new folder adopts the starting set's input normalisation, so the
    # training data may have grown: here other cosmologies than the start's.
    assert tuned.normalisation.to_dict() == read_metadata(trained_set).normalisation.to_dict()
    # Asking for another output transform refits it and rewrites the output layer.
    per_k = {**block, "t2": {**block["t2"], "output_transform": "affine_k"}}
    per_k["t2"]["output_std_floor"] = 0.05
    retargeted = train_network_set(
        parse_networks_config(per_k),
        SyntheticSet(4, seed=7),
        SyntheticSet(2, seed=2),
        tmp_path / "per_k",
        *extra,
        progress=False,
        init_from=trained_set,
    )
    entry = retargeted.networks["t2"]
    assert entry.output.kind == "affine_k" and entry.output.std.shape == (40,)
    assert entry.architecture["output_std_floor"] == 0.05
    assert entry.architecture["initialised_from"] == str(trained_set)
    # The starting network's own run is kept in the lineage.
    (previous,) = entry.architecture["lineage"]
    assert previous["output_transform"] == start.output.kind == "affine"
    assert previous["epochs"] == len(start.history["val_loss"]) > 0
    assert previous["training_cosmologies"] == 3
    # Every training setting is recorded, the projection's k_max included.
    from training.pipeline import _LINEAGE_SETTINGS

    assert "projected_loss_k_max" in _LINEAGE_SETTINGS
    for key in _LINEAGE_SETTINGS:
        assert previous[key] == _json_value(start.architecture[key]), key
    assert entry.architecture["training_cosmologies"] == 4
    assert entry.architecture["validation_cosmologies"] == 2
    # Fine-tuning into a folder that holds a set of other normalisation is refused.
    other = _copy_set(trained_set, tmp_path / "other")
    data = json.loads((other / "metadata.json").read_text())
    data["normalisation"]["g_max_mean"] *= 2.0
    (other / "metadata.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="another input normalisation"):
        train_network_set(
            parse_networks_config(block),
            *args,
            *extra,
            progress=False,
            init_from=other,
        )


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
    outside = ["export", str(trained_set), "--out", str(tmp_path / "outside")]
    assert main([*outside, "--references", "tau_reio=0.05,H0=80"]) == 2
    assert main(["export", str(trained_set), "--out", str(tmp_path / "small"), "--max-mb", "1e-4"])
    assert main(["export", str(trained_set), "--out", str(trained_set)]) == 2


def test_batch_cache_reuses_batches_within_its_memory_limit():
    from training.network_config import parse_networks_config
    from training.train import BatchCache, fit_normalisation, fit_output, make_batch

    config = parse_networks_config(TINY).networks["t0"]
    data = SyntheticSet(3, seed=4)
    norm, transform = fit_normalisation(data), fit_output(data, config)
    built = []

    def build(source, index):
        built.append(index)
        return make_batch(source, index, config, norm, transform)

    one = build(data, 0)
    size = one.nbytes
    built.clear()
    cache = BatchCache(build, max_bytes=2 * size)
    for _ in range(2):
        batches = [cache(data, index) for index in range(3)]
    assert built == [0, 1, 2, 2]  # the third batch does not fit and is rebuilt
    assert cache.bytes == 2 * size
    np.testing.assert_array_equal(batches[0].target, one.target)
    for key, value in one.inputs.items():
        np.testing.assert_array_equal(batches[0].inputs[key], value)


def test_cached_training_matches_uncached(tmp_path):
    from training.network_config import parse_networks_config
    from training.train import fit_normalisation, fit_output, train_network

    block = {**TINY, "t0": {**TINY["t0"], "epochs": 2}}
    config = parse_networks_config(block).networks["t0"]
    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    norm, transform = fit_normalisation(data), fit_output(data, config)
    histories = []
    for cache_bytes, folder in ((0, "plain"), (2**30, "cached")):
        _, history = train_network(
            "t0", config, data, validation, norm, transform, tmp_path / folder,
            progress=False, cache_bytes=cache_bytes,
        )  # fmt: skip
        histories.append(history)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-5)
    np.testing.assert_allclose(histories[0]["val_loss"], histories[1]["val_loss"], rtol=1e-5)


def test_stacked_cosmologies_weigh_the_same_whatever_their_rows():
    from training.train import Batch, padded, stacked

    def batch(rows: int, value: float) -> Batch:
        return Batch(
            {"time": np.ones((rows, 2), np.float32)}, np.full((rows, 3), value, np.float32)
        )

    short, long = batch(5, 1.0), batch(70, 3.0)
    inputs, target, weights = stacked([short, batch(0, 9.0), long])
    assert target.shape == (128, 3) and inputs["time"].shape == (128, 2)
    assert np.all(weights[75:] == 0)
    # The weighted mean over rows of a per-row loss is the mean over cosmologies.
    per_row = target[:, 0] ** 2
    np.testing.assert_allclose(np.sum(weights * per_row) / weights.size, (1.0 + 9.0) / 2, rtol=1e-6)
    _, single_target, single_weights = padded(long)
    np.testing.assert_allclose(np.sum(single_weights * single_target[:, 0] ** 2) / 128, 9.0)
    with pytest.raises(ValueError, match="no cosmology"):
        stacked([batch(0, 1.0)])


def test_batching_and_weight_average_keys_are_validated():
    from training.network_config import NetworkConfigError, parse_networks_config

    config = parse_networks_config(
        {"t0": {"cosmologies_per_batch": 4, "weight_average": 0.99}}
    ).networks["t0"]
    assert (config.cosmologies_per_batch, config.weight_average) == (4, 0.99)
    assert config.architecture()["weight_average"] == 0.99
    for bad in ({"cosmologies_per_batch": 0}, {"weight_average": 1.0}, {"weight_average": -0.1}):
        with pytest.raises(NetworkConfigError, match=next(iter(bad))):
            parse_networks_config({"t0": bad})
    bessel = parse_networks_config(
        {"t0_late": {"projected_loss_multipoles": [30, 60], "projected_loss_k_max": 0.05}}
    ).networks["t0_late"]
    assert bessel.projection.multipoles == (30, 60) and bessel.projection.k_max == 0.05
    for bad in (
        {"projected_loss_multipoles": [30.5]},
        {"projected_loss_multipoles": [1]},
        {"projected_loss_k_max": 0},
        {"projected_loss_spectrum": True},
        {"projected_loss_frequency_weight": 5.0},
        {"projected_loss_te_weight": 1.0},
        {"projected_loss_te_weight": -1.0},
        {"projected_loss_shift_weight": 1.0},
        {"projected_loss_shift_matrix": [1.0, 2.0]},
        {"projected_loss_polarisation": True},
        {"projected_loss_polarisation": "yes"},
        {"learning_rate_warmup_steps": -5},
    ):
        with pytest.raises(NetworkConfigError, match=next(iter(bad))):
            parse_networks_config({"t0_late": bad})
    te = parse_networks_config(
        {
            "t0": {
                "projected_loss_multipoles": [40, 100],
                "projected_loss_spectrum": True,
                "projected_loss_te_weight": 2,
                "learning_rate_warmup_steps": 75,
            }
        }
    ).networks["t0"]
    assert te.projection.te_weight == 2.0 and te.projection.rows == 4
    assert te.learning_rate_warmup_steps == 75
    shift = {
        "projected_loss_multipoles": [40, 100],
        "projected_loss_spectrum": True,
        "projected_loss_shift_weight": 0.01,
        "projected_loss_shift_matrix": {"omega_b": [1.0, -2.0], "n_s": [0.5, 3]},
    }
    config = parse_networks_config({"t0": shift}).networks["t0"]
    assert config.projection.shift_matrix == ((1.0, -2.0), (0.5, 3.0))
    assert config.architecture()["projected_loss_shift_matrix"][0][0] == "omega_b"
    bad = {**shift, "projected_loss_shift_matrix": {"omega_b": [1.0, -2.0, 3.0]}}
    with pytest.raises(NetworkConfigError, match="needs 2 columns"):
        parse_networks_config({"t0": bad})
    polarised = parse_networks_config(
        {"t2": {**shift, "projected_loss_polarisation": True}}
    ).networks["t2"]
    assert polarised.projection.polarisation and polarised.projection.shift_weight == 0.01
    bad = {**bad, "projected_loss_polarisation": True}
    with pytest.raises(NetworkConfigError, match="relative EE errors at 2 multipoles"):
        parse_networks_config({"t2": bad})
    with pytest.raises(NetworkConfigError, match="predicts t0"):
        parse_networks_config({"t0": {**shift, "projected_loss_polarisation": True}})


def test_weight_average_is_what_is_validated_kept_and_resumed(tmp_path):
    from training.network_config import parse_networks_config
    from training.train import (
        AVERAGE_FILE,
        fit_normalisation,
        fit_output,
        make_batch,
        padded,
        train_network,
    )

    block = {
        **TINY,
        "t0": {**TINY["t0"], "epochs": 2, "weight_average": 0.5, "cosmologies_per_batch": 2},
    }
    config = parse_networks_config(block).networks["t0"]
    data, validation = SyntheticSet(3, seed=1), SyntheticSet(1, seed=2)
    norm, transform = fit_normalisation(data), fit_output(data, config)
    model, history = train_network(
        "t0", config, data, validation, norm, transform, tmp_path, epochs=1, progress=False
    )
    assert (tmp_path / AVERAGE_FILE).is_file()
    assert len(history["val_loss_unaveraged"]) == 1
    assert history["val_loss_unaveraged"][0] != history["val_loss"][0]
    batch = make_batch(validation, 0, config, norm, transform)
    inputs, _, _ = padded(batch)
    prediction = np.asarray(model.predict_on_batch(inputs))[: batch.target.shape[0]]
    loss = float(np.mean((prediction - batch.target) ** 2))
    np.testing.assert_allclose(loss, history["val_loss"][0], rtol=1e-4)
    # Resuming continues the same average: two epochs at once give the same history.
    _, resumed = train_network(
        "t0", config, data, validation, norm, transform, tmp_path, epochs=2, progress=False
    )
    _, straight = train_network(
        "t0", config, data, validation, norm, transform, tmp_path / "straight", progress=False
    )
    np.testing.assert_allclose(resumed["val_loss"], straight["val_loss"], rtol=1e-4)


def _projection_step(k, spectrum_shape=None, seed=5):
    """Two cosmologies' batches (9 and 5 slices), predictions with noise, and the step."""
    from training.line_of_sight import trapezoid_weights
    from training.train import Batch, stacked, with_line_of_sight

    rng = np.random.default_rng(seed)
    batches, predictions = [], []
    for rows in (9, 5):
        tau = np.sort(rng.uniform(200.0, 14000.0, rows))
        line_of_sight = np.stack([tau, trapezoid_weights(tau) / 280.0, 14100.0 - tau], axis=1)
        target = rng.normal(size=(rows, k.size))
        spectrum = None if spectrum_shape is None else rng.normal(size=spectrum_shape)
        batches.append(Batch({"time": np.zeros((rows, 1))}, target, line_of_sight, spectrum))
        predictions.append(target + rng.normal(scale=0.1, size=target.shape))
    _, target, weights = stacked(batches)
    y_true = with_line_of_sight(batches, target)
    y_pred = np.zeros_like(target)
    y_pred[:14] = np.concatenate(predictions)
    return batches, predictions, y_true, y_pred, weights


@pytest.mark.parametrize(
    "projection",
    [
        {"frequencies": (0.0, 0.5, 1.0)},
        {"frequencies": (0.0,), "multipoles": (30, 100), "k_max": 0.05},
        {"frequencies": (0.0,), "multipoles": (30, 100), "k_max": 0.05, "spectrum": True},
        {
            "frequencies": (0.0,),
            "multipoles": (30, 100),
            "k_max": 0.05,
            "spectrum": True,
            "te_weight": 2.0,
        },
        {
            "frequencies": (0.0,),
            "multipoles": (30, 100),
            "k_max": 0.05,
            "spectrum": True,
            "te_weight": 2.0,
            "shift_weight": 0.3,
            "shift_matrix": ((1.0, -2.0, 0.5, 3.0), (0.0, 1.0, -1.0, 2.0), (4.0, 0.0, 0.0, 1.0)),
        },
        {
            "frequencies": (0.0,),
            "multipoles": (30, 100),
            "k_max": 0.05,
            "spectrum": True,
            "te_weight": 2.0,
            "shift_weight": 0.3,
            "shift_matrix": ((1.0, -2.0, 0.5, 3.0), (0.0, 1.0, -1.0, 2.0)),
            "polarisation": True,
        },
    ],
    ids=[
        "frequencies",
        "bessel",
        "spectrum",
        "spectrum_te",
        "spectrum_te_shift",
        "polarisation_te_shift",
    ],
)
def test_projected_loss_matches_numpy(projection):
    from training.line_of_sight import LineOfSightProjection, projected_error
    from training.losses import ProjectedSourceLoss

    k = np.geomspace(1e-3, 0.2, 7)
    spec = LineOfSightProjection(**projection)
    shape = (spec.rows, spec.k_count(k)) if spec.spectrum else None
    batches, predictions, y_true, y_pred, weights = _projection_step(k, shape)
    loss = ProjectedSourceLoss(k, weight=3.0, segments=3, **projection)
    got = float(loss(y_true, y_pred, sample_weight=weights))
    expected = np.mean(
        [
            np.mean((p - b.target) ** 2)
            + 3.0 * projected_error(p - b.target, b.line_of_sight, k, spec, b.spectrum_weights)
            for p, b in zip(predictions, batches, strict=True)
        ]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # A checkpoint rebuilds the loss from its config: the same loss.
    rebuilt = ProjectedSourceLoss.from_config(loss.get_config())
    assert rebuilt.projection == spec
    np.testing.assert_allclose(float(rebuilt(y_true, y_pred, sample_weight=weights)), got)


def test_frequency_projection_is_added_to_the_spectrum_projection():
    from training.line_of_sight import LineOfSightProjection, projected_error
    from training.losses import ProjectedSourceLoss

    k = np.geomspace(1e-3, 0.2, 7)
    spec = LineOfSightProjection((0.0, 0.5), (30, 100), 0.05, True)
    frequencies = LineOfSightProjection((0.0, 0.5))
    batches, predictions, y_true, y_pred, weights = _projection_step(k, (2, spec.k_count(k)))
    loss = ProjectedSourceLoss(k, 3.0, 3, (0.0, 0.5), (30, 100), 0.05, True, frequency_weight=40.0)
    expected = np.mean(
        [
            np.mean((p - b.target) ** 2)
            + 3.0 * projected_error(p - b.target, b.line_of_sight, k, spec, b.spectrum_weights)
            + 40.0 * projected_error(p - b.target, b.line_of_sight, k, frequencies)
            for p, b in zip(predictions, batches, strict=True)
        ]
    )
    got = float(loss(y_true, y_pred, sample_weight=weights))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    without = ProjectedSourceLoss(k, 3.0, 3, (0.0, 0.5), (30, 100), 0.05, True)
    assert float(without(y_true, y_pred, sample_weight=weights)) < 0.99 * got
    rebuilt = ProjectedSourceLoss.from_config(loss.get_config())
    np.testing.assert_allclose(float(rebuilt(y_true, y_pred, sample_weight=weights)), got)
    with pytest.raises(ValueError, match="give multipoles"):
        ProjectedSourceLoss(k, 3.0, 3, (0.0, 0.5), frequency_weight=40.0)


def test_projected_error_weighs_coherent_errors():
    from training.line_of_sight import LineOfSightProjection, projected_error, trapezoid_weights

    np.testing.assert_allclose(trapezoid_weights(np.array([0.0, 1.0, 3.0])), [0.5, 1.5, 1.0])
    tau = np.linspace(250.0, 350.0, 9)
    line_of_sight = np.stack([tau, trapezoid_weights(tau) / 280.0, 14000.0 - tau], axis=1)
    k = np.array([1e-3, 2e-3])
    # The same error, coherent along tau or alternating in sign: equal MSE,
    # very different projection.
    coherent = np.full((9, 2), 0.1)
    alternating = coherent * (-1.0) ** np.arange(9)[:, None]
    for frequencies in ((0.0,), (1.0,)):
        projection = LineOfSightProjection(frequencies)
        assert projected_error(coherent, line_of_sight, k, projection) > 10 * projected_error(
            alternating, line_of_sight, k, projection
        )


def test_bessel_projection_is_the_line_of_sight_integral():
    from scipy.special import spherical_jn

    from training.line_of_sight import LineOfSightProjection, projected_error, trapezoid_weights

    rng = np.random.default_rng(3)
    k = np.geomspace(1e-3, 0.3, 40)
    tau = np.linspace(500.0, 14000.0, 60)
    distance = 14100.0 - tau
    dtau = trapezoid_weights(tau) / 280.0
    error = rng.normal(size=(tau.size, k.size))
    line_of_sight = np.stack([tau, dtau, distance], axis=1)
    projection = LineOfSightProjection(multipoles=(30, 80), k_max=0.1)
    used = k <= 0.1
    direct = 0.0
    for ell in (30, 80):
        kernel = spherical_jn(ell, np.outer(distance, k[used]))
        direct += np.mean(np.sum(error[:, used] * dtau[:, None] * kernel, axis=0) ** 2)
    np.testing.assert_allclose(
        projected_error(error, line_of_sight, k, projection), direct, rtol=1e-3
    )
    # An error only where k (tau_0 - tau) << l, or only above k_max, is invisible.
    near = np.zeros_like(error)
    near[np.outer(distance, k) < 5.0] = 1.0
    above = np.zeros_like(error)
    above[:, ~used] = 1.0
    assert projected_error(near, line_of_sight, k, projection) < 1e-12
    assert projected_error(above, line_of_sight, k, projection) == 0.0


def _recombination_line_of_sight(n_k, n_tau):
    """k, tau and the line-of-sight columns of a toy cosmology (tau_rec 280, tau_0 14100)."""
    from training.line_of_sight import trapezoid_weights

    k = np.geomspace(1e-3, 0.3, n_k)
    tau = np.linspace(280.0, 14000.0, n_tau)
    line_of_sight = np.stack([tau, trapezoid_weights(tau) / 280.0, 14100.0 - tau], axis=1)
    return k, tau, line_of_sight


def test_spectrum_projection_is_the_relative_cl_error():
    from training.line_of_sight import (
        LineOfSightProjection,
        projected_error,
        spectrum_weights,
    )

    rng = np.random.default_rng(4)
    k, tau, line_of_sight = _recombination_line_of_sight(50, 80)
    source = np.exp(-(((tau[:, None] - 300.0) / 30.0) ** 2)) * (1 + rng.uniform(size=k.size))
    projection = LineOfSightProjection(multipoles=(30, 60, 90), k_max=0.1, spectrum=True)
    scale = np.full(k.size, 0.5)  # physical source error = 0.5 x the network's error
    weights = spectrum_weights(source, line_of_sight, k, projection, scale)
    assert weights.shape == (3, projection.k_count(k))
    # A 1 % error of the source itself (0.02 x source in network units) is a
    # 2 % error of every C_l: the squares of three 0.02 add up.
    error = 0.02 * source
    np.testing.assert_allclose(
        projected_error(error, line_of_sight, k, projection, weights), 3 * 0.02**2, rtol=1e-6
    )


def _te_correlation(temperature, polarisation, line_of_sight, k, projection):
    """Per multipole: the TT-EE correlation of two sources' projections (j_l and j_l/x^2)."""
    from training.line_of_sight import bessel_projection, trapezoid_weights

    dlnk = trapezoid_weights(np.log(k[: projection.k_count(k)]))
    delta_t = bessel_projection(temperature, line_of_sight, k, projection)
    delta_e = bessel_projection(polarisation, line_of_sight, k, projection, inverse_x_squared=True)
    return np.sum(dlnk * delta_t * delta_e, axis=1) / np.sqrt(
        np.sum(dlnk * delta_t**2, axis=1) * np.sum(dlnk * delta_e**2, axis=1)
    )


def test_spectrum_projection_weighs_te_errors():
    """The TE rows give the TE error relative to sqrt(C^TT C^EE), whatever the scale
    or sign of the polarisation source; without it the TE term is refused."""
    from training.line_of_sight import (
        LineOfSightProjection,
        bessel_projection,
        relative_errors,
        spectrum_weights,
    )

    rng = np.random.default_rng(6)
    k, tau, line_of_sight = _recombination_line_of_sight(50, 80)
    bump = np.exp(-(((tau[:, None] - 300.0) / 30.0) ** 2))
    source = bump * (1 + rng.uniform(size=k.size))
    polarisation = bump * np.cos(k * 150.0)
    projection = LineOfSightProjection(multipoles=(30, 60, 90), k_max=0.1, spectrum=True)
    with_te = LineOfSightProjection(
        multipoles=(30, 60, 90), k_max=0.1, spectrum=True, te_weight=2.0
    )
    scale = np.full(k.size, 0.5)
    weights = spectrum_weights(source, line_of_sight, k, with_te, scale, polarisation)
    assert weights.shape == (with_te.rows, with_te.k_count(k)) == (6, with_te.k_count(k))
    np.testing.assert_allclose(
        weights[:3], spectrum_weights(source, line_of_sight, k, projection, scale)
    )
    # A 1 % error of the source: TT changes by 2 %, TE by 1 % of C^TE.
    error = 0.02 * source
    tt, te = relative_errors(bessel_projection(error, line_of_sight, k, with_te), weights, with_te)
    np.testing.assert_allclose(tt, 0.02, rtol=1e-6)
    correlation = _te_correlation(source, polarisation, line_of_sight, k, with_te)
    np.testing.assert_allclose(te, 0.01 * correlation, rtol=1e-6)
    assert np.all(np.abs(te) > 1e-4)
    scaled = spectrum_weights(source, line_of_sight, k, with_te, scale, -3.0 * polarisation)
    np.testing.assert_allclose(scaled[3:], -weights[3:], rtol=1e-6)
    with pytest.raises(ValueError, match="needs the polarisation source"):
        spectrum_weights(source, line_of_sight, k, with_te, scale)
    with pytest.raises(ValueError, match="spectrum: true"):
        LineOfSightProjection(multipoles=(30,), te_weight=1.0)


def test_polarisation_projection_is_the_relative_ee_and_te_error():
    """A polarisation source's rows give the relative EE error (E-mode kernel) and the
    TE error against the temperature source."""
    from training.line_of_sight import (
        LineOfSightProjection,
        bessel_projection,
        projected_error,
        relative_errors,
        spectrum_weights,
    )

    rng = np.random.default_rng(7)
    k, tau, line_of_sight = _recombination_line_of_sight(50, 80)
    bump = np.exp(-(((tau[:, None] - 300.0) / 30.0) ** 2))
    polarisation = bump * np.cos(k * 150.0) * (1 + rng.uniform(size=k.size))
    temperature = bump * (1 + rng.uniform(size=k.size))
    projection = LineOfSightProjection(
        multipoles=(30, 60, 90), k_max=0.1, spectrum=True, te_weight=1.0, polarisation=True
    )
    scale = np.full(k.size, 0.5)
    weights = spectrum_weights(polarisation, line_of_sight, k, projection, scale, temperature)
    assert weights.shape == (6, projection.k_count(k))
    # A 1 % error of the source: EE changes by 2 %, TE by 1 % of C^TE.
    error = 0.02 * polarisation
    projected = bessel_projection(error, line_of_sight, k, projection, inverse_x_squared=True)
    ee, te = relative_errors(projected, weights, projection)
    np.testing.assert_allclose(ee, 0.02, rtol=1e-6)
    correlation = _te_correlation(temperature, polarisation, line_of_sight, k, projection)
    np.testing.assert_allclose(te, 0.01 * correlation, rtol=1e-6)
    assert np.all(np.abs(te) > 1e-4)
    # projected_error uses the E-mode kernel too: the squares add up.
    np.testing.assert_allclose(
        projected_error(error, line_of_sight, k, projection, weights),
        3 * 0.02**2 + np.sum(te**2),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="needs the temperature source"):
        spectrum_weights(polarisation, line_of_sight, k, projection, scale)
    with pytest.raises(ValueError, match="spectrum: true"):
        LineOfSightProjection(multipoles=(30,), polarisation=True)


def test_shift_term_weighs_the_posterior_shift_of_the_relative_errors():
    """The shift term adds w |M (r, t)|^2 to the spectrum projection; M's rows must
    have one column per relative error; hat functions interpolate between multipoles."""
    from training.line_of_sight import (
        LineOfSightProjection,
        bessel_projection,
        projected_error,
        relative_errors,
    )
    from training.shift_matrix import hat_functions

    rng = np.random.default_rng(8)
    k, tau, line_of_sight = _recombination_line_of_sight(30, 40)
    error = rng.normal(size=(tau.size, k.size))
    matrix = ((1.0, 2.0, -1.0, 0.5), (0.0, -3.0, 2.0, 1.0))
    plain = LineOfSightProjection(multipoles=(30, 60), k_max=0.1, spectrum=True, te_weight=1.0)
    shifted = LineOfSightProjection(
        multipoles=(30, 60), k_max=0.1, spectrum=True, te_weight=1.0, shift_weight=0.5,
        shift_matrix=matrix,
    )  # fmt: skip
    weights = rng.normal(size=(4, shifted.k_count(k)))
    tt, te = relative_errors(bessel_projection(error, line_of_sight, k, plain), weights, plain)
    expected = np.sum((np.asarray(matrix) @ np.concatenate([tt, te])) ** 2)
    np.testing.assert_allclose(
        projected_error(error, line_of_sight, k, shifted, weights)
        - projected_error(error, line_of_sight, k, plain, weights),
        0.5 * expected,
        rtol=1e-10,
    )
    with pytest.raises(ValueError, match="needs 4 columns"):
        LineOfSightProjection(
            multipoles=(30, 60), spectrum=True, te_weight=1.0, shift_weight=1.0,
            shift_matrix=((1.0, 2.0),),
        )  # fmt: skip
    with pytest.raises(ValueError, match="shift matrix"):
        LineOfSightProjection(multipoles=(30, 60), spectrum=True, shift_weight=1.0)
    hats = hat_functions((40, 100, 200), 300)
    np.testing.assert_allclose(hats.sum(axis=0), 1.0)
    np.testing.assert_allclose(hats[:, [0, 40, 70, 100, 150, 300]].T, [
        [1, 0, 0], [1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1],
    ])  # fmt: skip
    with pytest.raises(ValueError, match="increasing"):
        hat_functions((100, 40), 300)


def test_learning_rate_warms_up_over_the_first_steps(tmp_path):
    """The rate rises linearly over the warmup steps of a new run, then holds."""
    import keras

    from training.network_config import parse_networks_config
    from training.train import fit_normalisation, fit_output, train_network

    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    for warmup, epochs, expected in ((4, 1, 0.5e-3), (2, 2, 0.5e-3), (0, 1, 1e-3)):
        block = {
            **TINY,
            "t0": {
                **TINY["t0"],
                "learning_rate": 1e-3,
                "learning_rate_decay": 0.5,
                "learning_rate_warmup_steps": warmup,
            },
        }
        config = parse_networks_config(block).networks["t0"]
        norm, transform = fit_normalisation(data), fit_output(data, config)
        checkpoints = tmp_path / f"w{warmup}"
        _, history = train_network(
            "t0", config, data, validation, norm, transform, checkpoints, epochs=epochs,
            progress=False,
        )  # fmt: skip
        # Two steps per epoch: 2 of 4 warmup steps leave half the rate; after a
        # 2-step warmup the second epoch runs at its decayed rate.
        assert len(history["loss"]) == epochs
        last = keras.models.load_model(checkpoints / "model.keras")
        np.testing.assert_allclose(float(last.optimizer.learning_rate), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "projection",
    [
        {},
        {"projected_loss_multipoles": [30, 60], "projected_loss_spectrum": True},
        {
            "projected_loss_multipoles": [30, 60],
            "projected_loss_spectrum": True,
            "projected_loss_te_weight": 1.5,
        },
        {
            "projected_loss_multipoles": [30, 60],
            "projected_loss_spectrum": True,
            "projected_loss_frequency_weight": 50.0,
        },
    ],
    ids=["frequencies", "spectrum", "spectrum_te", "spectrum_and_frequencies"],
)
def test_projected_loss_trains_and_resumes(tmp_path, projection):
    from training.network_config import parse_networks_config
    from training.train import fit_normalisation, fit_output, train_network

    block = {
        **TINY,
        "t0": {**TINY["t0"], "epochs": 2, "projected_loss_weight": 10.0, **projection},
    }
    config = parse_networks_config(block).networks["t0"]
    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    norm, transform = fit_normalisation(data), fit_output(data, config)
    args = ("t0", config, data, validation, norm, transform, tmp_path)
    _, first = train_network(*args, epochs=1, progress=False)
    _, resumed = train_network(*args, progress=False)  # reloads the compiled checkpoint
    assert len(resumed["val_projected"]) == 2 and resumed["val_projected"][0] > 0
    assert resumed["val_loss"][0] == first["val_loss"][0]
    # The kept epoch is chosen by the training objective, not by the MSE alone.
    expected = np.add(resumed["val_mse"], 10.0 * np.asarray(resumed["val_projected"]))
    if "projected_loss_frequency_weight" in projection:
        assert len(resumed["val_frequency_projected"]) == 2
        expected += 50.0 * np.asarray(resumed["val_frequency_projected"])
    else:
        assert "val_frequency_projected" not in resumed
    np.testing.assert_allclose(resumed["val_loss"], expected, rtol=1e-6)


def _png_width(path):
    """Width in pixels of a PNG."""
    import matplotlib.image

    return matplotlib.image.imread(path).shape[1]


def test_history_plot_of_a_trained_set(trained_set, tmp_path):
    """``cosmicnet history`` draws every trained network's curves; no history is an error."""
    from dataclasses import replace

    from cosmicnet_cobaya.networks.network_set import read_metadata
    from training.cli import main
    from training.history_plot import plot_histories

    out = tmp_path / "curves.png"
    assert main(["history", str(trained_set), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    networks = read_metadata(trained_set).networks
    assert all(entry.history["val_loss"] for entry in networks.values())
    # One trained network gets one panel, not a row with empty ones beside it.
    name = next(iter(networks))
    single = plot_histories({name: networks[name]}, tmp_path / "one.png")
    assert _png_width(single) < _png_width(out) or len(networks) == 1
    assert _png_width(single) <= 400
    untrained = {name: replace(entry, history={}) for name, entry in networks.items()}
    with pytest.raises(ValueError, match="no network of the set has a training history"):
        plot_histories(untrained, tmp_path / "none.png")
    assert main(["history", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_combined_sets_read_as_one(smoke_data):
    """Two generated sets of one family: indices run through the first, then the second."""
    from training.data_access import CombinedSets, SetReader

    first = SetReader(smoke_data / "training.h5")
    second = SetReader(smoke_data / "validation.h5")
    combined = CombinedSets([first, second])
    try:
        assert len(combined) == len(first) + len(second)
        last = len(combined) - 1
        np.testing.assert_array_equal(
            combined.features(len(first)).time["g"], second.features(0).time["g"]
        )
        np.testing.assert_array_equal(
            combined.target(last, "t0"), second.target(len(second) - 1, "t0")
        )
        np.testing.assert_array_equal(combined.target(0, "t0"), first.target(0, "t0"))
        with pytest.raises(IndexError):
            combined.features(len(combined))
        second.k = second.k * 1.01
        with pytest.raises(ValueError, match="another k grid"):
            CombinedSets([first, second])
    finally:
        combined.close()


@pytest.mark.slow
def test_training_on_extra_sets_records_them(smoke_data, tmp_path):
    """--extra-training adds another folder's training set and records its file."""
    from cosmicnet_cobaya.networks.network_set import read_metadata
    from training.cli import main
    from training.data_access import SetReader

    smoke = ROOT / "configs" / "smoke.yaml"
    out = tmp_path / "nets"
    base = ["train", str(smoke), "--data", str(smoke_data), "--out", str(out), "--only", "t0"]
    base += ["--epochs", "1", "--no-progress"]
    assert main([*base, "--extra-training", str(smoke_data)]) == 0
    metadata = read_metadata(out)
    reader = SetReader(smoke_data / "training.h5")
    n_training = len(reader)
    reader.close()
    assert metadata.networks["t0"].architecture["training_cosmologies"] == 2 * n_training
    assert metadata.provenance["data_files"].count(str(smoke_data / "training.h5")) == 2
    assert main([*base, "--extra-training", str(tmp_path / "none")]) == 2


ASSEMBLE_SET = Path(__file__).resolve().parents[1] / "benchmarks" / "assemble_set.py"


def test_assemble_set_replaces_the_named_networks(trained_set, tmp_path):
    """benchmarks/assemble_set.py: the named networks come from the other set, the rest
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
    command = [sys.executable, str(ASSEMBLE_SET), "--base", str(base_dir), "--from", str(tuned)]
    subprocess.run([*command, "--names", "t0", "--out", str(out)], check=True)
    assembled = read_metadata(out)
    assert assembled.networks["t0"].history == {"val_loss": [0.5]}
    assert assembled.networks["t2"] == base.networks["t2"]
    assert assembled.provenance["fine_tuning_data"]["networks"] == ["t0"]
    assert "accuracy" not in assembled.provenance
    failed = subprocess.run(
        [*command, "--names", "t9", "--out", str(tmp_path / "bad")], capture_output=True, text=True
    )
    assert failed.returncode != 0 and "has no network ['t9']" in failed.stderr
    # a second network tuned on the same data joins the first one's record
    again = tmp_path / "again"
    on_assembled = [sys.executable, str(ASSEMBLE_SET), "--base", str(out), "--from", str(tuned)]
    subprocess.run([*on_assembled, "--names", "t2", "--out", str(again)], check=True)
    assert read_metadata(again).provenance["fine_tuning_data"]["networks"] == ["t0", "t2"]


def test_fine_tuning_records_keep_every_fine_tuned_network():
    """A fine-tuned network that stays in the set keeps its data record, whether the new
    networks were tuned on the same data or on other data."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("assemble_set", ASSEMBLE_SET)
    assemble_set = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assemble_set)
    records = assemble_set.fine_tuning_records
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


def test_polarisation_network_trains_with_ee_and_te_weights(tmp_path):
    """A t2 network with the polarisation projection: its batches carry the EE and TE
    weights of its own source against S_T0, and one epoch trains to a finite loss."""
    from training.line_of_sight import spectrum_weights
    from training.network_config import parse_networks_config
    from training.train import (
        fit_normalisation,
        fit_output,
        line_of_sight_columns,
        make_batch,
        train_network,
    )

    settings = {
        **TINY["t2"],
        "projected_loss_weight": 2.0,
        "projected_loss_multipoles": [30, 60],
        "projected_loss_k_max": 0.2,
        "projected_loss_spectrum": True,
        "projected_loss_te_weight": 1.0,
        "projected_loss_polarisation": True,
        "projected_loss_shift_weight": 0.1,
        "projected_loss_shift_matrix": {"omega_b": [1.0, -2.0, 0.5, 3.0]},
    }
    config = parse_networks_config({**TINY, "t2": settings}).networks["t2"]
    data, validation = SyntheticSet(2, seed=1), SyntheticSet(1, seed=2)
    norm, transform = fit_normalisation(data), fit_output(data, config)
    batch = make_batch(data, 0, config, norm, transform)
    features = data.features(0)
    expected = spectrum_weights(
        np.asarray(data.target(0, "t2"), dtype=np.float64),
        line_of_sight_columns(features),
        data.k,
        config.projection,
        np.broadcast_to(transform.std, data.k.shape),
        np.asarray(data.target(0, "t0"), dtype=np.float64),
    )
    assert batch.spectrum_weights.shape == (4, config.projection.k_count(data.k))
    np.testing.assert_allclose(batch.spectrum_weights, expected, rtol=1e-5)
    _, history = train_network(
        "t2", config, data, validation, norm, transform, tmp_path, progress=False
    )
    assert np.isfinite(history["val_loss"][0]) and history["val_loss"][0] > 0


def test_configure_devices_names_device_and_backend(caplog):
    """The device record names CPU or the GPU count and the log names Keras' backend."""
    import logging

    import keras

    from training.pipeline import provenance
    from training.train import _configure_devices

    with caplog.at_level(logging.INFO, logger="training.train"):
        device = _configure_devices()
    assert device == "CPU" or device.startswith("GPU (")
    assert f"the {keras.backend.backend()} backend" in caplog.text
    assert provenance({})["versions"]["keras"] == keras.__version__
