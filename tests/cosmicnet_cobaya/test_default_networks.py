"""The network set shipped as the default: complete, within size, with its provenance."""

from __future__ import annotations

import pytest
from helpers import ROOT

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.networks.network_set import load_network_set, read_metadata

pytestmark = pytest.mark.skipif(
    not (DEFAULT_NETWORKS / "metadata.json").is_file(), reason="no default network set installed"
)


def test_default_set_serves_every_source_within_size():
    metadata = read_metadata(DEFAULT_NETWORKS)
    assert set(metadata.sources) >= {"t0", "t1", "t2", "p", "phi_plus_psi", "delta_m", "delta_cb"}
    size = sum(path.stat().st_size for path in DEFAULT_NETWORKS.iterdir() if path.is_file())
    assert size <= 25e6
    precision = metadata.provenance["class_precision"]
    assert precision["m_ncdm"] == 0.06 and precision["N_ncdm"] == 1
    assert precision["N_ur"] == 2.0328
    assert set(metadata.domain) == {"omega_b", "omega_cdm", "H0", "tau_reio"}
    assert metadata.provenance["versions"]["classy"] == "3.4.1.0"
    loaded = load_network_set(DEFAULT_NETWORKS)
    assert loaded.k.size == metadata.k.size
    assert set(loaded.corrections) == {"t0", "t1", "t2", "delta_m", "delta_cb", "phi_plus_psi"}
    late = {name: loaded.corrections[name] for name in ("delta_m", "delta_cb", "phi_plus_psi")}
    assert all(c.mode == "log" and c.k_size == loaded.k.size for c in late.values())


def test_every_file_of_the_default_set_is_packaged():
    import configparser
    from fnmatch import fnmatch

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in setup["options.package_data"]["cosmicnet_cobaya"].split(",")]
    package = DEFAULT_NETWORKS.parents[2]  # the cosmicnet_cobaya package, wherever installed
    for path in DEFAULT_NETWORKS.iterdir():
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative


def test_recorded_accuracy_is_logged_with_its_figures(caplog):
    """ClassNet warns with the shipped set's measured figures when targets are missed."""
    import logging
    from types import SimpleNamespace

    from cosmicnet_cobaya.classnet import ClassNet

    accuracy = read_metadata(DEFAULT_NETWORKS).provenance["accuracy"]
    report = accuracy["none"]
    assert (
        0 < report["max_abs_error_in_per_l_planck_sigma"] < report["max_abs_error_in_planck_sigma"]
    )
    log = logging.getLogger("test.classnet")
    with caplog.at_level(logging.INFO, logger="test.classnet"):
        ClassNet._report_accuracy(SimpleNamespace(log=log), {"none": report})
    message = caplog.records[-1].getMessage()
    level = logging.INFO if report["meets_targets"] else logging.WARNING
    assert caplog.records[-1].levelno == level
    assert f"per-l error {report['max_abs_error_in_per_l_planck_sigma']:.3f} of the" in message
    assert f"{report['max_abs_shift_in_sigma']:.3f} sigma" in message
    # Each figure says whether it meets its target; a warning names what is missed.
    binned = report["max_abs_error_in_planck_sigma"]
    verdict = "met" if binned < report["targets"]["max_abs_error_in_planck_sigma"] else "MISSED"
    assert (
        f"binned error {binned:.3f} of the plik_lite error (target < 0.050: {verdict})" in message
    )
    assert ("MISSED" in message) == (not report["meets_targets"])
    minimal = {"n_cosmologies": 3, "tt_fraction_within_0.3pct_l30_2500": 1.0}
    ClassNet._report_accuracy(SimpleNamespace(log=log), {"none": minimal})
    expected = "on 3 test cosmologies (none non-linear): TT within 0.3% for 100% of them."
    assert expected in caplog.records[-1].getMessage()
