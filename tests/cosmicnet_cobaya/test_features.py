"""Network inputs: k bases (no CLASS) and compute_features on a CLASS object."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import ROOT
from scipy.interpolate import CubicSpline
from scipy.special import spherical_jn

from cosmicnet_cobaya.features import (
    BASIS_NAMES,
    J1_PEAK,
    J2_PEAK,
    SCALAR_NAMES,
    TIME_NAMES,
    CosmologyFeatures,
    FeatureError,
    KBases,
    _bessel_j1_j2,
    _near,
    compute_features,
    k_bases,
)


def _toy_features(n_tau: int = 300) -> CosmologyFeatures:
    tau = np.geomspace(200.0, 14000.0, n_tau)
    time = {
        "g": np.exp(-(((tau - 280.0) / 20.0) ** 2)),
        "g_prime": np.zeros(n_tau),
        "e_kappa": np.clip(tau / 14000.0, 0.0, 1.0),
        "r_s": 145.0 * np.sqrt(tau / 280.0),
        "k_D": 0.15 * (280.0 / tau) ** 1.5,
    }
    scalars = dict.fromkeys(SCALAR_NAMES, 1.0) | {"tau_rec": 280.0}
    return CosmologyFeatures(params={"H0": 67.0}, scalars=scalars, tau=tau, time=time)


def test_bessel_matches_scipy_including_small_arguments() -> None:
    x = np.concatenate([np.linspace(-30.0, 30.0, 20001), np.geomspace(1e-8, 0.5, 500)])
    j1, j2 = _bessel_j1_j2(x, np.sin(x), np.cos(x))
    np.testing.assert_allclose(j1, spherical_jn(1, x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(j2, spherical_jn(2, x), rtol=0, atol=1e-12)
    dense = np.linspace(0.0, 10.0, 200001)
    assert np.max(spherical_jn(1, dense)) == pytest.approx(J1_PEAK, rel=1e-9)
    assert np.max(spherical_jn(2, dense)) == pytest.approx(J2_PEAK, rel=1e-9)


def test_k_bases_limits_and_shapes() -> None:
    features = _toy_features()
    k = np.geomspace(1e-5, 1.0, 400)
    bases = k_bases(features, k)
    assert set(bases) == {"cos_in", "sin_in", "damping"}
    for value in bases.values():
        assert value.shape == (features.tau.size, k.size)
        assert value.dtype == np.float32
        assert np.all(np.isfinite(value))
    tau = features.tau[:, None]
    step = 0.5 * (np.tanh((tau - 4.0 * 280.0) / 100.0) + 1.0)
    kr = k[None, :] * features.time["r_s"][:, None]
    x = k[None, :] * (tau - 280.0)
    j1, j2 = spherical_jn(1, x) / J1_PEAK, spherical_jn(2, x) / J2_PEAK
    # float32 bases, with the terms that float32 cannot resolve left out: within 3e-7.
    np.testing.assert_allclose(bases["cos_in"], step * j1 + (1 - step) * np.cos(kr), atol=3e-7)
    np.testing.assert_allclose(bases["sin_in"], step * j2 + (1 - step) * np.sin(kr), atol=3e-7)
    early = features.tau < 2.0 * 280.0
    late = features.tau > 6.0 * 280.0
    np.testing.assert_allclose(bases["cos_in"][early], np.cos(kr)[early], atol=5e-5)
    np.testing.assert_allclose(bases["cos_in"][late], j1[late], atol=5e-5)
    assert np.max(np.abs(bases["cos_in"])) <= 1.0 + 1e-6
    damping = bases["damping"]
    assert np.all((damping > 0.0) | (damping == 0.0)) and np.all(damping <= 1.0)
    np.testing.assert_allclose(
        damping, np.exp(-((k[None, :] / features.time["k_D"][:, None]) ** 2)), rtol=0, atol=3e-7
    )


def test_k_bases_are_one_array_the_networks_share() -> None:
    features = _toy_features()
    k = np.geomspace(1e-5, 1.0, 50)
    bases = k_bases(features, k)
    assert isinstance(bases, KBases) and tuple(bases) == BASIS_NAMES
    assert bases.array.shape == (features.tau.size, k.size, 3)
    assert bases.array.flags.c_contiguous
    # The networks' k input is the array itself, its rows a view: no copies.
    assert bases.stacked(BASIS_NAMES) is bases.array
    rows = bases.rows(slice(10, 40))
    assert np.shares_memory(rows.stacked(BASIS_NAMES), bases.array)
    assert rows.array.flags.c_contiguous and rows.array.shape[0] == 30
    # A subset, or another order, is a copy with the named bases in that order.
    chosen = bases.stacked(("damping", "cos_in"))
    np.testing.assert_array_equal(chosen[..., 0], bases["damping"])
    np.testing.assert_array_equal(chosen[..., 1], bases["cos_in"])
    assert "sin_in" in bases and "j1" not in bases
    with pytest.raises(ValueError):
        KBases(BASIS_NAMES, bases.array[..., :2])


def test_splines_of_the_rows_near_the_range_match_the_whole_table() -> None:
    # A CLASS-like table: 20000 rows, log-spaced in time, a smooth function.
    table_tau = np.geomspace(1e-3, 14000.0, 20000)
    columns = {"conf. time [Mpc]": table_tau, "r_s": np.sqrt(table_tau) * (1 + np.sin(table_tau))}
    tau = np.geomspace(230.0, 14000.0, 600)
    near = _near(columns, tau[0], tau[-1])
    assert near["conf. time [Mpc]"].size < 0.3 * table_tau.size
    assert near["conf. time [Mpc]"][0] < tau[0]
    whole = CubicSpline(table_tau, columns["r_s"])(tau)
    part = CubicSpline(near["conf. time [Mpc]"], near["r_s"])(tau)
    np.testing.assert_allclose(part, whole, rtol=1e-13, atol=0)


def test_features_refuse_unordered_tau() -> None:
    features = _toy_features(20)
    with pytest.raises(FeatureError, match="increasing"):
        features.rows(np.r_[5:20, 0:5])


@pytest.fixture(scope="module")
def thermo_cosmo():
    from cosmicnet_cobaya.hook import bridge
    from training.configuration.family import load_config

    config = load_config(ROOT / "configs" / "smoke.yaml")
    cosmo = bridge.classy.Class()
    cosmo.set(config.class_settings())
    cosmo.compute(level=["thermodynamics"])
    prepared = bridge.prepare_perturbations(cosmo)
    yield cosmo, prepared
    cosmo.struct_cleanup()


@pytest.mark.slow
def test_compute_features_on_class(thermo_cosmo) -> None:
    cosmo, prepared = thermo_cosmo
    features = compute_features(cosmo, prepared.tau, {"H0": 67.66})
    assert tuple(features.scalars) == SCALAR_NAMES
    assert tuple(features.time) == TIME_NAMES
    for name in TIME_NAMES:
        assert features.time[name].shape == prepared.tau.shape
        assert np.all(np.isfinite(features.time[name]))
    scalars = features.scalars
    derived = cosmo.get_current_derived_parameters(["tau_rec", "rs_rec", "conf_time_reio"])
    assert scalars["tau_rec"] == derived["tau_rec"]
    # r_s(tau) at recombination is CLASS's rs_rec; g peaks at recombination.
    r_s_rec = np.interp(scalars["tau_rec"], features.tau, features.time["r_s"])
    assert r_s_rec == pytest.approx(derived["rs_rec"], rel=2e-3)
    assert features.tau[np.argmax(features.time["g"])] == pytest.approx(
        scalars["tau_rec"], rel=0.05
    )
    # g' is the derivative of g: compare with finite differences where sampling is dense.
    fd = np.gradient(features.time["g"], features.tau)
    peak = np.abs(features.tau - scalars["tau_rec"]) < 60.0
    scale = np.max(np.abs(features.time["g_prime"]))
    assert np.max(np.abs(fd[peak] - features.time["g_prime"][peak])) < 0.05 * scale
    # exp(-kappa) grows to 1 today; k_D = 2 pi / r_d decreases with time.
    assert np.all(np.diff(features.time["e_kappa"]) >= -1e-12)
    assert features.time["e_kappa"][-1] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(features.time["k_D"]) < 0)
    assert 2.0 * np.pi / scalars["rd_rec"] == pytest.approx(
        np.interp(scalars["tau_rec"], features.tau, features.time["k_D"]), rel=1e-3
    )


@pytest.mark.slow
def test_compute_features_needs_damping_scale() -> None:
    from cosmicnet_cobaya.hook import bridge

    cosmo = bridge.classy.Class()
    cosmo.set({"output": "tCl", "omega_b": 0.0224})
    cosmo.compute(level=["thermodynamics"])
    try:
        with pytest.raises(FeatureError, match="compute damping scale"):
            compute_features(cosmo, np.linspace(300.0, 1000.0, 10), {})
    finally:
        cosmo.struct_cleanup()
