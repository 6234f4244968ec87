"""``cosmicnet validate`` and ``cosmicnet benchmark`` end to end at toy size."""

from __future__ import annotations

import json

import pytest
from helpers import ROOT

from training.cli import main


@pytest.mark.slow
def test_validate_with_toy_networks_writes_summary_and_figures(smoke_networks, tmp_path):
    import shutil

    from cosmicnet_cobaya.networks.network_set import read_metadata

    assert (smoke_networks / "training_history.png").stat().st_size > 10_000  # cosmicnet train
    networks = shutil.copytree(smoke_networks, tmp_path / "nets")
    out = tmp_path / "validation"
    argv = ["validate", "--networks", str(networks), "--n", "2", "--non-linear", "none"]
    assert main([*argv, "--out", str(out), "--no-progress", "--record"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    recorded = read_metadata(networks).provenance["accuracy"]["none"]
    assert recorded == summary["target_report"]
    assert recorded["meets_targets"] is False  # toy networks
    assert summary["n_cosmologies"] == 2 and len(summary["points"]) == 2
    for name in ("tt", "te", "ee", "pp"):
        assert summary["max_abs_error_l30_2500"][name]["max"] > 0
    assert 0.0 <= summary["tt_fraction_within_0.3pct_l30_2500"] <= 1.0
    for figure in ("sources.png", "sources_reionization.png", "spectra_errors.png"):
        assert figure in summary["figures"]
        assert (out / figure).stat().st_size > 10_000


@pytest.mark.slow
def test_validate_with_exact_sources_finds_no_error(smoke_networks, tmp_path, packages_path):
    """Exact CLASS sources through the whole pipeline: zero error, zero shift."""
    out = tmp_path / "exact"
    argv = ["validate", "--networks", str(smoke_networks), "--sources", "class", "--n", "1"]
    argv += ["--l-max", "2508", "--non-linear", "none", "--fisher-points", "1"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["max_abs_error_l30_2500"]["tt"]["max"] == 0.0
    assert summary["delta_chi2"]["max"] == 0.0
    for measure in ("max_abs_error_in_planck_sigma", "max_abs_error_in_per_l_planck_sigma"):
        assert summary[measure]["tt"]["max"] == 0.0
    shifts = summary["fisher_shifts"]["best_fit"]["shifts"]
    assert set(shifts) == {"omega_b", "omega_cdm", "H0", "logA", "n_s", "tau_reio", "A_planck"}
    assert summary["max_abs_shift_in_sigma"] == 0.0
    assert summary["target_report"]["meets_targets"] is True
    assert (out / "spectra_planck_units.png").is_file()
    assert (out / "spectra_planck_units_per_l.png").is_file()


@pytest.mark.slow
def test_benchmark_writes_table(smoke_networks, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["benchmark", "--networks", str(smoke_networks), "--n", "1", "--threads", "1"]
    assert main([*argv, "--non-linear", "none", "--out", str(out)]) == 0
    results = json.loads((out / "benchmark.json").read_text())
    assert list(results["modes"]) == ["none"]
    row = results["modes"]["none"]["1"]
    for step in ("perturbations", "whole", "primordial"):
        assert row[step]["class_median_s"] > 0 and row[step]["network_median_s"] > 0
        assert row[step]["speedup"] == pytest.approx(
            row[step]["class_median_s"] / row[step]["network_median_s"]
        )
    # The primordial-only step took ClassNet's fast path, and the steps were recorded.
    assert all(point["primordial_fast_path"] for point in row["raw"]["network"])
    assert "transfer" in row["network_steps_median_s"]
    assert "speed-up" in capsys.readouterr().out


def test_primordial_option_is_parsed_and_checked():
    from training.commands.validate import parse_primordial

    parsed = parse_primordial(["alpha_s=-0.01", "k_pivot=0.01"])
    assert parsed == {"alpha_s": -0.01, "k_pivot": 0.01}
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        parse_primordial(["alpha_s"])
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        parse_primordial(["=0.1"])


def test_fisher_points_are_the_best_fit_then_test_or_chain_points(tmp_path):
    import numpy as np

    from cosmicnet_cobaya.planck import BEST_FIT
    from training.evaluation.validate import fisher_points

    names = ("omega_b", "omega_cdm", "H0", "logA", "n_s", "tau_reio")
    tests = [{name: BEST_FIT[name] * (1 + 0.01 * i) for name in names} for i in range(4)]
    chosen = fisher_points(tests, 3)
    assert list(chosen) == ["best_fit", "test_0", "test_1"]
    assert chosen["test_1"] == tests[1]
    assert fisher_points(tests, 0) == {}

    sigma = {"omega_b": 1.5e-4, "H0": 0.6}
    covmat = tmp_path / "lcdm.covmat"
    np.savetxt(covmat, np.diag([s**2 for s in sigma.values()]), header=" ".join(sigma))
    chain = fisher_points(tests, 401, covmat, seed=5)
    assert len(chain) == 401 and "chain_399" in chain
    draws = np.array([[p[n] for n in names] for label, p in chain.items() if label != "best_fit"])
    for column, name in enumerate(names):
        spread = draws[:, column].std()
        if name in sigma:
            assert spread == pytest.approx(sigma[name], rel=0.15)
            assert draws[:, column].mean() == pytest.approx(BEST_FIT[name], abs=3 * spread / 20)
        else:
            assert np.all(draws[:, column] == BEST_FIT[name])

    # drawn one by one, as a single batch of 400 would be (seeds keep their points)
    batch = np.random.default_rng(5).multivariate_normal(
        [BEST_FIT[name] for name in sigma], np.diag([s**2 for s in sigma.values()]), size=400
    )
    assert np.array_equal(draws[:, [names.index(name) for name in sigma]], batch)

    # a domain keeps the draws that lie inside, in order, and replaces the others
    low, high = BEST_FIT["omega_b"] - 1.5e-4, BEST_FIT["omega_b"] + 1.5e-4
    inside = fisher_points(tests, 41, covmat, seed=5, domain={"omega_b": [low, high], "w": [0, 1]})
    assert len(inside) == 41
    assert all(low <= p["omega_b"] <= high for p in inside.values())
    kept = [p for label, p in chain.items() if label != "best_fit" and low <= p["omega_b"] <= high]
    assert [p for label, p in inside.items() if label != "best_fit"] == kept[:40]
    with pytest.raises(ValueError, match="outside the domain"):
        fisher_points(tests, 3, covmat, seed=5, domain={"H0": [0, 1]})
    # so does a linear constraint of the set (here omega_b + H0 / 1e4 below its median)
    from cosmicnet_cobaya.networks.domain import LinearConstraint

    bound = BEST_FIT["omega_b"] + BEST_FIT["H0"] / 1e4
    below = LinearConstraint((("omega_b", 1.0), ("H0", 1e-4)), high=bound)
    constrained = fisher_points(tests, 41, covmat, seed=5, constraints=[below])
    assert len(constrained) == 41
    assert all(below.holds(p) for p in constrained.values())
    kept = [p for label, p in chain.items() if label != "best_fit" and below.holds(p)]
    assert [p for label, p in constrained.items() if label != "best_fit"] == kept[:40]

    np.savetxt(covmat, np.eye(1), header="Omega_k")
    with pytest.raises(ValueError, match="not among the Fisher parameters"):
        fisher_points(tests, 2, covmat)
    covmat.write_text("1 0\n0 1\n")
    with pytest.raises(ValueError, match="starts with"):
        fisher_points(tests, 2, covmat)


@pytest.mark.slow
def test_a_point_class_fails_on_is_recorded_and_counted_against_the_set():
    """Validation goes on past a CLASS failure, and the failure counts as a miss."""
    from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS
    from cosmicnet_cobaya.sources import ClassSourceProvider
    from training.evaluation.pairs import ValidationSettings
    from training.evaluation.validate import run_validation, target_report

    settings = ValidationSettings(extra_args=dict(LCDM_EXTRA_ARGS), l_max=600, non_linear="none")
    good = {name: BEST_FIT[name] for name in ("omega_b", "omega_cdm", "H0", "tau_reio")}
    bad = {**good, "omega_cdm": -0.5}
    summary = run_validation(ClassSourceProvider(), settings, [bad, good], None, progress=False)
    assert summary["n_cosmologies"] == 2 and summary["n_failed"] == 1
    assert summary["failed"][0]["point"]["omega_cdm"] == -0.5 and summary["failed"][0]["error"]
    assert len(summary["points"]) == 1
    assert summary["max_abs_error_l30_2500"]["tt"]["max"] == 0.0  # exact sources
    assert summary["tt_fraction_within_0.3pct_l30_2500"] == 0.5
    report = target_report(summary)
    assert report["n_failed"] == 1 and report["meets_targets"] is False
    # every point failing still gives a summary, and a report that fails
    summary = run_validation(ClassSourceProvider(), settings, [bad], None, progress=False)
    assert summary["n_failed"] == 1 and summary["tt_fraction_within_0.3pct_l30_2500"] == 0.0
    assert target_report(summary)["meets_targets"] is False


def test_fisher_covariance_refuses_parameters_without_a_step(tmp_path):
    from training.evaluation.fisher_covmat import fisher_covariance

    with pytest.raises(ValueError, match=r"no Fisher step for \['Omega_k'\]"):
        fisher_covariance(tmp_path, varied=("omega_b", "Omega_k"))


def test_covmat_command_takes_a_family_config():
    from training.commands.covmat import _family

    family = _family(ROOT / "configs" / "w0wa_mnu.yaml")
    assert family["varied"][-3:] == ("w0_fld", "wa_fld", "m_ncdm")
    assert family["extra_args"]["Omega_Lambda"] == 0
    assert _family(None) == {}


def test_drawn_points_meet_the_domain_constraints():
    """Fresh points for validate --n and benchmark honour w0 + wa <= -0.1; without
    constraints they are the first hypercube, as before."""
    from scipy.stats import qmc

    from cosmicnet_cobaya.networks.domain import LinearConstraint
    from training.evaluation.pairs import draw_points

    domain = {"w0_fld": [-1.4, -0.3], "wa_fld": [-3.0, 1.0]}
    plain = draw_points(domain, 20, seed=3)
    unit = qmc.LatinHypercube(d=2, seed=3).random(20)
    scaled = qmc.scale(unit, [-1.4, -3.0], [-0.3, 1.0])
    assert [[p["w0_fld"], p["wa_fld"]] for p in plain] == scaled.tolist()
    early = LinearConstraint((("w0_fld", 1.0), ("wa_fld", 1.0)), high=-0.1)
    assert not all(early.holds(p) for p in plain)
    kept = draw_points(domain, 20, seed=3, constraints=[early])
    assert len(kept) == 20 and all(early.holds(p) for p in kept)
    assert kept[:3] == [p for p in plain if early.holds(p)][:3]
    impossible = LinearConstraint((("w0_fld", 1.0),), low=0.0)
    with pytest.raises(ValueError, match="hypercubes gave 0 of 2 points"):
        draw_points(domain, 2, seed=3, constraints=[impossible])
