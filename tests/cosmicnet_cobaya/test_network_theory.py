"""Smoke data -> toy networks -> ClassNet with ``sources: network`` (slow: CLASS + training)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import ROOT

SMOKE = ROOT / "configs" / "smoke.yaml"
POINT = {"omega_b": 0.02242, "omega_cdm": 0.11933, "H0": 67.66, "tau_reio": 0.0561}


def _model(theory: dict):
    from cobaya.model import get_model

    extra = {k: v for k, v in yaml.safe_load(SMOKE.read_text())["extra_args"].items()}
    for key in ("output", "lensing"):
        extra.pop(key)
    extra["non_linear"] = "none"
    info = {
        "params": {**POINT, "A_s": 2.1e-9, "n_s": 0.965},
        "likelihood": {"one": None},
        "theory": {"cosmicnet_cobaya.ClassNet": {"extra_args": extra, **theory}},
    }
    model = get_model(info)
    model.add_requirements({"Cl": {"tt": 500, "ee": 500}})
    return model


@pytest.mark.slow
def test_classnet_runs_with_network_sources(smoke_networks):
    model = _model({"sources": "network", "networks": str(smoke_networks)})
    assert np.isfinite(model.logposterior({}).logpost)
    cls = model.provider.get_Cl(ell_factor=False)
    theory = model.theory["cosmicnet_cobaya.ClassNet"]
    timings = theory.classy.source_provider.last_timings
    model.close()
    for name in ("tt", "ee"):
        assert cls[name].shape[0] >= 501
        assert np.all(np.isfinite(cls[name][2:501]))
    assert timings["forward"] > 0.0 and timings["total"] >= timings["forward"]


@pytest.mark.slow
def test_classnet_names_missing_sources(smoke_networks):
    from cobaya.log import LoggedError

    model = _model({"sources": "network", "networks": str(smoke_networks)})
    model.add_requirements({"Pk_interpolator": {"z": [0.0], "k_max": 0.1, "nonlinear": False}})
    with pytest.raises(LoggedError, match="no network for the sources"):
        model.logposterior({})
    model.close()


def test_classnet_refuses_missing_network_set(tmp_path, monkeypatch):
    from cobaya.log import LoggedError

    import cosmicnet_cobaya.networks.shipped as shipped

    with pytest.raises(LoggedError, match="neither a shipped set"):
        _model({"sources": "network", "networks": str(tmp_path / "none")})
    monkeypatch.setattr(shipped, "SHIPPED_ROOT", tmp_path / "not_shipped")
    with pytest.raises(LoggedError, match="no network set is shipped"):
        _model({"sources": "network", "networks": None})


@pytest.mark.slow
def test_features_are_shared_between_training_and_theory():
    """Training reads stored features; the theory recomputes them with the same function."""
    import cosmicnet_cobaya.networks.network_set as network_set
    import cosmicnet_cobaya.networks.provider as provider
    import training.learning.batches as batches
    from cosmicnet_cobaya import features

    assert provider.compute_features is features.compute_features
    assert provider.k_bases is features.k_bases is batches.k_bases
    assert network_set.assemble_inputs is batches.assemble_inputs
    assert network_set.rows_in_range is batches.rows_in_range


def _model_at(theory_name: str, options: dict, point: dict, primordial: dict | None = None):
    from cobaya.model import get_model

    extra = dict(yaml.safe_load(SMOKE.read_text())["extra_args"])
    for key in ("output", "lensing"):
        extra.pop(key)
    extra["non_linear"] = "none"
    params = {**point, "A_s": 2.1e-9, "n_s": 0.965, **(primordial or {})}
    if theory_name != "classy":
        params["cosmicnet_served"] = None
    info = {
        "params": params,
        "likelihood": {"one": None},
        "theory": {theory_name: {"extra_args": extra, **options}},
    }
    model = get_model(info)
    model.add_requirements({"Cl": {"tt": 500, "ee": 500}})
    return model


def _served_and_cls(model):
    result = model.logposterior({})
    served = dict(zip(model.parameterization.derived_params(), result.derived, strict=True))
    cls = model.provider.get_Cl(ell_factor=False) if np.isfinite(result.logpost) else None
    model.close()
    return result.logpost, served.get("cosmicnet_served"), cls


@pytest.mark.slow
def test_domain_guard_fallback_reject_force(smoke_networks):
    network = {"sources": "network", "networks": str(smoke_networks)}
    outside = {**POINT, "H0": 75.0}
    _, served_inside, _ = _served_and_cls(_model_at("cosmicnet_cobaya.ClassNet", network, POINT))
    assert served_inside == 1.0
    logpost, served, cls = _served_and_cls(_model_at("cosmicnet_cobaya.ClassNet", network, outside))
    _, _, reference = _served_and_cls(_model_at("classy", {}, outside))
    assert served == 0.0
    for name in ("tt", "ee"):
        np.testing.assert_array_equal(cls[name], reference[name])
    rejecting = {**network, "out_of_domain": "reject"}
    logpost, _, _ = _served_and_cls(_model_at("cosmicnet_cobaya.ClassNet", rejecting, outside))
    assert logpost == -np.inf
    forcing = {**network, "out_of_domain": "force"}
    _, served, _ = _served_and_cls(_model_at("cosmicnet_cobaya.ClassNet", forcing, outside))
    assert served == 1.0
    # A CLASS setting the networks were not trained with is outside the domain too.
    other_mass = _model_at("cosmicnet_cobaya.ClassNet", network, POINT)
    other_mass.theory["cosmicnet_cobaya.ClassNet"].extra_args["m_ncdm"] = 0.1
    _, served, _ = _served_and_cls(other_mass)
    assert served == 0.0


@pytest.mark.slow
def test_select_ranks_candidates_by_loss_then_cl_error(smoke_data, tmp_path):
    import json

    from training.cli import main

    out = tmp_path / "selected"
    argv = ["select", str(SMOKE), "--data", str(smoke_data), "--out", str(out), "--network", "t1"]
    assert main([*argv, "--candidates", "2", "--keep", "2", "--epochs", "1", "--no-progress"]) == 0
    entry = json.loads((out / "metadata.json").read_text())["networks"]["t1"]
    selection = entry["selection"]
    # configs/smoke.yaml: 4 training and 2 validation cosmologies.
    assert entry["architecture"]["training_cosmologies"] == 4
    assert entry["architecture"]["validation_cosmologies"] == 2
    candidates = selection["candidates"]
    assert len(candidates) == 2
    ranked = [c for c in candidates if "cl_error" in c]
    assert len(ranked) == 2
    best = min(ranked, key=lambda c: c["cl_error"])
    assert selection["chosen"] == best["candidate"]
    assert (out / "t1.keras").is_file()


@pytest.mark.slow
def test_networks_serve_other_primordial_spectra(smoke_networks):
    """Reuse: the same networks with a running index, another pivot and tilt.

    The sources do not depend on the primordial spectrum, so ClassNet's C_l
    errors against full CLASS must stay what they are for the plain model.
    """
    from cosmicnet_cobaya.hook.bridge import read_sources

    network = {"sources": "network", "networks": str(smoke_networks)}
    cases = {
        "plain": {},
        "running": {"alpha_s": -0.02},
        "pivot_tilt_running": {"k_pivot": 0.01, "n_s": 0.94, "alpha_s": 0.015},
    }
    ell = slice(30, 501)
    errors, sources = {}, {}
    for label, primordial in cases.items():
        model = _model_at("cosmicnet_cobaya.ClassNet", network, POINT, primordial)
        result = model.logposterior({})
        theory = model.theory["cosmicnet_cobaya.ClassNet"]
        sources[label] = read_sources(theory.classy.cosmo)[2]["t0"]
        cls = model.provider.get_Cl(ell_factor=False)
        model.close()
        _, _, reference = _served_and_cls(_model_at("classy", {}, POINT, primordial))
        assert np.isfinite(result.logpost)
        errors[label] = {
            name: float(np.sqrt(np.mean((cls[name][ell] / reference[name][ell] - 1.0) ** 2)))
            for name in ("tt", "ee")
        }
    # Same sources whatever the primordial spectrum ...
    np.testing.assert_array_equal(sources["running"], sources["plain"])
    np.testing.assert_array_equal(sources["pivot_tilt_running"], sources["plain"])
    # ... and hence C_l errors of the same size (toy networks: large, but equal).
    for label in ("running", "pivot_tilt_running"):
        for name in ("tt", "ee"):
            assert errors[label][name] == pytest.approx(errors["plain"][name], rel=0.25), (
                label,
                name,
                errors,
            )
