"""``cosmicnet compare-chains`` on synthetic Cobaya-format chains, and the MCMC inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import ROOT

from training.cli import main


def _write_chain(root: Path, means: dict[str, float], sigmas: dict[str, float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4000
    names = list(means)
    columns = [np.ones(n), rng.random(n)]  # weight, minuslogpost
    columns += [means[name] + sigmas[name] * rng.standard_normal(n) for name in names]
    header = "# " + " ".join(["weight", "minuslogpost", *names])
    np.savetxt(f"{root}.1.txt", np.column_stack(columns), header=header[2:], comments="# ")
    (root.parent / f"{root.name}.paramnames").write_text(
        "\n".join(f"{name}\t{name}" for name in names) + "\n"
    )


def test_compare_chains_recovers_known_shifts(tmp_path):
    means = {"omega_b": 0.0224, "H0": 67.3}
    sigmas = {"omega_b": 1.5e-4, "H0": 0.6}
    _write_chain(tmp_path / "a", {"omega_b": 0.0224 + 0.5 * 1.5e-4, "H0": 67.3}, sigmas, 1)
    _write_chain(tmp_path / "b", means, sigmas, 2)
    out = tmp_path / "compare"
    argv = ["compare-chains", str(tmp_path / "a"), str(tmp_path / "b"), "--burn-in", "0"]
    assert main([*argv, "--out", str(out)]) == 0
    record = json.loads((out / "shifts.json").read_text())
    assert record["shifts"]["omega_b"]["mean_shift_in_sigma"] == pytest.approx(0.5, abs=0.06)
    assert record["shifts"]["H0"]["mean_shift_in_sigma"] == pytest.approx(0.0, abs=0.06)
    assert record["shifts"]["H0"]["sigma_ratio"] == pytest.approx(1.0, abs=0.05)
    assert (out / "triangle.png").stat().st_size > 10_000


def test_missing_chain_is_a_clear_error(tmp_path):
    argv = ["compare-chains", str(tmp_path / "none"), str(tmp_path / "none2")]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2


def test_mcmc_inputs_differ_only_in_the_theory():
    classnet = yaml.safe_load((ROOT / "configs" / "mcmc_classnet.yaml").read_text())
    classy = yaml.safe_load((ROOT / "configs" / "mcmc_classy.yaml").read_text())
    for key in ("likelihood", "prior", "sampler"):
        assert classnet[key] == classy[key]
    served = classnet["params"].pop("cosmicnet_served")
    assert "cosmicnet_served" not in classy["params"] and served is not None
    assert classnet["params"] == classy["params"]
    net_theory = classnet["theory"]["cosmicnet_cobaya.ClassNet"]
    assert net_theory["extra_args"] == classy["theory"]["classy"]["extra_args"]


def test_mcmc_input_builds_a_cobaya_model(packages_path):
    from cobaya.model import get_model

    info = yaml.safe_load((ROOT / "configs" / "mcmc_classy.yaml").read_text())
    info.pop("sampler")
    info.pop("output")
    info["packages_path"] = str(packages_path)
    model = get_model(info)
    assert "planck_2018_highl_plik.TTTEEE_lite_native" in model.likelihood
    assert "tau_reio_lowE" in model.prior.external
    model.close()


def test_w0wa_example_proposal_covers_its_sampled_parameters():
    """The w0wa example's covmat (``cosmicnet covmat --config ... --bao``) exists,
    names exactly the sampled parameters and is positive definite."""
    from training.evaluation.covmat import read_covmat

    info = yaml.safe_load((ROOT / "configs" / "mcmc_w0wa_classnet.yaml").read_text())
    names, matrix = read_covmat(ROOT / info["sampler"]["mcmc"]["covmat"])
    sampled = {name for name, param in info["params"].items() if "prior" in (param or {})}
    assert set(names) == sampled
    assert np.allclose(matrix, matrix.T) and np.all(np.linalg.eigvalsh(matrix) > 0)


@pytest.mark.slow
def test_w0wa_example_runs_and_says_which_set_serves_it(caplog):
    """The w0wa example config builds a model; the prior keeps w0 + wa <= -0.1. With
    `networks: null` its points fall back to CLASS unless a non-experimental w0wa set
    is shipped; named, the shipped experimental set serves them and says it is one."""
    import logging

    from cobaya.model import get_model

    from cosmicnet_cobaya.networks.network_set import read_metadata
    from cosmicnet_cobaya.networks.shipped import shipped_sets

    info = yaml.safe_load((ROOT / "configs" / "mcmc_w0wa_classnet.yaml").read_text())
    for key in ("sampler", "output"):
        info.pop(key)
    info["likelihood"] = {"one": None}  # the theory and priors only
    for name in ("sigma8",):
        info["params"].pop(name)
    shipped = shipped_sets().get("w0wa_mnu")
    experimental = shipped is not None and read_metadata(shipped).provenance.get("experimental")
    point = {"logA": 3.05, "n_s": 0.965, "omega_b": 0.0224, "omega_cdm": 0.12, "H0": 66.0,
             "tau_reio": 0.055, "w0_fld": -0.8, "wa_fld": -0.6, "m_ncdm": 0.1}  # fmt: skip
    theory = info["theory"]["cosmicnet_cobaya.ClassNet"]
    for networks in (None, "w0wa_mnu") if shipped else (None,):
        theory["networks"] = networks
        caplog.clear()
        with caplog.at_level(logging.INFO):
            model = get_model(info)
        model.add_requirements({"Cl": {"tt": 1000}})
        served = shipped is not None and (networks is not None or not experimental)
        assert ("its points fall back to CLASS" in caplog.text) is (networks is None and not served)
        assert ("The network set is experimental" in caplog.text) is bool(served and experimental)
        assert model.logprior({**point, "w0_fld": -0.3, "wa_fld": 0.5}) == -np.inf
        logpost = model.logposterior(point)
        assert np.isfinite(logpost.logpost)
        derived = list(model.parameterization.derived_params())
        assert logpost.derived[derived.index("cosmicnet_served")] == float(served)
        model.close()
