"""Family configs: parsing, clear errors before any CLASS call, seeding from cobaya."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from training.cli import main
from training.configuration.family import (
    ConfigError,
    load_config,
    parse_config,
    read_yaml,
)
from training.configuration.from_cobaya import family_from_cobaya


@pytest.fixture
def lcdm() -> dict:
    return read_yaml(ROOT / "configs" / "lcdm.yaml")


def test_lcdm_config_is_the_planck_box() -> None:
    config = load_config(ROOT / "configs" / "lcdm.yaml")
    assert config.param_names == ("omega_b", "omega_cdm", "H0", "tau_reio")
    box = {p.name: (p.low, p.high) for p in config.params}
    assert box["omega_b"] == pytest.approx((0.02242 - 5 * 0.00014, 0.02242 + 5 * 0.00014))
    assert box["H0"] == pytest.approx((67.66 - 2.1, 67.66 + 2.1))
    assert [(s.name, s.size) for s in config.sets] == [
        ("training", 10000),
        ("validation", 2000),
        ("selection", 100),
        ("test", 100),
    ]
    assert len({s.seed for s in config.sets}) == 4
    settings = config.class_settings()
    assert settings["l_max_scalars"] == 2508
    assert settings["m_ncdm"] == 0.06 and settings["N_ur"] == 2.0328
    assert settings["compute damping scale"] == "yes"
    from training.configuration.network_parsing import parse_networks_config

    networks = parse_networks_config(config.networks)
    assert networks.networks["t0"].tau_range == (0.0, 1.5)
    assert networks.networks["t0_late"].source == "t0"


def test_smoke_config_is_the_same_family_at_toy_size() -> None:
    smoke = load_config(ROOT / "configs" / "smoke.yaml")
    lcdm = load_config(ROOT / "configs" / "lcdm.yaml")
    assert smoke.params == lcdm.params
    assert sum(s.size for s in smoke.sets) <= 10


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(colour="red"), "unknown key"),
        (lambda c: c.pop("sets"), "missing key"),
        (lambda c: c["params"]["H0"].update(prior={"min": 70.0, "max": 70.0}), "empty domain"),
        (lambda c: c["params"]["H0"].update(prior={"min": 71.0, "max": 65.0}), "empty domain"),
        (lambda c: c["params"]["H0"].update(prior={"dist": "norm", "loc": 67, "scale": 0}), "> 0"),
        (lambda c: c["params"]["H0"].update(prior={"min": 60}), "missing key"),
        (lambda c: c["params"]["H0"].update(colour=1), "unknown key"),
        (lambda c: c["sets"]["training"].update(size=0), "size must be >= 1"),
        (lambda c: c["sets"]["training"].update(size=2.5), "must be an integer"),
        (lambda c: c["sets"]["test"].update(seed=1), "distinct seeds"),
        (lambda c: c["sets"]["test"].pop("seed"), "missing key"),
        (lambda c: c["sets"]["test"].update(box_fraction=0.0), "box_fraction must be in"),
        (lambda c: c["sets"]["test"].update(box_fraction=1.5), "box_fraction must be in"),
        (lambda c: c.update(targets=["t0", "t9"]), "unknown target"),
        (lambda c: c["extra_args"].update(output="tCl,pCl"), "target phi_plus_psi needs"),
        (lambda c: c["extra_args"].update(H0=67.0), "both varied"),
        (lambda c: c.update(l_max=1), "l_max must be >= 2"),
        (lambda c: c.update(k_grid={"density": 0.0}), "k_grid.density"),
        (lambda c: c.update(storage={"dtype": "float16"}), "storage.dtype"),
        (lambda c: c.update(params={}), "non-empty"),
        (lambda c: c.update(params={"A_s": {"prior": {"min": 1e-9, "max": 3e-9}}}), "no varied"),
    ],
)
def test_bad_configs_fail_clearly(lcdm: dict, edit, message: str) -> None:
    raw = copy.deepcopy(lcdm)
    edit(raw)
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_non_source_params_are_left_out(lcdm: dict) -> None:
    raw = copy.deepcopy(lcdm)
    raw["params"]["n_s"] = {"prior": {"min": 0.9, "max": 1.0}}
    raw["params"]["A_s"] = 2.1e-9
    config = parse_config(raw)
    assert "n_s" not in config.param_names
    assert "A_s" not in config.class_settings()


def test_bad_config_fails_before_any_class_call(tmp_path: Path, lcdm: dict, monkeypatch) -> None:
    from training.generation import kgrid, runner

    def no_class(*args, **kwargs):
        raise AssertionError("CLASS was called")

    monkeypatch.setattr(kgrid, "class_k_list", no_class)
    monkeypatch.setattr(runner, "prepare_family", no_class)
    raw = copy.deepcopy(lcdm)
    raw["params"]["tau_reio"]["prior"] = {"min": 0.1, "max": 0.05}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    assert main(["generate", str(path), "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_seed_family_from_cobaya_run(tmp_path: Path) -> None:
    run = {
        "theory": {"classy": {"extra_args": {"N_ncdm": 1, "m_ncdm": 0.06, "N_ur": 2.0328}}},
        "likelihood": {"planck_2018_lowl.TT": None},
        "params": {
            "logA": {"prior": {"min": 1.61, "max": 3.91}, "drop": True},
            "A_s": {"value": "lambda logA: 1e-10*np.exp(logA)"},
            "n_s": {"prior": {"min": 0.8, "max": 1.2}},
            "omega_b": {"prior": {"min": 0.005, "max": 0.1}},
            "omega_cdm": {"prior": {"dist": "norm", "loc": 0.12, "scale": 0.001}},
            "H0": {"prior": {"min": 60, "max": 75}, "ref": 67, "latex": "H_0"},
            "tau_reio": {"prior": {"min": 0.01, "max": 0.8}},
            "A_planck": {"prior": {"dist": "norm", "loc": 1, "scale": 0.0025}},
            "sigma8": {"latex": r"\sigma_8"},
            "YHe": 0.245,
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run, sort_keys=False))
    family = family_from_cobaya(path)
    config = parse_config(family)
    assert config.param_names == ("omega_b", "omega_cdm", "H0", "tau_reio")
    box = dict((p.name, (p.low, p.high)) for p in config.params)
    assert box["omega_cdm"] == pytest.approx((0.115, 0.125))
    settings = config.class_settings()
    assert settings["YHe"] == 0.245 and settings["m_ncdm"] == 0.06
    assert "A_planck" not in settings and "n_s" not in settings
    assert set(config.targets) == {"t0", "t1", "t2", "phi_plus_psi", "delta_m", "delta_cb"}
    written = tmp_path / "family.yaml"
    code = main(["generate", "--from-cobaya", str(path), "--write-config", str(written)])
    assert code == 0
    assert load_config(written).param_names == config.param_names


def test_a_set_with_a_box_fraction_samples_the_centre_of_the_box(lcdm: dict) -> None:
    """box_fraction 0.4 of a +-5 sigma box: a Latin hypercube of the central +-2 sigma."""
    import numpy as np

    from training.generation.sampling import latin_hypercube

    raw = copy.deepcopy(lcdm)
    raw["sets"]["core"] = {"size": 50, "seed": 9, "box_fraction": 0.4}
    config = parse_config(raw)
    core = next(spec for spec in config.sets if spec.name == "core")
    assert core.box_fraction == 0.4
    points = latin_hypercube(config, core)
    for column, param in enumerate(config.params):
        centre, half = (param.low + param.high) / 2, 0.4 * (param.high - param.low) / 2
        assert np.all(np.abs(points[:, column] - centre) <= half * (1 + 1e-12))
        # a Latin hypercube: one point in each of the 50 strata of the sub-box
        strata = np.floor((points[:, column] - centre + half) / (2 * half) * 50)
        assert sorted(strata.astype(int)) == list(range(50))
    training = next(spec for spec in config.sets if spec.name == "training")
    assert training.box_fraction == 1.0


def test_a_set_with_a_covmat_is_drawn_where_chains_go(lcdm: dict, tmp_path) -> None:
    """covmat: draws about the box centre with the covmat's covariance (degeneracies
    included), all inside the box, the same for the same seed; bad covmats fail clearly."""
    import numpy as np

    from training.generation.sampling import sample_set

    names = ["logA", "omega_b", "omega_cdm", "H0", "tau_reio"]
    sigma = np.array([0.014, 0.00015, 0.0012, 0.55, 0.007])
    correlation = np.eye(5)
    correlation[2, 3] = correlation[3, 2] = -0.9  # omega_cdm - H0
    matrix = correlation * np.outer(sigma, sigma)
    covmat = tmp_path / "chain.covmat"
    np.savetxt(covmat, matrix, header=" ".join(names), comments="# ")
    raw = copy.deepcopy(lcdm)
    raw["sets"]["posterior"] = {"size": 4000, "seed": 21, "covmat": str(covmat)}
    config = parse_config(raw)
    spec = next(spec for spec in config.sets if spec.name == "posterior")
    points = sample_set(config, spec)
    assert points.shape == (4000, len(config.params))
    np.testing.assert_array_equal(points, sample_set(config, spec))
    order = [names.index(name) for name in config.param_names]
    expected = matrix[np.ix_(order, order)]
    measured = np.cov(points, rowvar=False)
    np.testing.assert_allclose(np.sqrt(np.diag(measured)), np.sqrt(np.diag(expected)), rtol=0.05)
    i, j = config.param_names.index("omega_cdm"), config.param_names.index("H0")
    assert measured[i, j] / np.sqrt(measured[i, i] * measured[j, j]) == pytest.approx(
        -0.9, abs=0.02
    )
    centres = np.array([(p.low + p.high) / 2 for p in config.params])
    assert np.all(np.abs(points.mean(axis=0) - centres) < 0.05 * np.sqrt(np.diag(expected)))
    lows, highs = (
        np.array([p.low for p in config.params]),
        np.array([p.high for p in config.params]),
    )
    assert np.all((points >= lows) & (points <= highs))

    missing = tmp_path / "short.covmat"
    np.savetxt(missing, matrix[:2, :2], header="logA omega_b", comments="# ")
    raw["sets"]["posterior"]["covmat"] = str(missing)
    short = next(s for s in parse_config(raw).sets if s.name == "posterior")
    with pytest.raises(ConfigError, match=r"no row for \['omega_cdm', 'H0', 'tau_reio'\]"):
        sample_set(parse_config(raw), short)
    raw["sets"]["posterior"]["covmat"] = str(tmp_path / "nowhere.covmat")
    nowhere = next(s for s in parse_config(raw).sets if s.name == "posterior")
    with pytest.raises(ConfigError, match=r"nowhere\.covmat.*relative paths are read"):
        sample_set(parse_config(raw), nowhere)
    raw["sets"]["posterior"]["covmat"] = 3
    with pytest.raises(ConfigError, match="covmat must be the path of a Cobaya covmat file"):
        parse_config(raw)


def test_every_network_setting_has_exactly_one_parser():
    """The parser table and the NetworkConfig dataclass cannot drift apart."""
    from dataclasses import fields

    from training.configuration.network_parsing import FIELD_PARSERS
    from training.configuration.networks import NetworkConfig

    assert set(FIELD_PARSERS) == {item.name for item in fields(NetworkConfig)}


def test_constraints_are_parsed_and_no_drawn_point_breaks_them(lcdm: dict) -> None:
    """A linear constraint (here omega_b/omega_cdm scaled so that a third of the box
    breaks it): hypercubes are drawn in rounds until the set is full of allowed points."""
    import numpy as np

    from training.generation.sampling import latin_hypercube

    raw = copy.deepcopy(lcdm)
    raw["constraints"] = [{"coefficients": {"H0": 1.0, "tau_reio": 100.0}, "max": 73.0}]
    config = parse_config(raw)
    (constraint,) = config.constraints
    assert constraint.coefficients == (("H0", 1.0), ("tau_reio", 100.0))
    assert (constraint.low, constraint.high) == (None, 73.0)
    spec = next(s for s in config.sets if s.name == "test")
    points = latin_hypercube(config, spec)
    assert points.shape == (100, 4)
    combination = points[:, 2] + 100.0 * points[:, 3]
    assert np.all(combination <= 73.0) and combination.max() > 72.0
    np.testing.assert_array_equal(points, latin_hypercube(config, spec))  # deterministic
    for bad, message in (
        ([{"coefficients": {"w0_fld": 1}, "max": 0}], "must map varied parameters"),
        ([{"coefficients": {"H0": 1}}], "min, max or both"),
        ({"coefficients": {"H0": 1}}, "must be a list"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config({**raw, "constraints": bad})
