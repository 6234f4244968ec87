"""The C bridge: prepared structure, exact source round trip, errors."""

from __future__ import annotations

import importlib.metadata

import classy
import numpy as np
import pytest

from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.sources import ClassSourceProvider, SourceGrid, SourceGridError

PARAMS = {
    "output": "tCl,pCl,lCl",
    "lensing": "yes",
    "l_max_scalars": 1000,
    "omega_b": 0.0224,
    "omega_cdm": 0.119,
    "H0": 67.5,
    "tau_reio": 0.055,
    "N_ur": 2.0328,
    "N_ncdm": 1,
    "m_ncdm": 0.06,
}


@pytest.fixture(scope="module")
def full_run():
    """A plain classy object computed in full, and its products."""
    cosmo = classy.Class()
    cosmo.set(PARAMS)
    cosmo.compute()
    k, tau, sources = bridge.read_sources(cosmo)
    products = {
        "lensed": cosmo.lensed_cl(1000),
        "raw": cosmo.raw_cl(1000),
        "derived": cosmo.get_current_derived_parameters(["100*theta_s", "z_d", "rs_d", "tau_rec"]),
        "background": cosmo.get_background(),
        "thermo": cosmo.get_thermodynamics(),
    }
    yield {"k": k, "tau": tau, "sources": sources, "products": products}
    cosmo.struct_cleanup()


def _prepared_object():
    cosmo = classy.Class()
    cosmo.set(PARAMS)
    cosmo.compute(level=["thermodynamics"])
    bridge.verify_layout(cosmo)
    return cosmo, bridge.prepare_perturbations(cosmo)


def test_prepare_matches_full_run(full_run):
    cosmo, prepared = _prepared_object()
    np.testing.assert_array_equal(prepared.k, full_run["k"])
    np.testing.assert_array_equal(prepared.tau, full_run["tau"])
    assert set(prepared.source_names) == set(full_run["sources"])
    assert {"t0", "t1", "t2", "p", "phi_plus_psi"} <= set(prepared.source_names)
    assert prepared.k_min <= prepared.k[0]
    assert prepared.k[0] < prepared.k_max_cl <= prepared.k[-1]
    cosmo.struct_cleanup()


def test_installed_sources_reproduce_every_product(full_run):
    cosmo, _ = _prepared_object()
    bridge.install_sources(cosmo, full_run["sources"])
    bridge.run_downstream(cosmo, cosmo._check_task_dependency(["distortions"]))
    expected = full_run["products"]
    for name, values in cosmo.lensed_cl(1000).items():
        np.testing.assert_array_equal(values, expected["lensed"][name])
    for name, values in cosmo.raw_cl(1000).items():
        np.testing.assert_array_equal(values, expected["raw"][name])
    derived = cosmo.get_current_derived_parameters(list(expected["derived"]))
    assert derived == expected["derived"]
    for name, column in cosmo.get_background().items():
        np.testing.assert_array_equal(column, expected["background"][name])
    # The object stays usable: a new point, then cleanup.
    cosmo.set(omega_b=0.0226)
    cosmo.compute()
    assert cosmo.lensed_cl(1000)["tt"][200] != expected["lensed"]["tt"][200]
    cosmo.struct_cleanup()


def test_install_rejects_wrong_shapes_and_missing_sources(full_run):
    cosmo, _ = _prepared_object()
    sources = dict(full_run["sources"])
    with pytest.raises(bridge.HookError, match="shape"):
        bridge.install_sources(cosmo, {**sources, "t0": sources["t0"][:, :-1]})
    sources.pop("t1")
    with pytest.raises(bridge.HookError, match="t1"):
        bridge.install_sources(cosmo, sources)
    cosmo.struct_cleanup()


def test_source_grid_moves_sources_onto_class_k_list(full_run):
    _, prepared = _prepared_object()
    k = full_run["k"]
    # A finer grid carrying a smooth function of k: the spline must reproduce it.
    fine_k = np.geomspace(k[0], k[-1], 2 * k.size)
    values = {name: np.outer(prepared.tau, np.sin(fine_k * 30.0)) for name in prepared.source_names}
    moved = SourceGrid(fine_k, values).on_class_grid(prepared)
    np.testing.assert_allclose(
        moved["t0"], np.outer(prepared.tau, np.sin(k * 30.0)), atol=1e-4 * prepared.tau.max()
    )
    short = SourceGrid(
        fine_k[: fine_k.size // 2], {n: v[:, : fine_k.size // 2] for n, v in values.items()}
    )
    with pytest.raises(SourceGridError, match="does not cover"):
        short.on_class_grid(prepared)
    with pytest.raises(SourceGridError, match="no source given"):
        SourceGrid(fine_k, {"t0": values["t0"]}).on_class_grid(prepared)
    # p = factor x t2 given as a scaled source: moved once with t2, then scaled.
    assert "p" in prepared.source_names
    without_p = {name: v for name, v in values.items() if name != "p"}
    scaled = SourceGrid(fine_k, without_p, scaled={"p": ("t2", 2.5)}).on_class_grid(prepared)
    np.testing.assert_allclose(scaled["p"], 2.5 * moved["t2"], rtol=1e-15)
    np.testing.assert_array_equal(scaled["t0"], moved["t0"])
    with pytest.raises(SourceGridError, match="no source given"):
        SourceGrid(fine_k, without_p, scaled={"p": ("t3", 2.5)}).on_class_grid(prepared)


def test_layout_mismatch_is_refused(monkeypatch):
    cosmo, _ = _prepared_object()
    real_probe = bridge._compiled.layout_probe

    def shifted_probe(obj):
        probe = real_probe(obj)
        probe["h"] *= 1.01
        return probe

    monkeypatch.setattr(bridge._compiled, "layout_probe", shifted_probe)
    with pytest.raises(bridge.LayoutMismatchError, match=bridge.SUPPORTED_CLASSY_VERSION):
        bridge.verify_layout(cosmo)
    cosmo.struct_cleanup()


def test_other_classy_version_is_refused(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.3.0.0")
    with pytest.raises(bridge.UnsupportedClassyError, match=r"classy==3\.4\.1\.0"):
        bridge._load_compiled_bridge()


def test_hooked_class_rejects_failing_point_and_recovers():
    cosmo = HookedClass()
    cosmo.source_provider = ClassSourceProvider()
    cosmo.set({"output": "tCl", "l_max_scalars": 300, "tau_reio": 5.0})
    with pytest.raises(classy.CosmoComputationError):
        cosmo.compute()
    cosmo.set({"tau_reio": 0.055})
    cosmo.compute()
    assert cosmo.raw_cl(300)["tt"][100] > 0
    assert {"thermodynamics", "prepare", "sources", "install", "transfer"} <= set(
        cosmo.last_timings
    )
    cosmo.struct_cleanup()


def test_hooked_class_refuses_tensor_modes():
    cosmo = HookedClass()
    cosmo.source_provider = ClassSourceProvider()
    cosmo.set({"output": "tCl", "modes": "s,t", "r": 0.1, "l_max_scalars": 300})
    with pytest.raises(classy.CosmoSevereError, match="scalar modes"):
        cosmo.compute()


def test_output_tables_equal_classy_getters():
    cosmo, _ = _prepared_object()
    for which, getter in (
        ("background", cosmo.get_background),
        ("thermodynamics", cosmo.get_thermodynamics),
    ):
        expected = getter()
        table = bridge.output_table(cosmo, which)
        assert list(table) == list(expected)
        for name, column in expected.items():
            np.testing.assert_array_equal(table[name], column)
    cosmo.struct_cleanup()
