"""Shared fixtures: CLASS settings kept small so that CI stays fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmicnet_cobaya.planck import find_packages_path


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
