"""The matter-power comparison's bookkeeping and the shipped set's P(k) and sigma8."""

from __future__ import annotations

import numpy as np
import pytest

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.networks.accuracy import AccuracyReport
from training.evaluation.matter_power import (
    PLANCK_SIGMA8,
    MatterSettings,
    compare_point,
    summarise_matter,
)


def _products(scale: float, sigma8: float) -> dict:
    pk = np.ones((4, 5))
    return {"pk_lin": pk * scale, "pk_nl": pk * scale**2, "sigma8": sigma8, "S8": sigma8}


def test_point_errors_are_relative_and_in_planck_units():
    reference = _products(1.0, 0.8)
    other = _products(1.002, 0.8 + PLANCK_SIGMA8[1] / 10)
    record = compare_point(reference, other)
    assert record["max_abs_pk_lin"] == pytest.approx(2e-3)
    assert record["max_abs_pk_nl"] == pytest.approx(1.002**2 - 1)
    assert record["sigma8_in_planck_sigma"] == pytest.approx(0.1)
    assert record["sigma8_rel_error"] == pytest.approx(PLANCK_SIGMA8[1] / 8)


def test_summary_counts_failures_against_the_set_and_judges_targets():
    settings = MatterSettings(extra_args={})
    good = compare_point(_products(1.0, 0.8), _products(1.001, 0.8001))
    bad = compare_point(_products(1.0, 0.8), _products(1.01, 0.81))
    failed = [{"point": {"H0": 60.0}, "error": "hmcode: x > x_max"}]
    summary = summarise_matter([good, good, bad], failed, settings)
    assert summary["n_cosmologies"] == 4 and summary["n_failed"] == 1
    assert summary["pk_lin_fraction_within_0.5pct"] == 0.5  # 2 of 4: failures count
    assert summary["sigma8_max_abs_rel_error"] == pytest.approx(0.0125)
    assert not summary["meets_targets"]
    assert "errors" not in summary["points"][0]
    assert summarise_matter([good] * 3, [], settings)["meets_targets"] is True
    text = AccuracyReport.from_dict(summary).describe()
    assert "linear P(k, z) within 0.5% for 50% of them (target >= 95%: MISSED)" in text


def test_class_settings_ask_for_the_grid():
    settings = MatterSettings(extra_args={"N_ur": 2.0328}, primordial={"n_s": 0.96})
    inputs = settings.class_settings({"logA": 3.0, "H0": 67.0})
    assert inputs["output"] == "mPk" and inputs["z_max_pk"] == 2.0
    assert inputs["P_k_max_1/Mpc"] >= 1.0 and inputs["A_s"] == pytest.approx(1e-10 * np.exp(3.0))
    assert inputs["n_s"] == 0.96 and inputs["N_ur"] == 2.0328


@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_NETWORKS / "metadata.json").is_file(), reason="no shipped set")
def test_shipped_set_gives_class_linear_power_and_sigma8():
    """At the Planck best fit (not a training point): P_lin(k, z) within 0.05 %, sigma8
    within 1e-4, up to the largest P_k_max the set serves."""
    from cosmicnet_cobaya.hook.bridge import classy
    from cosmicnet_cobaya.hooked_class import HookedClass
    from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
    from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS

    settings = MatterSettings(extra_args=dict(LCDM_EXTRA_ARGS), k=np.geomspace(1e-4, 5.0, 40))
    settings.primordial = {"A_s": 2.1e-9, "n_s": BEST_FIT["n_s"]}
    point = {name: BEST_FIT[name] for name in ("omega_b", "omega_cdm", "H0", "tau_reio")}
    inputs = {**settings.class_settings(point), "compute damping scale": "yes"}
    reference, hooked = classy.Class(), HookedClass()
    hooked.source_provider = NetworkSourceProvider(DEFAULT_NETWORKS)
    hooked.on_decline = "reject"
    for cosmo in (reference, hooked):
        cosmo.set(inputs)
        cosmo.compute()
    assert hooked.last_served
    for z in settings.redshifts:
        ratio = [hooked.pk_lin(k, z) / reference.pk_lin(k, z) for k in settings.k]
        assert np.max(np.abs(np.array(ratio) - 1.0)) < 5e-4, z
    assert abs(hooked.sigma8() / reference.sigma8() - 1.0) < 1e-4
    for cosmo in (reference, hooked):
        cosmo.struct_cleanup()
