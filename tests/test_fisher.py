"""Fisher shift estimates and plik_lite linear algebra against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from training.fisher import finite_difference_jacobian, posterior_shift
from training.plik import PlikLite


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
    from training.validate import PairRunner, ValidationSettings, fisher_shift

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
