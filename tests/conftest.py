"""Shared fixtures: CLASS settings kept small so that CI stays fast."""

from __future__ import annotations

from pathlib import Path

import helpers
import pytest

from cosmicnet_cobaya.networks.domain import Domain
from cosmicnet_cobaya.planck import find_packages_path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


@pytest.fixture(scope="session")
def packages_path() -> Path:
    """The Cobaya packages_path with Planck 2018 plik_lite, or skip."""
    path = find_packages_path(Path(__file__).resolve().parent)
    if path is None:
        pytest.skip(
            "Planck 2018 plik_lite data not found: set COBAYA_PACKAGES_PATH to a Cobaya "
            "packages_path holding planck_2018_pliklite_native"
        )
    return path


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    """The toy family's generated sets (configs/smoke.yaml)."""
    from training.cli import main

    out = tmp_path_factory.mktemp("smoke_data") / "data"
    assert main(["generate", str(SMOKE), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def smoke_networks(smoke_data, tmp_path_factory) -> Path:
    """The toy networks trained (one epoch) on the smoke data."""
    from training.cli import main

    out = tmp_path_factory.mktemp("smoke") / "nets"
    argv = ["train", str(SMOKE), "--data", str(smoke_data), "--out", str(out)]
    argv += ["--only", "t0,t0_late,t1,t1_late,t2,t2_late,phi_plus_psi", "--no-progress"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def trained_set(tmp_path_factory):
    """A toy network set trained for one epoch on synthetic data."""
    from training.configuration.network_parsing import parse_networks_config
    from training.learning.pipeline import train_network_set

    out = tmp_path_factory.mktemp("netset")
    train_network_set(
        parse_networks_config(helpers.TINY),
        helpers.SyntheticSet(3, seed=1),
        helpers.SyntheticSet(2, seed=2),
        out,
        {"class_precision": {}},
        Domain({"H0": [60.0, 75.0]}),
        progress=False,
    )
    return out
