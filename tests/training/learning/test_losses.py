"""Training losses: the line-of-sight, spectrum, polarisation and shift projections."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY, SyntheticSet


def _projection_step(k, spectrum_shape=None, seed=5):
    """Two cosmologies' batches (9 and 5 slices), predictions with noise, and the step."""
    from training.learning.batches import Batch, stacked, with_line_of_sight
    from training.learning.line_of_sight import trapezoid_weights

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
    from training.learning.line_of_sight import LineOfSightProjection, projected_error
    from training.learning.losses import ProjectedSourceLoss

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
    from training.learning.line_of_sight import LineOfSightProjection, projected_error
    from training.learning.losses import ProjectedSourceLoss

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
    from training.learning.line_of_sight import (
        LineOfSightProjection,
        projected_error,
        trapezoid_weights,
    )

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

    from training.learning.line_of_sight import (
        LineOfSightProjection,
        projected_error,
        trapezoid_weights,
    )

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
    from training.learning.line_of_sight import trapezoid_weights

    k = np.geomspace(1e-3, 0.3, n_k)
    tau = np.linspace(280.0, 14000.0, n_tau)
    line_of_sight = np.stack([tau, trapezoid_weights(tau) / 280.0, 14100.0 - tau], axis=1)
    return k, tau, line_of_sight


def test_spectrum_projection_is_the_relative_cl_error():
    from training.learning.line_of_sight import (
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
    from training.learning.line_of_sight import bessel_projection, trapezoid_weights

    dlnk = trapezoid_weights(np.log(k[: projection.k_count(k)]))
    delta_t = bessel_projection(temperature, line_of_sight, k, projection)
    delta_e = bessel_projection(polarisation, line_of_sight, k, projection, inverse_x_squared=True)
    return np.sum(dlnk * delta_t * delta_e, axis=1) / np.sqrt(
        np.sum(dlnk * delta_t**2, axis=1) * np.sum(dlnk * delta_e**2, axis=1)
    )


def test_spectrum_projection_weighs_te_errors():
    """The TE rows give the TE error relative to sqrt(C^TT C^EE), whatever the scale
    or sign of the polarisation source; without it the TE term is refused."""
    from training.learning.line_of_sight import (
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
    from training.learning.line_of_sight import (
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
    from training.evaluation.shift_matrix import hat_functions
    from training.learning.line_of_sight import (
        LineOfSightProjection,
        bessel_projection,
        projected_error,
        relative_errors,
    )

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
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.train import fit_normalisation, fit_output, train_network

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
