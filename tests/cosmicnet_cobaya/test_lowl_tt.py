"""The offline low-l TT likelihood (two Gaussian bins)."""

from __future__ import annotations

import numpy as np
import pytest
from cobaya.log import LoggedError
from cobaya.model import get_model

from cosmicnet_cobaya.lowl_tt import LowlTTBins, find_data_folder


@pytest.fixture(scope="module")
def data_folder():
    folder = find_data_folder(None)
    if folder is None:
        pytest.skip("low-l TT bins not found: set COSMICNET_LOWL_TT_BINS")
    return folder


def test_bins_are_weighted_means_and_the_data_scores_zero(data_folder):
    likelihood = LowlTTBins({"data_folder": str(data_folder)})
    assert likelihood.lmin.tolist() == [2, 16] and likelihood.lmax.tolist() == [15, 29]
    assert np.allclose(likelihood.binned(np.full(30, 7.0)), 7.0)  # weights sum to one per bin
    cl = np.zeros(30)
    for lo, hi, value in zip(likelihood.lmin, likelihood.lmax, likelihood.data, strict=True):
        cl[lo : hi + 1] = value
    assert np.allclose(likelihood.binned(cl), likelihood.data)
    assert likelihood.get_requirements() == {"Cl": {"tt": 29}}


def test_missing_data_is_an_error_or_skipped_with_a_warning(tmp_path, caplog):
    with pytest.raises(LoggedError):
        LowlTTBins({"data_folder": str(tmp_path)})
    skipped = LowlTTBins({"data_folder": str(tmp_path), "missing": "skip"})
    assert skipped.get_requirements() == {} and skipped.logp() == 0.0
    assert "WITHOUT low-l TT" in caplog.text


@pytest.mark.slow
def test_likelihood_in_a_cobaya_model_at_the_best_fit(data_folder):
    """With classy at the Planck best fit the two bins give a chi2 of a few."""
    from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS

    params = {name: BEST_FIT[name] for name in ("omega_b", "omega_cdm", "H0", "n_s", "tau_reio")}
    info = {
        "theory": {"classy": {"extra_args": {**LCDM_EXTRA_ARGS, "non_linear": "none"}}},
        "likelihood": {"lowl": {"external": LowlTTBins, "data_folder": str(data_folder)}},
        "params": {**params, "A_s": 1e-10 * np.exp(BEST_FIT["logA"]), "A_planck": 1.0},
    }
    model = get_model(info)
    chi2 = -2.0 * float(np.sum(model.loglikes({}, return_derived=False)))
    assert 0.5 < chi2 < 10.0
