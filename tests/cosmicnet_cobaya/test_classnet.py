"""ClassNet with ``sources: class`` against Cobaya's classy theory."""

from __future__ import annotations

import numpy as np
import pytest
from cobaya.log import LoggedError
from cobaya.model import get_model

from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS, model_info

L_MAX = 2508
CL_REQUEST = {"tt": L_MAX, "te": L_MAX, "ee": L_MAX, "pp": L_MAX}
DERIVED = ["sigma8", "rs_drag", "theta_s_100", "z_reio"]

# Points inside and around the Planck posterior, plus a running index.
POINTS = [
    {"omega_b": 0.02242, "omega_cdm": 0.1193, "H0": 67.7, "tau_reio": 0.056},
    {"omega_b": 0.02300, "omega_cdm": 0.1150, "H0": 70.0, "tau_reio": 0.080},
    {"omega_b": 0.02180, "omega_cdm": 0.1250, "H0": 64.0, "tau_reio": 0.040},
]


def _sampled_info(theory: dict) -> dict:
    info = model_info(theory, BEST_FIT)
    for name in ("omega_b", "omega_cdm", "H0", "tau_reio"):
        info["params"][name] = {"prior": {"min": 0.5 * BEST_FIT[name], "max": 2 * BEST_FIT[name]}}
    for name in DERIVED:
        info["params"][name] = None
    return info


def _spectra_and_derived(theory: dict, points: list[dict]) -> list[tuple[dict, dict]]:
    model = get_model(_sampled_info(theory))
    model.add_requirements({"Cl": CL_REQUEST})
    results = []
    for point in points:
        logpost = model.logposterior(point)
        assert np.isfinite(logpost.logpost)
        derived = dict(zip(model.parameterization.derived_params(), logpost.derived, strict=True))
        results.append((model.provider.get_Cl(ell_factor=False, units="1"), derived))
    model.close()
    return results


@pytest.mark.slow
@pytest.mark.parametrize(
    ("non_linear", "n_points"), [("none", 3), ("hmcode", 2)], ids=["linear", "hmcode"]
)
def test_class_sources_match_classy(non_linear, n_points):
    extra_args = {**LCDM_EXTRA_ARGS, "non_linear": non_linear}
    reference = _spectra_and_derived({"classy": {"extra_args": extra_args}}, POINTS[:n_points])
    hooked = _spectra_and_derived(
        # HMcode at every time, as classy: the hook alone must change nothing.
        {
            "cosmicnet_cobaya.ClassNet": {
                "extra_args": extra_args,
                "sources": "class",
                "hmcode_stride": 1,
            }
        },
        POINTS[:n_points],
    )
    for (cl_ref, derived_ref), (cl_net, derived_net) in zip(reference, hooked, strict=True):
        for name in CL_REQUEST:
            np.testing.assert_allclose(cl_net[name][2:], cl_ref[name][2:], rtol=1e-6, atol=0)
        for name in DERIVED:
            assert derived_net[name] == pytest.approx(derived_ref[name], rel=1e-10)


@pytest.mark.slow
def test_plik_lite_chi2_matches_classy(packages_path):
    extra_args = {**LCDM_EXTRA_ARGS, "non_linear": "hmcode"}
    chi2 = {}
    for label, theory in {
        "classy": {"classy": {"extra_args": extra_args}},
        "ClassNet": {"cosmicnet_cobaya.ClassNet": {"extra_args": extra_args, "sources": "class"}},
    }.items():
        model = get_model(model_info(theory, BEST_FIT, packages_path))
        chi2[label] = -2 * float(sum(model.loglikes({})[0]))
        model.close()
    assert 500 < chi2["classy"] < 700
    assert chi2["ClassNet"] == pytest.approx(chi2["classy"], abs=1e-3)


@pytest.mark.slow
def test_failed_point_is_rejected_and_next_point_works():
    info = _sampled_info(
        {"cosmicnet_cobaya.ClassNet": {"extra_args": LCDM_EXTRA_ARGS, "sources": "class"}}
    )
    info["params"]["tau_reio"] = {"prior": {"min": 0.01, "max": 10}}
    model = get_model(info)
    model.add_requirements({"Cl": {"tt": 500}})
    # CLASS cannot reach an optical depth of 5: thermodynamics fails.
    assert model.logposterior({**POINTS[0], "tau_reio": 5.0}).logpost == -np.inf
    good = model.logposterior(POINTS[0])
    assert np.isfinite(good.logpost)
    assert model.provider.get_Cl(ell_factor=False, units="1")["tt"][100] > 0
    model.close()


def test_unknown_sources_option_is_refused():
    info = model_info({"cosmicnet_cobaya.ClassNet": {"sources": "magic"}}, BEST_FIT)
    with pytest.raises(LoggedError, match="sources"):
        get_model(info)


def test_unknown_option_is_refused():
    info = model_info({"cosmicnet_cobaya.ClassNet": {"source": "class"}}, BEST_FIT)
    with pytest.raises(LoggedError, match="source"):
        get_model(info)
