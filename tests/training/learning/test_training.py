"""Training of networks and sets: checkpoints, resume, fine-tuning, batches, schedules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ROOT, TINY, SyntheticSet, copy_set_files

from cosmicnet_cobaya.networks.domain import Domain
from cosmicnet_cobaya.networks.network_set import (
    read_metadata,
)
from cosmicnet_cobaya.networks.normalisation import OutputTransform


def test_output_layer_retargeted_to_another_affine_transform_keeps_the_source():
    import keras

    from training.learning.train import retarget_output_layer

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


def test_training_resumes_from_checkpoint(tmp_path):
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.train import fit_normalisation, fit_output, train_network

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

    from training.configuration.network_parsing import parse_networks_config
    from training.learning.train import fit_normalisation, fit_output, train_network

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


def test_learning_rate_decays_and_best_epoch_is_kept(tmp_path):
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.train import fit_normalisation, fit_output, train_network

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
    from training.learning.batches import make_batch, padded

    batch = make_batch(validation, 0, config, norm, batch_norm)
    inputs, _, _ = padded(batch)
    prediction = np.asarray(model.predict_on_batch(inputs))[: batch.target.shape[0]]
    loss = float(np.mean((prediction - batch.target) ** 2))
    np.testing.assert_allclose(loss, history["val_loss"][best], rtol=1e-4)


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def test_fine_tuning_starts_from_another_set(trained_set, tmp_path):
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.pipeline import train_network_set

    block = {**TINY, "train": ["t2"], "t2": {**TINY["t2"], "tau_range": [0, 1.5]}}
    args = (SyntheticSet(3, seed=1), SyntheticSet(2, seed=2), tmp_path / "tuned")
    extra = ({"class_precision": {}}, Domain({"H0": [60.0, 75.0]}))
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
    from training.learning.pipeline import _LINEAGE_SETTINGS

    assert "projected_loss_k_max" in _LINEAGE_SETTINGS
    for key in _LINEAGE_SETTINGS:
        assert previous[key] == _json_value(start.architecture[key]), key
    assert entry.architecture["training_cosmologies"] == 4
    assert entry.architecture["validation_cosmologies"] == 2
    # Fine-tuning into a folder that holds a set of other normalisation is refused.
    other = copy_set_files(trained_set, tmp_path / "other")
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


def test_fine_tuning_keeps_the_selection_record(trained_set, tmp_path):
    """A network chosen by ``cosmicnet select`` keeps its ranking when fine-tuned."""
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.pipeline import train_network_set

    chosen = copy_set_files(trained_set, tmp_path / "chosen")
    data = json.loads((chosen / "metadata.json").read_text())
    ranking = {"chosen": 1, "candidates": [{"candidate": 0}, {"candidate": 1}]}
    data["networks"]["t2"]["selection"] = ranking
    (chosen / "metadata.json").write_text(json.dumps(data))
    block = {**TINY, "train": ["t2"]}
    tuned = train_network_set(
        parse_networks_config(block),
        SyntheticSet(3, seed=1),
        SyntheticSet(2, seed=2),
        tmp_path / "tuned",
        {"class_precision": {}},
        Domain({"H0": [60.0, 75.0]}),
        progress=False,
        init_from=chosen,
    )
    assert tuned.networks["t2"].selection == ranking
    assert read_metadata(tmp_path / "tuned").networks["t2"].selection == ranking


def test_batch_cache_reuses_batches_within_its_memory_limit():
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.batches import BatchCache, make_batch
    from training.learning.train import fit_normalisation, fit_output

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
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.train import fit_normalisation, fit_output, train_network

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
    from training.learning.batches import Batch, padded, stacked

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


def test_weight_average_is_what_is_validated_kept_and_resumed(tmp_path):
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.batches import make_batch, padded
    from training.learning.train import AVERAGE_FILE, fit_normalisation, fit_output, train_network

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


def test_learning_rate_warms_up_over_the_first_steps(tmp_path):
    """The rate rises linearly over the warmup steps of a new run, then holds."""
    import keras

    from training.configuration.network_parsing import parse_networks_config
    from training.learning.train import fit_normalisation, fit_output, train_network

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


def test_combined_sets_read_as_one(smoke_data):
    """Two generated sets of one family: indices run through the first, then the second."""
    from training.learning.data_access import CombinedSets, SetReader

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
    from training.learning.data_access import SetReader

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


def test_polarisation_network_trains_with_ee_and_te_weights(tmp_path):
    """A t2 network with the polarisation projection: its batches carry the EE and TE
    weights of its own source against S_T0, and one epoch trains to a finite loss."""
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.batches import line_of_sight_columns, make_batch
    from training.learning.line_of_sight import spectrum_weights
    from training.learning.train import fit_normalisation, fit_output, train_network

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

    from training.learning.pipeline import provenance
    from training.learning.train import _configure_devices

    with caplog.at_level(logging.INFO, logger="training.learning.train"):
        device = _configure_devices()
    assert device == "CPU" or device.startswith("GPU (")
    assert f"the {keras.backend.backend()} backend" in caplog.text
    assert provenance({})["versions"]["keras"] == keras.__version__
