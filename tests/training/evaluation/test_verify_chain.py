"""``cosmicnet verify-chain``: importance reweighting of a ClassNet chain with full CLASS."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from training.cli import main
from training.evaluation.reweighting import normalised_weights, summarise_reweighting
from training.evaluation.verify_chain import TARGETS, NotAChainError, classy_info, read_chain

TOY_LIKELIHOOD = (
    "lambda _self: -0.5 * ((_self.provider.get_Cl(ell_factor=True, units='FIRASmuK2')"
    "['tt'][220] - 5750.0) / 50.0) ** 2"
)


@pytest.fixture(scope="module")
def exact_chain(tmp_path_factory):
    """Six accepted MCMC steps of ClassNet with CLASS's own sources (exact)."""
    from cobaya.run import run

    prefix = tmp_path_factory.mktemp("chain") / "exact"
    extra_args = {"N_ur": 2.0328, "N_ncdm": 1, "m_ncdm": 0.06, "non_linear": "none"}
    free = {"drop": True, "prior": {"min": 2.9, "max": 3.2}, "ref": 3.0448, "proposal": 0.01}
    info = {
        "output": str(prefix),
        "theory": {"cosmicnet_cobaya.ClassNet": {"sources": "class", "extra_args": extra_args}},
        "likelihood": {"toy_tt": {"external": TOY_LIKELIHOOD, "requires": {"Cl": {"tt": 300}}}},
        "params": {
            "logA": {**free, "latex": r"\log A"},
            "A_s": {"value": "lambda logA: 1e-10*np.exp(logA)"},
            **{"n_s": 0.966, "omega_b": 0.02238, "omega_cdm": 0.1201, "H0": 67.32},
            "tau_reio": {"prior": {"min": 0.03, "max": 0.08}, "ref": 0.0544, "proposal": 0.005},
            "sigma8": {"latex": r"\sigma_8"},
        },
        "sampler": {
            "mcmc": {
                "max_samples": 6,
                "burn_in": 0,
                "learn_proposal": False,
                "measure_speeds": False,
                "seed": 1,
            }
        },
    }
    run(info)
    return str(prefix)


def test_classy_input_replaces_classnet_and_keeps_the_rest(exact_chain):
    chain = read_chain(exact_chain, 0.0)
    assert chain.sampled == ("logA", "tau_reio") and "sigma8" in chain.derived
    info = classy_info(chain.info)
    assert list(info["theory"]) == ["classy"]
    assert info["theory"]["classy"]["extra_args"]["non_linear"] == "none"
    assert "sources" not in info["theory"]["classy"] and "toy_tt" in info["likelihood"]


@pytest.mark.slow
def test_exact_chain_reweights_to_itself_and_resumes(exact_chain, tmp_path, caplog):
    out = tmp_path / "verify"
    argv = ["verify-chain", exact_chain, "--n", "4", "--burn-in", "0", "--out", str(out)]
    assert main([*argv, "--workers", "2", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_points"] == 4 and summary["n_failed"] == 0
    assert summary["max_abs_mean_shift_sigma"] < 1e-4  # the chain stores 8 digits
    assert summary["ess_fraction"] > 0.999 and summary["verdict"] == "pass"
    assert abs(summary["log_posterior_difference"]["max"]) < 1e-4
    assert len((out / "points.jsonl").read_text().splitlines()) == 4
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--no-progress"]) == 0
    assert "0 of 4 points left" in caplog.text
    assert len((out / "points.jsonl").read_text().splitlines()) == 4
    other = main(["verify-chain", exact_chain, "--n", "3", "--burn-in", "0", "--out", str(out)])
    assert other == 2 and "other settings" in caplog.text


def test_a_folder_that_is_not_a_chain_is_refused(tmp_path, caplog):
    (tmp_path / "run.1.txt").write_text("# weight minuslogpost\n1 2\n")
    with pytest.raises(NotAChainError, match="is not a Cobaya chain"):
        read_chain(str(tmp_path / "run"), 0.3)
    assert main(["verify-chain", str(tmp_path / "run"), "--out", str(tmp_path / "v")]) == 2
    assert "is not a Cobaya chain" in caplog.text


def test_a_tilted_posterior_is_measured_with_its_error():
    """Weights exp(a x) on a unit Gaussian sample move the mean by a sigma."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=4000)
    summary = summarise_reweighting({"p": x}, 0.2 * x, {"p": 1.0}, TARGETS)
    shift = summary["parameters"]["p"]
    assert abs(shift["mean_shift_sigma"] - 0.2) < 4 * shift["mean_shift_error"]
    assert 0.003 < shift["mean_shift_error"] < 0.01  # 0.2 sqrt(2) / sqrt(4000)
    assert summary["verdict"] == "fail" and summary["max_abs_mean_shift_sigma"] > 0.1
    assert 0.9 < summary["ess_fraction"] < 1.0
    weights = normalised_weights(np.array([0.0, -np.inf, 0.0]))
    assert weights.tolist() == [1.5, 0.0, 1.5]
