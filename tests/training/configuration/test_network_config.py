"""The ``networks:`` block of a family config."""

from __future__ import annotations

import pytest
import yaml
from helpers import ROOT

from training.configuration.network_parsing import parse_networks_config
from training.configuration.networks import NetworkConfigError


def test_config_rejects_unknown_keys():
    from training.configuration.network_parsing import parse_networks_config
    from training.configuration.networks import NetworkConfigError

    with pytest.raises(NetworkConfigError, match="unknown key"):
        parse_networks_config({"t0": {"epoch": 3}})
    with pytest.raises(NetworkConfigError, match="unknown key"):
        parse_networks_config({"t0": {"search": {"ranges": {"depth": [1, 2]}}}})
    with pytest.raises(NetworkConfigError, match="unknown networks"):
        parse_networks_config({"train": ["t9"]})
    parsed = parse_networks_config({"t2": {"epochs": 2, "central_dense": [10, 20]}})
    assert parsed.networks["t2"].central_dense == (10, 20)
    assert parsed.networks["t0"].epochs == 15


def test_paper_architectures_have_paper_sizes():
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.models import build_model

    networks = parse_networks_config(None).networks
    counts = {
        name: build_model(networks[name], 568, 4, 5).count_params() for name in ("t0", "t1", "t2")
    }
    # Tables 2-4: 407K, 38K and 328K trainable parameters.
    assert counts["t0"] == pytest.approx(407e3, rel=0.01)
    assert counts["t1"] == pytest.approx(38e3, rel=0.03)
    assert counts["t2"] == pytest.approx(328e3, rel=0.01)


def test_tau_range_keys_are_validated():
    from training.configuration.network_parsing import parse_networks_config
    from training.configuration.networks import NetworkConfigError

    with pytest.raises(NetworkConfigError, match="tau_range"):
        parse_networks_config({"t0": {"tau_range": [2.0, 1.0]}})
    with pytest.raises(NetworkConfigError, match="learning_rate_decay"):
        parse_networks_config({"t0": {"learning_rate_decay": 1.5}})


def test_batching_and_weight_average_keys_are_validated():
    from training.configuration.network_parsing import parse_networks_config
    from training.configuration.networks import NetworkConfigError

    config = parse_networks_config(
        {"t0": {"cosmologies_per_batch": 4, "weight_average": 0.99}}
    ).networks["t0"]
    assert (config.cosmologies_per_batch, config.weight_average) == (4, 0.99)
    assert config.architecture()["weight_average"] == 0.99
    for bad in ({"cosmologies_per_batch": 0}, {"weight_average": 1.0}, {"weight_average": -0.1}):
        with pytest.raises(NetworkConfigError, match=next(iter(bad))):
            parse_networks_config({"t0": bad})
    bessel = parse_networks_config(
        {"t0_late": {"projected_loss_multipoles": [30, 60], "projected_loss_k_max": 0.05}}
    ).networks["t0_late"]
    assert bessel.projection.multipoles == (30, 60) and bessel.projection.k_max == 0.05
    for bad in (
        {"projected_loss_multipoles": [30.5]},
        {"projected_loss_multipoles": [1]},
        {"projected_loss_k_max": 0},
        {"projected_loss_spectrum": True},
        {"projected_loss_frequency_weight": 5.0},
        {"projected_loss_te_weight": 1.0},
        {"projected_loss_te_weight": -1.0},
        {"projected_loss_shift_weight": 1.0},
        {"projected_loss_shift_matrix": [1.0, 2.0]},
        {"projected_loss_polarisation": True},
        {"projected_loss_polarisation": "yes"},
        {"learning_rate_warmup_steps": -5},
    ):
        with pytest.raises(NetworkConfigError, match=next(iter(bad))):
            parse_networks_config({"t0_late": bad})
    te = parse_networks_config(
        {
            "t0": {
                "projected_loss_multipoles": [40, 100],
                "projected_loss_spectrum": True,
                "projected_loss_te_weight": 2,
                "learning_rate_warmup_steps": 75,
            }
        }
    ).networks["t0"]
    assert te.projection.te_weight == 2.0 and te.projection.rows == 4
    assert te.learning_rate_warmup_steps == 75
    shift = {
        "projected_loss_multipoles": [40, 100],
        "projected_loss_spectrum": True,
        "projected_loss_shift_weight": 0.01,
        "projected_loss_shift_matrix": {"omega_b": [1.0, -2.0], "n_s": [0.5, 3]},
    }
    config = parse_networks_config({"t0": shift}).networks["t0"]
    assert config.projection.shift_matrix == ((1.0, -2.0), (0.5, 3.0))
    assert config.architecture()["projected_loss_shift_matrix"][0][0] == "omega_b"
    bad = {**shift, "projected_loss_shift_matrix": {"omega_b": [1.0, -2.0, 3.0]}}
    with pytest.raises(NetworkConfigError, match="needs 2 columns"):
        parse_networks_config({"t0": bad})
    polarised = parse_networks_config(
        {"t2": {**shift, "projected_loss_polarisation": True}}
    ).networks["t2"]
    assert polarised.projection.polarisation and polarised.projection.shift_weight == 0.01
    bad = {**bad, "projected_loss_polarisation": True}
    with pytest.raises(NetworkConfigError, match="relative EE errors at 2 multipoles"):
        parse_networks_config({"t2": bad})
    with pytest.raises(NetworkConfigError, match="predicts t0"):
        parse_networks_config({"t0": {**shift, "projected_loss_polarisation": True}})


def test_misspelt_key_gets_a_did_you_mean():
    with pytest.raises(NetworkConfigError, match="did you mean 'epochs' for 'epoch'"):
        parse_networks_config({"t0": {"epoch": 3}})


def test_shift_matrix_is_read_from_the_file_the_config_names(tmp_path):
    from training.configuration.family import load_config

    family = yaml.safe_load((ROOT / "configs" / "lcdm.yaml").read_text())
    (tmp_path / "matrices").mkdir()
    size = 2 * len(family["networks"]["t0"]["projected_loss_multipoles"])  # TT, then TE
    rows = {"omega_b": [1.0] * size, "H0": [4.5] * size}
    (tmp_path / "matrices" / "t0.yaml").write_text(yaml.safe_dump(rows, sort_keys=False))
    family["networks"]["t0"]["projected_loss_shift_matrix"] = "matrices/t0.yaml"
    t2_matrix = ROOT / "configs" / "shift_matrices" / "lcdm_t2.yaml"
    family["networks"]["t2"]["projected_loss_shift_matrix"] = str(t2_matrix)  # absolute
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(family))
    config = parse_networks_config(load_config(tmp_path / "family.yaml").networks)
    matrix = config.networks["t0"].projected_loss_shift_matrix
    assert matrix == (("omega_b", (1.0,) * size), ("H0", (4.5,) * size))
    family["networks"]["t0"]["projected_loss_shift_matrix"] = "matrices/absent.yaml"
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(family))
    with pytest.raises(NetworkConfigError, match="cannot read the shift-matrix file"):
        parse_networks_config(load_config(tmp_path / "family.yaml").networks)


def test_run_settings_are_read_off_the_fields():
    """What a fine-tuning run records comes from the field tags, not a list kept by hand."""
    from dataclasses import fields

    from training.configuration.networks import RUN_SETTING, NetworkConfig
    from training.learning.pipeline import _TRAINING

    tagged = {item.name for item in fields(NetworkConfig) if item.metadata == RUN_SETTING}
    assert set(_TRAINING) == tagged == set(NetworkConfig.run_settings())
    assert {"projected_loss_polarisation", "learning_rate", "tau_range"} <= tagged
    assert not {"time_dense", "conv_branches", "central_dense"} & tagged  # architecture
