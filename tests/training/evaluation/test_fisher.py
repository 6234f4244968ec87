"""Fisher shift estimates and plik_lite linear algebra against known answers."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import ROOT

from training.evaluation.fisher import finite_difference_jacobian, posterior_shift
from training.evaluation.plik import PlikLite


def _random_problem(seed: int = 3, n_data: int = 40, n_params: int = 4):
    rng = np.random.default_rng(seed)
    jacobian = rng.standard_normal((n_data, n_params))
    root = rng.standard_normal((n_data, n_data))
    covariance = root @ root.T + n_data * np.eye(n_data)
    return jacobian, np.linalg.inv(covariance)


def test_model_error_along_a_derivative_is_that_parameter_shift():
    jacobian, inverse = _random_problem()
    names = ("a", "b", "c", "d")
    delta = 0.37 * jacobian[:, 2]
    estimate = posterior_shift(names, jacobian, inverse, delta, np.full(4, np.inf))
    np.testing.assert_allclose(estimate.shift, [0, 0, 0.37, 0], atol=1e-12)
    expected_sigma = np.sqrt(np.diag(np.linalg.inv(jacobian.T @ inverse @ jacobian)))
    np.testing.assert_allclose(estimate.sigma, expected_sigma)
    assert estimate.as_dict()["c"]["shift_in_sigma"] == pytest.approx(0.37 / expected_sigma[2])


def test_a_prior_pulls_the_shift_back():
    jacobian, inverse = _random_problem()
    delta = 0.5 * jacobian[:, 0]
    free = posterior_shift("abcd", jacobian, inverse, delta, np.full(4, np.inf))
    tight = posterior_shift(
        "abcd", jacobian, inverse, delta, np.array([1e-3, np.inf, np.inf, np.inf])
    )
    assert abs(tight.shift[0]) < 0.01 * abs(free.shift[0])
    assert tight.sigma[0] < 1e-3


def test_finite_differences_of_a_quadratic_model_are_exact():
    def model(p):
        x = np.linspace(0, 1, 5)
        return p["u"] * x + p["v"] ** 2 * x**2

    jacobian = finite_difference_jacobian(model, {"u": 1.0, "v": 2.0}, {"u": 0.1, "v": 0.1})
    x = np.linspace(0, 1, 5)
    np.testing.assert_allclose(jacobian[:, 0], x)
    np.testing.assert_allclose(jacobian[:, 1], 4.0 * x**2)


def test_plik_lite_shift_and_calibration_known_answers(packages_path):
    plik = PlikLite.load(packages_path)
    assert plik.data.size == 613
    # A model equal to the data, scaled by a calibration 1.002^2, fits A_planck = 1.002
    # (up to the pull of its prior) with chi2 near zero.
    a_fit, chi2 = plik.fit_calibration(plik.data * 1.002**2)
    assert a_fit == pytest.approx(1.002, abs=2e-4)
    assert chi2 < 1.0
    # Shift of a calibration-like template on the real covariance comes back exactly.
    template = np.stack([plik.data, np.linspace(0, 1, plik.data.size) * plik.data.mean()], axis=1)
    delta = 0.01 * template[:, 1]
    estimate = posterior_shift(
        ("amp", "tilt"), template, plik.inverse_covariance, delta, np.full(2, np.inf)
    )
    np.testing.assert_allclose(estimate.shift, [0.0, 0.01], atol=1e-10)


@pytest.mark.slow
def test_fisher_errors_at_the_best_fit_are_planck_like(packages_path):
    """plik_lite TTTEEE + tau prior at default CLASS precision: Planck 2018's errors."""
    from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS
    from cosmicnet_cobaya.sources import ClassSourceProvider
    from training.evaluation.pairs import PairRunner, ValidationSettings
    from training.evaluation.validate import fisher_shift

    settings = ValidationSettings(extra_args=dict(LCDM_EXTRA_ARGS), non_linear="none")
    runner = PairRunner(ClassSourceProvider(), settings)
    point = {name: BEST_FIT[name] for name in ("omega_b", "omega_cdm", "H0", "tau_reio")}
    try:
        estimate = fisher_shift(runner, PlikLite.load(packages_path), point).as_dict()
    finally:
        runner.close()
    # Planck 2018 TT,TE,EE+lowE: sigma(omega_b) = 0.00015, sigma(omega_cdm) = 0.0014,
    # sigma(H0) = 0.6, sigma(n_s) = 0.0044.
    assert estimate["omega_b"]["sigma"] == pytest.approx(1.5e-4, rel=0.25)
    assert estimate["omega_cdm"]["sigma"] == pytest.approx(1.4e-3, rel=0.25)
    assert estimate["H0"]["sigma"] == pytest.approx(0.6, rel=0.25)
    assert estimate["n_s"]["sigma"] == pytest.approx(4.4e-3, rel=0.25)
    # Exact sources: no shift at all.
    assert all(entry["shift"] == 0.0 for entry in estimate.values())


class _ToyCMB:
    """Spectra that depend smoothly and distinctly on each Fisher parameter (with
    ``bao``, also toy BAO observables, which depend on omega_cdm and H0)."""

    def __init__(self, bao=None):
        from types import SimpleNamespace

        self.settings = SimpleNamespace(bao=bao)

    def class_spectra(self, point):
        from cosmicnet_cobaya.planck import BEST_FIT
        from training.evaluation.pairs import Spectra

        ell = np.arange(2509, dtype=float)
        base = 5000.0 * np.exp(-((ell / 1500.0) ** 2)) * (1.2 + np.cos(ell / 45.0)) + 10.0
        modulation = 1.0
        for order, name in enumerate(("omega_b", "omega_cdm", "H0", "logA", "n_s", "tau_reio")):
            step = (point[name] - BEST_FIT[name]) / abs(BEST_FIT[name])
            modulation = modulation + step * np.cos(ell / (60.0 + 37.0 * order) + order)
        tt = base * modulation
        ee = 0.05 * base * modulation**2
        te = 0.3 * np.sqrt(tt * ee) * np.cos(ell / 80.0)
        dl = {"tt": tt, "te": te, "ee": ee, "pp": np.zeros_like(ell)}
        if self.settings.bao is None:
            return Spectra(dl)
        z = np.array(self.settings.bao.redshifts * 2)
        bao = 10.0 * (1 + z) * (point["H0"] / 67.0) ** -0.8 * (point["omega_cdm"] / 0.12) ** -0.2
        return Spectra(dl, bao)


def test_shift_matrix_is_the_shift_of_interpolated_error_patterns(packages_path, tmp_path):
    """M (r, t) equals the Fisher shift of the patterns r(l) D^TT and t(l) sqrt(D^TT D^EE)
    built from the same relative errors; the YAML it prints parses as a network setting."""

    from cosmicnet_cobaya.planck import BEST_FIT
    from training.commands.shift_matrix import matrix_file_text
    from training.configuration.network_parsing import parse_networks_config
    from training.evaluation.shift_matrix import hat_functions, shift_matrix
    from training.evaluation.validate import plik_fisher_inputs

    plik = PlikLite.load(packages_path)
    runner = _ToyCMB()
    multipoles = (40, 300, 900, 2000)
    matrix = shift_matrix(runner, plik, multipoles, with_te=True)
    assert list(matrix) == ["omega_b", "omega_cdm", "H0", "logA", "n_s", "tau_reio"]
    assert all(len(row) == 8 for row in matrix.values())
    rng = np.random.default_rng(2)
    tt_errors, te_errors = rng.normal(scale=1e-3, size=4), rng.normal(scale=1e-3, size=4)
    point = {k: v for k, v in BEST_FIT.items() if k != "A_planck"}
    dl = runner.class_spectra(point).dl
    hats = hat_functions(multipoles, 2508)
    pattern = {
        "tt": dl["tt"] * (tt_errors @ hats),
        "te": np.sqrt(dl["tt"] * dl["ee"]) * (te_errors @ hats),
        "ee": np.zeros_like(dl["ee"]),
    }
    reference = plik.binned(dl)
    names, jacobian, priors = plik_fisher_inputs(runner, plik, point, reference)
    direct = posterior_shift(
        names, jacobian, plik.inverse_covariance, plik.binned(pattern), priors
    ).shift_in_sigma[:-1]
    predicted = np.asarray(list(matrix.values())) @ np.concatenate([tt_errors, te_errors])
    np.testing.assert_allclose(predicted, direct, rtol=1e-8, atol=1e-12)
    assert np.max(np.abs(direct)) > 1e-3
    # A polarisation source's matrix: relative EE errors in place of the TT ones.
    ee_matrix = shift_matrix(runner, plik, multipoles, with_te=False, polarisation=True)
    assert all(len(row) == 4 for row in ee_matrix.values())
    ee_pattern = {
        "tt": np.zeros_like(dl["tt"]),
        "te": np.zeros_like(dl["te"]),
        "ee": dl["ee"] * (tt_errors @ hats),
    }
    ee_direct = posterior_shift(
        names, jacobian, plik.inverse_covariance, plik.binned(ee_pattern), priors
    ).shift_in_sigma[:-1]
    ee_predicted = np.asarray(list(ee_matrix.values())) @ tt_errors
    np.testing.assert_allclose(ee_predicted, ee_direct, rtol=1e-8, atol=1e-12)
    assert np.max(np.abs(ee_direct)) > 1e-4
    matrix_file = tmp_path / "shift.yaml"
    matrix_file.write_text(matrix_file_text(matrix, "test"))
    config = parse_networks_config(
        {
            "t0": {
                "projected_loss_multipoles": list(multipoles),
                "projected_loss_spectrum": True,
                "projected_loss_te_weight": 1.0,
                "projected_loss_shift_weight": 1e-3,
                "projected_loss_shift_matrix": str(matrix_file),
            }
        }
    ).networks["t0"]
    np.testing.assert_allclose(config.projection.shift_matrix, list(matrix.values()), rtol=1e-4)


def test_shift_matrix_with_bao_weighs_the_joint_posterior(packages_path):
    """With a BAO-like block, the matrix is the joint plik_lite + BAO shift of the same
    patterns (the C_l errors leave the BAO observables alone), at a family's point."""
    from training.evaluation.bao import DESI_LIKE
    from training.evaluation.shift_matrix import hat_functions, shift_matrix
    from training.evaluation.validate import (
        data_inverse_covariance,
        data_vector,
        fisher_reference,
        plik_fisher_inputs,
    )

    plik = PlikLite.load(packages_path)
    multipoles = (40, 300, 900, 2000)
    point = fisher_reference()
    alone = shift_matrix(_ToyCMB(), plik, multipoles, with_te=False)
    runner = _ToyCMB(bao=DESI_LIKE)
    joint = shift_matrix(runner, plik, multipoles, with_te=False, point=point)
    errors = np.array([1e-3, -2e-3, 5e-4, 1e-3])
    spectra = runner.class_spectra(point)
    reference = data_vector(plik, spectra)
    names, jacobian, priors = plik_fisher_inputs(runner, plik, point, reference[:-12])
    delta = np.zeros(reference.size)
    pattern = {name: np.zeros_like(values) for name, values in spectra.dl.items()}
    pattern["tt"] = spectra.dl["tt"] * (errors @ hat_functions(multipoles, 2508))
    delta[:-12] = plik.binned(pattern)
    inverse = data_inverse_covariance(plik, DESI_LIKE, reference)
    direct = posterior_shift(names, jacobian, inverse, delta, priors).shift_in_sigma[:-1]
    np.testing.assert_allclose(np.asarray(list(joint.values())) @ errors, direct, rtol=1e-8)
    # BAO information changes how the errors move H0 (its width and its shift)
    assert not np.allclose(joint["H0"], alone["H0"], rtol=1e-3)


def test_shift_matrix_command_names_what_is_missing(tmp_path, caplog):
    """An unknown network, or one without a spectrum projection, is refused before CLASS runs."""
    from training.cli import main

    config = ROOT / "configs" / "lcdm.yaml"
    assert main(["shift-matrix", str(config), "--network", "t9"]) == 2
    assert "unknown network 't9'" in caplog.text
    assert main(["shift-matrix", str(config), "--network", "t1"]) == 2
    assert "t1 has no spectrum projection" in caplog.text
    # a varied parameter the Fisher matrix has no step for
    import shutil

    curved = yaml.safe_load(config.read_text())
    curved["params"]["Omega_k"] = {"prior": {"min": -0.01, "max": 0.01}}
    shutil.copytree(config.parent / "shift_matrices", tmp_path / "shift_matrices")
    (tmp_path / "curved.yaml").write_text(yaml.safe_dump(curved))
    assert main(["shift-matrix", str(tmp_path / "curved.yaml"), "--network", "t0"]) == 2
    assert "no Fisher step for ['Omega_k']" in caplog.text


def test_bao_like_observables_are_classy_distances_over_the_drag_scale():
    from cosmicnet_cobaya.hook.bridge import classy
    from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS
    from training.evaluation.bao import DESI_LIKE

    cosmo = classy.Class()
    names = ("omega_b", "omega_cdm", "H0", "tau_reio")
    cosmo.set({**LCDM_EXTRA_ARGS, **{name: BEST_FIT[name] for name in names}})
    cosmo.compute(level=["thermodynamics"])
    values = DESI_LIKE.observables(cosmo)
    z, r_d = DESI_LIKE.redshifts[0], cosmo.rs_drag()
    assert values[0] == pytest.approx(cosmo.angular_distance(z) * (1 + z) / r_d)
    assert values[len(DESI_LIKE.redshifts)] == pytest.approx(1 / (cosmo.Hubble(z) * r_d))
    assert 12.5 < values[0] < 14.5 and 20 < values[len(DESI_LIKE.redshifts)] < 24  # LCDM at 0.51
    cosmo.struct_cleanup()
    cosmo.empty()


def test_bao_block_joins_plik_and_adds_information_without_a_model_error():
    """The data vector is plik bins then BAO; the BAO block is diagonal with the fractional
    errors; with BAO the Fisher widths shrink while a CMB-only model error keeps its
    numerator."""
    from types import SimpleNamespace

    from training.evaluation.bao import BaoLike
    from training.evaluation.pairs import Spectra
    from training.evaluation.validate import data_inverse_covariance, data_vector

    jacobian, inverse = _random_problem(n_data=12, n_params=3)
    plik = SimpleNamespace(
        data=np.zeros(12), inverse_covariance=inverse, binned=lambda dl: dl["tt"][:12]
    )
    bao = BaoLike(redshifts=(0.5, 1.0), dm_errors=(0.01, 0.02), dh_errors=(0.02, 0.04))
    bao_values = np.array([13.0, 24.0, 22.0, 14.0])
    spectra = Spectra({"tt": np.arange(20.0)}, bao=bao_values)
    vector = data_vector(plik, spectra)
    np.testing.assert_array_equal(vector, np.concatenate([np.arange(12.0), bao_values]))
    joined = data_inverse_covariance(plik, bao, vector)
    np.testing.assert_array_equal(joined[:12, :12], inverse)
    np.testing.assert_allclose(
        np.diag(joined[12:, 12:]), 1 / (bao_values * [0.01, 0.02, 0.02, 0.04]) ** 2
    )
    assert np.all(joined[:12, 12:] == 0)
    bao_jacobian = np.random.default_rng(5).standard_normal((4, 3)) * bao_values[:, None]
    delta = np.concatenate([0.3 * jacobian[:, 1], np.zeros(4)])
    cmb = posterior_shift("abc", jacobian, inverse, delta[:12], np.full(3, np.inf))
    both = posterior_shift(
        "abc", np.vstack([jacobian, bao_jacobian]), joined, delta, np.full(3, np.inf)
    )
    assert np.all(both.sigma < cmb.sigma)
    assert data_inverse_covariance(plik, None, vector[:12]) is inverse
