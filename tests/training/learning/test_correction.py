"""Residual corrections of networks (networks.correction, training.learning.correction)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

from cosmicnet_cobaya.features import k_bases
from cosmicnet_cobaya.networks.correction import (
    CorrectionError,
    LinearInterpolation,
    ResidualCorrection,
    monomial_powers,
    monomials,
)
from cosmicnet_cobaya.networks.network_set import NetworkSetError, load_network_set
from training.cli import main
from training.generation.dataset import open_set
from training.learning.correction import (
    CorrectionSettings,
    NormalEquations,
    accumulate,
    fit_corrections,
    solve,
    sums_fingerprint,
)


def test_monomials_constant_first_then_by_degree():
    assert monomial_powers(2, 2) == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
    assert len(monomial_powers(2, 3)) == 10 and len(monomial_powers(3, 2)) == 10
    u = np.array([0.5, -2.0])
    assert np.allclose(monomials(u, 2), [1.0, 0.5, -2.0, 0.25, -1.0, 4.0])


def test_linear_interpolation_is_exact_for_lines_and_zero_outside():
    known = np.array([0.0, 0.3, 1.0, 2.0])
    values = np.stack([3.0 * known + 1.0, -known], axis=1)
    wanted = np.array([-0.1, 0.0, 0.15, 1.7, 2.0, 2.5])
    got = LinearInterpolation.between(known, wanted)(values)
    inside = (wanted >= 0.0) & (wanted <= 2.0)
    assert np.allclose(got[inside, 0], 3.0 * wanted[inside] + 1.0)
    assert np.allclose(got[inside, 1], -wanted[inside])
    assert np.all(got[~inside] == 0.0)


def _correction(rank: int = 2, k_size: int = 5) -> ResidualCorrection:
    rng = np.random.default_rng(1)
    return ResidualCorrection(
        parameters=("omega_b", "omega_cdm"),
        centre=(0.0224, 0.12),
        scale=(0.0007, 0.0045),
        degree=1,
        x=np.linspace(0.8, 1.5, 7),
        left=rng.normal(size=(3, 7, rank)),
        right=rng.normal(size=(rank, k_size)),
        file="t1.correction.npz",
    )


def test_correction_evaluates_its_formula_and_round_trips(tmp_path):
    correction = _correction()
    params = {"omega_b": 0.0231, "omega_cdm": 0.118, "H0": 70.0}
    u = [(0.0231 - 0.0224) / 0.0007, (0.118 - 0.12) / 0.0045]
    terms = [1.0, u[0], u[1]]
    on_grid = sum(t * correction.left[i] for i, t in enumerate(terms)) @ correction.right
    x = np.array([0.7, 0.8, 1.1, 1.5, 1.6])
    expected = np.stack([np.interp(x, correction.x, column) for column in on_grid.T], axis=1)
    expected[(x < 0.8) | (x > 1.5)] = 0.0
    assert np.allclose(correction.evaluate(params, x), expected)
    values = np.ones((x.size, 8))
    correction.add_to(values, params, x)
    assert np.allclose(values[:, :5], 1.0 + expected) and np.all(values[:, 5:] == 1.0)

    correction.save(tmp_path)
    loaded = ResidualCorrection.load(tmp_path, correction.spec(), "here")
    assert np.allclose(loaded.evaluate(params, x), expected)
    assert loaded.spec() == correction.spec()


def test_correction_refuses_bad_shapes_and_files(tmp_path):
    good = _correction()
    with pytest.raises(CorrectionError, match="left factor"):
        dataclasses.replace(good, left=good.left[:2])
    with pytest.raises(CorrectionError, match="right factor"):
        dataclasses.replace(good, right=good.right[:1])
    with pytest.raises(CorrectionError, match="non-finite"):
        dataclasses.replace(good, right=np.full_like(good.right, np.nan))
    with pytest.raises(CorrectionError, match="is missing"):
        ResidualCorrection.load(tmp_path, good.spec(), "networks.t1.correction")
    (tmp_path / good.file).write_bytes(b"not an npz file")
    with pytest.raises(CorrectionError, match="corrupt"):
        ResidualCorrection.load(tmp_path, good.spec(), "networks.t1.correction")
    with pytest.raises(CorrectionError, match="incomplete"):
        ResidualCorrection.load(tmp_path, {"file": good.file}, "networks.t1.correction")


def _planted(params: dict[str, float], x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A residual smooth in x and k, quadratic in the scaled parameters."""
    ub = (params["omega_b"] - 0.02242) / 0.0007
    uc = (params["omega_cdm"] - 0.11933) / 0.00455
    shape_x = np.exp(-(((x - 1.0) / 0.1) ** 2))[:, None]
    shape_k = np.sin(k / 0.02)[None, :]
    return (0.3 + ub - 0.5 * uc + 0.7 * ub * uc) * shape_x * shape_k + uc**2 * shape_x * 0.1


def _scattered(smoke_data, source: str, seed: int) -> tuple[list, np.ndarray]:
    """40 smoke cosmologies (cycled) with omega_b, omega_cdm redrawn across the box."""
    with open_set(smoke_data / "training.h5") as data:
        base = [data.cosmology(int(i), targets=(source,)) for i in data.indices]
        k = data.k
    rng = np.random.default_rng(seed)
    cosmologies = []
    for n in range(40):
        cosmology = base[n % len(base)]
        params = dict(cosmology.features.params)
        params["omega_b"] = 0.02242 + 0.0007 * rng.uniform(-1, 1)
        params["omega_cdm"] = 0.11933 + 0.00455 * rng.uniform(-1, 1)
        features = dataclasses.replace(cosmology.features, params=params)
        cosmologies.append(dataclasses.replace(cosmology, features=features))
    return cosmologies, k


def _fake_set(name: str, tau_range: tuple, k: np.ndarray, predict) -> SimpleNamespace:
    """A stand-in network set with one network ``name`` whose prediction is ``predict``."""
    entry = SimpleNamespace(source=name, tau_range=tau_range)
    domain = {"omega_b": [0.02172, 0.02312], "omega_cdm": [0.11478, 0.12388]}
    return SimpleNamespace(
        metadata=SimpleNamespace(networks={name: entry}, param_names=("omega_b", "omega_cdm"),
                                 domain=domain),
        corrections={}, k=k, predict=predict,
    )  # fmt: skip


def _planted_problem(smoke_data):
    """40 cosmologies whose residual is :func:`_planted`, and a set that predicts them."""
    cosmologies, k = _scattered(smoke_data, "t1", seed=3)

    def predict(name, features, bases):
        x = features.tau / features.scalars["tau_rec"]
        mask = x < 1.5
        target = next(c for c in cosmologies if c.features is features).targets["t1"]
        return mask, target[mask] - _planted(features.params, x[mask], k)

    return _fake_set("t1", (0.0, 1.5), k, predict), cosmologies


def test_fit_recovers_a_planted_residual(smoke_data):
    fake_set, cosmologies = _planted_problem(smoke_data)
    settings = CorrectionSettings(degree=2, x_size=300, k_max=fake_set.k[-1], max_rank=8)
    correction = fit_corrections(fake_set, ["t1"], cosmologies, settings)["t1"]
    fitted = correction.fitted
    assert fitted["cosmologies"] == 36 and fitted["held_out"] == 4
    assert fitted["held_out_rms_after"] < 0.01 * fitted["held_out_rms_before"]


def test_relative_fit_recovers_a_planted_relative_error_up_to_today(smoke_data):
    """A matter-like network serving up to today: its relative error is fitted and removed."""
    cosmologies, k = _scattered(smoke_data, "delta_m", seed=5)

    def relative_error(params, x):
        return 0.05 * _planted(params, x / x[-1], k)

    def predict(name, features, bases):
        x = features.tau / features.scalars["tau_rec"]
        target = next(c for c in cosmologies if c.features is features).targets["delta_m"]
        return np.ones(x.size, bool), target / (1.0 + relative_error(features.params, x))

    fake_set = _fake_set("delta_m", (0.0, None), k, predict)
    settings = CorrectionSettings(
        degree=2, x_size=400, k_max=k[-1], max_rank=8, mode="relative", end_margin=0.05
    )
    correction = fit_corrections(fake_set, ["delta_m"], cosmologies, settings)["delta_m"]
    assert correction.mode == "relative" and correction.spec()["mode"] == "relative"
    assert correction.x[-1] > max(c.features.tau[-1] / c.features.scalars["tau_rec"]
                                  for c in cosmologies[:1])  # fmt: skip
    fitted = correction.fitted
    assert fitted["held_out_rms_after"] < 0.05 * fitted["held_out_rms_before"]
    held = cosmologies[0]
    x = held.features.tau / held.features.scalars["tau_rec"]
    _, predicted = predict("delta_m", held.features, None)
    correction.add_to(predicted, held.features.params, x)
    late = x > 0.5 * x[-1]
    error = predicted[late] / held.targets["delta_m"][late] - 1.0
    assert np.max(np.abs(error)) < 0.1 * np.max(np.abs(relative_error(held.features.params, x)))


def test_log_mode_emulates_a_smooth_source_whatever_the_network_error(smoke_data):
    """ln|source| quadratic in the parameters is reproduced on the rows after x_min,
    though the network's error is noise; earlier rows keep the network's output."""
    with open_set(smoke_data / "training.h5") as data:
        base = data.cosmology(int(data.indices[0]), targets=("delta_m",))
        k = data.k
    x_rows = base.features.tau / base.features.scalars["tau_rec"]
    growing = -np.outer(x_rows**2, (k / 0.05) ** 2 / (1.0 + (k / 0.05) ** 2))  # no zeros
    rng = np.random.default_rng(7)
    cosmologies, truths = [], {}
    for _ in range(40):
        params = dict(base.features.params)
        ub, uc = rng.uniform(-1, 1, size=2)
        params["omega_b"] = 0.02242 + 0.0007 * ub
        params["omega_cdm"] = 0.11933 + 0.00455 * uc
        truth = growing * np.exp(0.05 * ub - 0.03 * uc + 0.02 * ub * uc)
        features = dataclasses.replace(base.features, params=params)
        cosmologies.append(dataclasses.replace(base, features=features, targets={"delta_m": truth}))
        truths[id(features)] = truth

    def predict(name, features, bases):
        noise = 1.0 + 0.03 * np.random.default_rng(id(features) % 1000).normal(size=(1, k.size))
        return np.ones(features.tau.size, bool), truths[id(features)] * noise

    fake_set = _fake_set("delta_m", (0.0, None), k, predict)
    settings = CorrectionSettings(
        degree=2, x_size=300, x_min=float(x_rows[x_rows.size // 2]), x_spacing="geometric",
        k_max=k[-1], max_rank=64, tolerance=1e-14, mode="log",
    )  # fmt: skip
    correction = fit_corrections(fake_set, ["delta_m"], cosmologies, settings)["delta_m"]
    assert correction.mode == "log" and correction.x[0] == settings.x_min
    assert np.allclose(np.diff(np.log(correction.x)), np.log(correction.x[1] / correction.x[0]))
    assert correction.fitted["held_out_rms_after"] < 1e-3 * correction.fitted["held_out_rms_before"]
    held = cosmologies[0]
    _, values = predict("delta_m", held.features, None)
    network = values.copy()
    correction.add_to(values, held.features.params, x_rows)
    late = x_rows >= settings.x_min
    assert np.max(np.abs(values[late] / truths[id(held.features)][late] - 1.0)) < 1e-4
    assert np.array_equal(values[~late], network[~late])


def test_saved_sums_added_to_a_second_half_give_the_whole_fit(smoke_data, tmp_path):
    fake_set, cosmologies = _planted_problem(smoke_data)
    settings = CorrectionSettings(
        degree=2, x_size=300, k_max=fake_set.k[-1], max_rank=8, holdout_every=0
    )
    whole = solve(fake_set, accumulate(fake_set, ["t1"], cosmologies, settings), settings)
    first = accumulate(fake_set, ["t1"], cosmologies[:25], settings)["t1"]
    path = tmp_path / "t1.sums.npz"
    first.save(path, sums_fingerprint(fake_set, "t1", settings))
    loaded = NormalEquations.load(path, sums_fingerprint(fake_set, "t1", settings))
    second = accumulate(fake_set, ["t1"], cosmologies[25:], settings, start={"t1": loaded})
    halves = solve(fake_set, second, settings)
    assert halves["t1"].fitted["cosmologies"] == whole["t1"].fitted["cosmologies"] == 40
    assert "25 cosmologies" in halves["t1"].fitted["sums_added"][0]
    params = cosmologies[0].features.params
    x = np.linspace(0.2, 1.4, 50)
    assert np.allclose(halves["t1"].evaluate(params, x), whole["t1"].evaluate(params, x))

    other = dataclasses.replace(settings, degree=3)
    with pytest.raises(ValueError, match=r"another fit \(differs in \['degree'\]\)"):
        NormalEquations.load(path, sums_fingerprint(fake_set, "t1", other))
    shifted = NormalEquations(first.x + 0.01, first.k_size, first.n_terms)
    with pytest.raises(ValueError, match="another grid"):
        loaded.add(shifted)
    path.write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="cannot read the sums"):
        NormalEquations.load(path, sums_fingerprint(fake_set, "t1", settings))


def test_correct_command_adds_corrections_that_the_set_applies(
    smoke_data, smoke_networks, tmp_path
):
    out = tmp_path / "corrected"
    argv = ["correct", str(smoke_networks), "--data", str(smoke_data), "--out", str(out)]
    assert main([*argv, "--networks", "t1", "--degree", "0", "--no-progress"]) == 0
    corrected, plain = load_network_set(out), load_network_set(smoke_networks)
    correction = corrected.corrections["t1"]
    assert correction.fitted["cosmologies"] >= 2 and "training.h5" in correction.fitted["data"]
    with open_set(smoke_data / "test.h5") as data:
        features = data.cosmology(int(data.indices[0])).features
    bases = k_bases(features, plain.k)
    mask, without = plain.predict("t1", features, bases)
    _, with_correction = corrected.predict("t1", features, bases)
    x = features.tau[mask] / features.scalars["tau_rec"]
    expected = without.copy()
    expected[:, : correction.k_size] += correction.evaluate(features.params, x)
    assert np.allclose(with_correction, expected)
    assert not np.allclose(with_correction, without)

    again = tmp_path / "again"
    assert main(["correct", str(out), "--data", str(smoke_data), "--out", str(again),
                 "--networks", "t1", "--degree", "0", "--no-progress"]) == 2  # fmt: skip

    arrays = (out / correction.file).read_bytes()
    (out / correction.file).write_bytes(b"corrupt")
    with pytest.raises(NetworkSetError, match=r"t1\.correction\.npz is corrupt"):
        load_network_set(out)
    (out / correction.file).unlink()
    with pytest.raises(NetworkSetError, match="is missing"):
        load_network_set(out)
    (out / correction.file).write_bytes(arrays)
    metadata = json.loads((out / "metadata.json").read_text())
    metadata["networks"]["t1"]["correction"]["parameters"] = ["N_eff", "omega_cdm"]
    (out / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(NetworkSetError, match="N_eff"):
        load_network_set(out)


def test_correct_command_saves_and_adds_sums(smoke_data, smoke_networks, tmp_path):
    base = ["correct", str(smoke_networks), "--data", str(smoke_data), "--networks", "t1",
            "--degree", "0", "--holdout-every", "0", "--no-progress"]  # fmt: skip
    sums = tmp_path / "sums"
    assert main([*base, "--out", str(tmp_path / "a"), "--save-sums", str(sums)]) == 0
    assert (sums / "t1.sums.npz").exists()
    once = load_network_set(tmp_path / "a").corrections["t1"].fitted["cosmologies"]
    assert main([*base, "--out", str(tmp_path / "b"), "--add-sums", str(sums)]) == 0
    twice = load_network_set(tmp_path / "b").corrections["t1"]
    assert twice.fitted["cosmologies"] == 2 * once
    assert str(sums / "t1.sums.npz") in twice.fitted["sums_added"][0]
    assert main([*base, "--out", str(tmp_path / "c"), "--add-sums", str(tmp_path)]) == 2
    other_degree = [*base, "--out", str(tmp_path / "d"), "--add-sums", str(sums)]
    other_degree[other_degree.index("--degree") + 1] = "1"
    assert main(other_degree) == 2
