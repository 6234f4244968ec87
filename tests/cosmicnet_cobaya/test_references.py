"""Recombination networks averaged over references of tau_reio and H0 (networks.references)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.features import compute_features, k_bases
from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.networks.forward import load_numpy_model
from cosmicnet_cobaya.networks.hubble import FlatLambdaExpansion, at_hubble
from cosmicnet_cobaya.networks.network_set import (
    NetworkSet,
    NetworkSetError,
    load_network_set,
    read_metadata,
)
from cosmicnet_cobaya.networks.provider import cosmology_params
from cosmicnet_cobaya.networks.references import at_reference
from cosmicnet_cobaya.planck import BEST_FIT

pytestmark = pytest.mark.skipif(
    not (DEFAULT_NETWORKS / "metadata.json").is_file(), reason="no default network set installed"
)
RECOMBINATION_NETWORKS = ("t0", "t1", "t2")


def _class_settings(tau_reio: float, h0: float = BEST_FIT["H0"]) -> dict:
    precision = read_metadata(DEFAULT_NETWORKS).provenance["class_precision"]
    settings = {key: value for key, value in precision.items() if key != "output"}
    settings.update({name: BEST_FIT[name] for name in ("omega_b", "omega_cdm")})
    settings.update(output="tCl,pCl,lCl", lensing="yes", tau_reio=tau_reio, H0=h0)
    return settings


def _features(tau_reio: float, h0: float = BEST_FIT["H0"]):
    cosmo = bridge.classy.Class()
    cosmo.set(_class_settings(tau_reio, h0))
    cosmo.compute(level=["thermodynamics"])
    prepared = bridge.prepare_perturbations(cosmo)
    params = cosmology_params(cosmo, read_metadata(DEFAULT_NETWORKS).param_names)
    features = compute_features(cosmo, prepared.tau, params)
    cosmo.struct_cleanup()
    return features


def _with_references(networks: NetworkSet, references: tuple[dict, ...]) -> NetworkSet:
    metadata = networks.metadata
    entries = dict(metadata.networks)
    for name in RECOMBINATION_NETWORKS:
        entries[name] = dataclasses.replace(entries[name], references=references)
    return dataclasses.replace(networks, metadata=dataclasses.replace(metadata, networks=entries))


@pytest.fixture(scope="module")
def plain_set() -> NetworkSet:
    return _with_references(load_network_set(DEFAULT_NETWORKS), ())


def test_evaluate_many_equals_separate_calls():
    model = load_numpy_model(DEFAULT_NETWORKS / "t0.keras")
    rng = np.random.default_rng(1)
    shapes = {name: (7, *shape[1:]) for name, shape in model.input_shapes.items()}
    k = rng.normal(size=shapes["k"]).astype(np.float32)
    batches = [
        {
            name: (k if name == "k" else rng.normal(size=shape).astype(np.float32))
            for name, shape in shapes.items()
        }
        for _ in range(3)
    ]
    together = model.evaluate_many(batches, shared=("k",))
    for batch, result in zip(batches, together, strict=True):
        np.testing.assert_array_equal(result, model(batch))
    with pytest.raises(KeyError, match="not inputs"):
        model.evaluate_many(batches, shared=("nothing",))


def test_the_own_parameters_as_only_reference_give_the_plain_prediction(plain_set):
    features = _features(0.06)
    bases = k_bases(features, plain_set.k)
    own = _with_references(
        plain_set, ({"tau_reio": features.params["tau_reio"], "H0": features.params["H0"]},)
    )
    for name in RECOMBINATION_NETWORKS:
        mask, expected = plain_set.predict(name, features, bases)
        own_mask, got = own.predict(name, features, bases)
        assert np.array_equal(mask, own_mask) and mask.any()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_averaged_prediction_scales_as_exp_minus_tau_reio(plain_set):
    """Full CLASS's recombination sources scale so; the averaged networks do by design."""
    low, high = 0.04, 0.07
    references = tuple({"tau_reio": tau} for tau in (0.04, 0.056, 0.072))
    averaged = _with_references(plain_set, references)
    features = {tau: _features(tau) for tau in (low, high)}
    shifted, factor = at_reference(features[high], {"tau_reio": 0.05}, None)
    assert factor == pytest.approx(np.exp(0.05 - high))
    assert shifted.params["tau_reio"] == 0.05
    np.testing.assert_allclose(shifted.time["g"], features[high].time["g"] / factor)
    for name in ("t0", "t2"):
        predicted = {}
        for tau, item in features.items():
            _, predicted[tau] = averaged.predict(name, item, k_bases(item, averaged.k))
        rows = min(len(predicted[low]), len(predicted[high]))
        ratio = predicted[high][:rows] / predicted[low][:rows]
        big = np.abs(predicted[low][:rows]) > 0.1 * np.abs(predicted[low]).max()
        # CLASS samples tau slightly differently at the two optical depths: compare
        # where the source is large, and loosely.
        assert np.median(ratio[big]) == pytest.approx(np.exp(low - high), rel=2e-3)
        _, plain = plain_set.predict(name, features[high], k_bases(features[high], plain_set.k))
        difference = np.abs(predicted[high] - plain).max() / np.abs(plain).max()
        assert 0 < difference < 0.01


def test_class_recombination_sources_scale_as_exp_minus_tau_reio():
    """The premise, against full CLASS: S(tau < 1.5 tau_rec) is proportional to exp(-tau_reio)."""
    sources = {}
    for tau_reio in (0.04, 0.07):
        cosmo = bridge.classy.Class()
        cosmo.set({**_class_settings(tau_reio), "l_max_scalars": 500})
        cosmo.compute(level=["perturbations"])
        values, _, tau = cosmo.get_sources()
        tau_rec = cosmo.get_current_derived_parameters(["tau_rec"])["tau_rec"]
        sources[tau_reio] = (values, np.asarray(tau), tau_rec)
        cosmo.struct_cleanup()
    (low, tau_low, tau_rec), (high, tau_high, _) = sources[0.04], sources[0.07]
    early = np.flatnonzero(tau_low < 1.5 * tau_rec)
    assert tau_high[early[-1]] < 1.5 * tau_rec * 1.01
    for name in RECOMBINATION_NETWORKS:
        scaled = low[name][:, early] * np.exp(0.04 - 0.07)
        deviation = (high[name][:, early] - scaled) / np.abs(scaled).max()
        assert np.sqrt(np.mean(deviation**2)) < 2e-5
        assert np.abs(deviation).max() < 2e-3


def test_class_recombination_sources_do_not_depend_on_h0():
    """The premise of H0 references, against full CLASS at the same k (k_output_values)."""
    k_values = np.geomspace(2e-3, 0.25, 12)
    early = {}
    for h0 in (65.8, 69.6):
        cosmo = bridge.classy.Class()
        cosmo.set(
            {
                **_class_settings(0.055, h0),
                "l_max_scalars": 500,
                "k_output_values": ",".join(f"{k:.8g}" for k in k_values),
            }
        )
        cosmo.compute(level=["perturbations"])
        values, k, tau = cosmo.get_sources()
        tau_rec = cosmo.get_current_derived_parameters(["tau_rec"])["tau_rec"]
        columns = [int(np.argmin(np.abs(np.asarray(k) - value))) for value in k_values]
        rows = np.asarray(tau) < 1.5 * tau_rec
        early[h0] = (
            np.asarray(tau)[rows],
            {n: values[n][columns][:, rows] for n in ("t0", "t1", "t2")},
        )
        cosmo.struct_cleanup()
    (tau_low, low), (tau_high, high) = early[65.8], early[69.6]
    assert tau_low.size == tau_high.size
    np.testing.assert_allclose(tau_low, tau_high, rtol=0, atol=1e-3)  # Mpc
    for name in RECOMBINATION_NETWORKS:
        deviation = (high[name] - low[name]) / np.abs(low[name]).max()
        # t0 varies fastest in tau, where the two samplings differ by 2.5e-4 Mpc.
        assert np.sqrt(np.mean(deviation**2)) < (1e-4 if name == "t0" else 1e-5)
        assert np.abs(deviation).max() < 2e-3


def test_h0_move_reproduces_class_intervals():
    """at_hubble gives the ra_rec, da_rec and conf_time_reio CLASS finds at the other H0."""
    metadata = read_metadata(DEFAULT_NETWORKS)
    expansion = FlatLambdaExpansion.from_settings(
        metadata.provenance["class_precision"], metadata.param_names
    )
    low, high = _features(0.055, 65.6), _features(0.055, 69.7)
    for start, end in ((low, high), (high, low)):
        moved = at_hubble(start, end.params["H0"], expansion)
        assert moved.params == {**start.params, "H0": end.params["H0"]}
        assert abs(end.scalars["ra_rec"] - start.scalars["ra_rec"]) > 150.0  # Mpc
        for name, tolerance in (("ra_rec", 2e-3), ("da_rec", 2e-6), ("conf_time_reio", 2e-2)):
            assert moved.scalars[name] == pytest.approx(end.scalars[name], abs=tolerance)
        for name in ("tau_rec", "rs_rec", "ds_rec", "rd_rec"):
            assert moved.scalars[name] == start.scalars[name]
            assert end.scalars[name] == pytest.approx(start.scalars[name], rel=1e-7)
        assert moved.time is start.time


def test_h0_references_change_the_prediction_a_little(plain_set):
    features = _features(0.055)
    bases = k_bases(features, plain_set.k)
    averaged = _with_references(plain_set, ({"H0": 66.0}, {"H0": 69.0}))
    for name in RECOMBINATION_NETWORKS:
        _, plain = plain_set.predict(name, features, bases)
        _, got = averaged.predict(name, features, bases)
        difference = np.abs(got - plain).max() / np.abs(plain).max()
        assert 0 < difference < 0.01


def test_older_tau_reio_references_are_read_as_references(tmp_path):
    def older(data):
        _set(data, "t0", "tau_reio_references", [0.04, 0.06])

    metadata = read_metadata(_edited_metadata(tmp_path, "older", older))
    assert metadata.networks["t0"].references == ({"tau_reio": 0.04}, {"tau_reio": 0.06})
    assert "tau_reio_references" not in metadata.to_dict()["networks"]["t0"]


def _edited_metadata(tmp_path: Path, label: str, edit: Callable[[dict], None]) -> Path:
    """A folder holding the shipped metadata.json changed by ``edit(data)``."""
    data = json.loads((DEFAULT_NETWORKS / "metadata.json").read_text())
    edit(data)
    folder = tmp_path / label
    folder.mkdir()
    (folder / "metadata.json").write_text(json.dumps(data))
    return folder


def _set(data: dict, network: str, key: str, value: object) -> None:
    """Set ``key`` of a network entry, removing the other form of references."""
    entry = data["networks"][network]
    entry.pop("references", None)
    entry.pop("tau_reio_references", None)
    entry[key] = value


def test_references_are_refused_where_the_scaling_fails(tmp_path):
    def late(data):
        _set(data, "t0_late", "references", [{"tau_reio": 0.05}])

    def lensing(data):
        data["networks"]["phi_plus_psi"]["tau_range"] = [0.0, 1.5]
        _set(data, "phi_plus_psi", "references", [{"tau_reio": 0.05}])

    def malformed(data):
        _set(data, "t0", "tau_reio_references", "0.05")

    def unknown(data):
        _set(data, "t0", "references", [{"tau_reio": 0.05}])
        data["param_names"] = [name for name in data["param_names"] if name != "tau_reio"]

    def not_symmetric(data):
        _set(data, "t0", "references", [{"omega_b": 0.0224}])

    def outside(data):
        _set(data, "t0", "references", [{"H0": 75.0}])

    def curved(data):
        _set(data, "t0", "references", [{"H0": 67.0}])
        data["provenance"]["class_precision"]["Omega_k"] = 0.01

    def both_keys(data):
        data["networks"]["t0"]["references"] = [{"H0": 67.0}]
        data["networks"]["t0"]["tau_reio_references"] = [0.05]

    for edit, message in (
        (late, "tau range ends"),
        (lensing, "does not carry a factor"),
        (malformed, "list of optical depths"),
        (unknown, "remove it"),
        (not_symmetric, "may set only"),
        (outside, "outside the training domain"),
        (curved, "cosmological constant"),
        (both_keys, "keep one"),
    ):
        with pytest.raises(NetworkSetError, match=message):
            read_metadata(_edited_metadata(tmp_path, edit.__name__, edit))


def test_expansion_reads_class_settings_and_refuses_what_breaks_the_symmetry():
    params = ("omega_b", "omega_cdm", "H0", "tau_reio")
    expansion = FlatLambdaExpansion.from_settings(
        {"N_ncdm": 2, "m_ncdm": "0.05,0.01", "N_ur": 1.0196}, params
    )
    assert expansion.neutrino_mass_ev == pytest.approx(0.06)
    assert expansion.n_ur == 1.0196 and expansion.t_cmb == 2.7255
    assert FlatLambdaExpansion.from_settings({}, params).neutrino_mass_ev == 0.0
    for settings, names, message in (
        ({}, ("omega_b", "H0"), "lacks"),
        ({"w0_fld": -0.9}, params, "cosmological constant"),
        ({}, (*params, "N_ur"), "fixed, not varied"),
    ):
        with pytest.raises(ValueError, match=message):
            FlatLambdaExpansion.from_settings(settings, names)
