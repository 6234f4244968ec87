"""Shared fixtures: CLASS settings kept small so that CI stays fast."""

from __future__ import annotations

from pathlib import Path

import pytest

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
def smoke_networks(tmp_path_factory) -> Path:
    """Generate the smoke data and train the toy networks (one epoch) on it."""
    from training.cli import main

    work = tmp_path_factory.mktemp("smoke")
    assert main(["generate", str(SMOKE), "--out", str(work / "data"), "--no-progress"]) == 0
    assert (
        main(
            [
                "train",
                str(SMOKE),
                "--data",
                str(work / "data"),
                "--out",
                str(work / "nets"),
                "--only",
                "t0,t0_late,t1,t1_late,t2,t2_late,phi_plus_psi",
                "--no-progress",
            ]
        )
        == 0
    )
    return work / "nets"
