"""Speed paths that must not change results: sparse HMcode, primordial reruns, the split."""

from __future__ import annotations

import numpy as np
import pytest
from cobaya.model import get_model

from cosmicnet_cobaya.classnet import DEFAULT_NETWORKS
from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.hook.bridge import classy as classy_module
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.networks.network_set import NetworkSetError
from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.planck import BEST_FIT, LCDM_EXTRA_ARGS
from cosmicnet_cobaya.sources import ClassSourceProvider

L_MAX = 2508
SETTINGS = {
    "output": "tCl,pCl,lCl,mPk",
    "lensing": "yes",
    "l_max_scalars": L_MAX,
    "z_max_pk": 1.0,
    "compute damping scale": "yes",
    **LCDM_EXTRA_ARGS,
    "omega_b": 0.02238,
    "omega_cdm": 0.1201,
    "H0": 67.32,
    "tau_reio": 0.0543,
    "A_s": 2.1e-9,
    "n_s": 0.9660,
}
SPECTRA = ("tt", "te", "ee", "pp")


@pytest.fixture(scope="module")
def network_provider():
    return NetworkSourceProvider(DEFAULT_NETWORKS)


def _hooked(provider, stride: int = 1, **settings) -> HookedClass:
    cosmo = HookedClass()
    cosmo.source_provider = provider
    cosmo.hmcode_stride = stride
    cosmo.set({**SETTINGS, **settings})
    return cosmo


def _products(cosmo: HookedClass) -> dict:
    k = np.geomspace(1e-4, 1.0, 40)
    return {
        **cosmo.lensed_cl(L_MAX),
        "sigma8": cosmo.sigma8(),
        "pk_nl": np.array([[cosmo.pk(kk, z) for kk in k] for z in (0.0, 0.5, 1.0)]),
        "pk_lin": np.array([[cosmo.pk_lin(kk, z) for kk in k] for z in (0.0, 0.5, 1.0)]),
    }


@pytest.mark.slow
def test_sparse_hmcode_keeps_output_redshifts_exact_and_lensing_close():
    provider = ClassSourceProvider()
    every = _hooked(provider, 1, non_linear="hmcode")
    every.compute()
    reference = _products(every)
    rows_all = bridge.read_nl_corrections(every.cosmo)[0].shape[0]
    sparse = _hooked(provider, 8, non_linear="hmcode")
    sparse.compute()
    result = _products(sparse)
    corrections, _, first = bridge.read_nl_corrections(sparse.cosmo)
    assert corrections.shape[0] == rows_all and np.all(corrections[:first] == 1.0)
    # P(k, z) at the requested redshifts is CLASS's own.
    np.testing.assert_array_equal(result["pk_nl"], reference["pk_nl"])
    np.testing.assert_array_equal(result["pk_lin"], reference["pk_lin"])
    assert result["sigma8"] == reference["sigma8"]
    # The lensing potential sees the splined correction at higher redshift.
    for name, tolerance in (("tt", 1e-4), ("ee", 1e-4), ("pp", 5e-3)):
        relative = np.abs(result[name][2:] / reference[name][2:] - 1)
        assert relative.max() < tolerance, name
    assert np.abs(result["pp"][2:] / reference["pp"][2:] - 1).max() > 0  # it is sparse
    for cosmo in (every, sparse):
        cosmo.struct_cleanup()
    provider.close()


@pytest.mark.slow
@pytest.mark.parametrize("non_linear", ["none", "hmcode"])
def test_primordial_rerun_equals_full_computation(network_provider, non_linear):
    changed = {"A_s": 2.2e-9, "n_s": 0.975}
    reused = _hooked(network_provider, 8, non_linear=non_linear)
    reused.compute()
    reused.set(changed)
    reused.compute()
    assert reused.last_fast and reused.last_served
    fresh = _hooked(network_provider, 8, non_linear=non_linear, **changed)
    fresh.compute()
    assert not fresh.last_fast
    got, expected = _products(reused), _products(fresh)
    for name in (*SPECTRA, "sigma8", "pk_nl", "pk_lin"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    # Anything but a primordial parameter takes the full path.
    reused.set({"omega_b": 0.0225})
    reused.compute()
    assert not reused.last_fast
    for cosmo in (reused, fresh):
        cosmo.struct_cleanup()


def _split_model(fast_primordial: bool):
    info = {
        "theory": {
            "cosmicnet_cobaya.ClassNet": {
                "extra_args": {**LCDM_EXTRA_ARGS, "non_linear": "none"},
                "fast_primordial": fast_primordial,
            }
        },
        "likelihood": {"one": None},
        "params": {
            "logA": {"prior": {"min": 2.9, "max": 3.2}, "drop": True},
            "A_s": {"value": "lambda logA: 1e-10*np.exp(logA)"},
            **{
                # Inside the shipped set's box, so that every point is served.
                name: {"prior": {"min": 0.98 * BEST_FIT[name], "max": 1.02 * BEST_FIT[name]}}
                for name in ("omega_b", "omega_cdm", "H0", "tau_reio", "n_s")
            },
            "sigma8": None,
        },
    }
    model = get_model(info)
    model.add_requirements({"Cl": {name: L_MAX for name in SPECTRA}})
    return model


@pytest.mark.slow
def test_split_declares_fast_primordial_block_and_changes_nothing():
    split, whole = _split_model(True), _split_model(False)
    inputs = {name: set(theory.input_params) for name, theory in split.theory.items()}
    assert inputs["cosmicnet_cobaya.ClassNet.transfers"] == {
        "omega_b",
        "omega_cdm",
        "H0",
        "tau_reio",
    }
    assert inputs["cosmicnet_cobaya.ClassNet"] == {"A_s", "n_s"}
    # Cobaya's own measurement sees ClassNet idle (the helper did everything);
    # ClassNet reports the cost of a real primordial-only step instead.
    split.measure_and_set_speeds(n=1, discard=0)
    assert split.theory["cosmicnet_cobaya.ClassNet"].speed < 100  # a real step, not idle
    blocks, oversampling = split.get_param_blocking_for_sampler(oversample_power=0.4)
    fast_block = next(i for i, block in enumerate(blocks) if "logA" in block)
    slow_block = next(i for i, block in enumerate(blocks) if "omega_b" in block)
    assert "n_s" in blocks[fast_block] and oversampling[fast_block] > oversampling[slow_block]
    point = {name: BEST_FIT[name] for name in ("omega_b", "omega_cdm", "H0", "tau_reio", "n_s")}
    points = [
        {**point, "logA": 3.0448},
        {**point, "logA": 3.06, "n_s": 0.97},
        {**point, "logA": 3.06, "omega_b": 0.0225},
        {**point, "logA": 3.03},
        {**point, "logA": 3.0448},
    ]
    for values in points:
        results = []
        for model in (split, whole):
            logpost = model.logposterior(values)
            cl = model.provider.get_Cl(ell_factor=False, units="1")
            results.append((logpost.derived, cl))
        assert results[0][0] == results[1][0]
        for name in SPECTRA:
            np.testing.assert_array_equal(results[0][1][name], results[1][1][name])
    split.close()
    whole.close()


@pytest.mark.slow
def test_point_outside_domain_falls_back_and_still_reruns_primordial(network_provider):
    outside = _hooked(network_provider, 8, non_linear="none", H0=60.0)
    outside.compute()
    assert not outside.last_served
    outside.set({"A_s": 2.2e-9})
    outside.compute()
    assert outside.last_fast and not outside.last_served
    fresh = classy_module.Class()
    fresh.set({**SETTINGS, "non_linear": "none", "H0": 60.0, "A_s": 2.2e-9})
    fresh.compute()
    for name in SPECTRA:
        np.testing.assert_array_equal(outside.lensed_cl(L_MAX)[name], fresh.lensed_cl(L_MAX)[name])
    outside.struct_cleanup()
    fresh.struct_cleanup()


@pytest.mark.slow
def test_domain_comes_before_the_k_range(network_provider):
    """Outside the domain a point falls back even when its k range is beyond the set;
    inside, a request beyond the set's k grid stops with the fix."""
    beyond = {"non_linear": "none", "P_k_max_1/Mpc": 20.0}
    outside = _hooked(network_provider, 1, H0=60.0, **beyond)
    outside.compute()
    assert not outside.last_served
    outside.struct_cleanup()
    inside = _hooked(network_provider, 1, **beyond)
    with pytest.raises(NetworkSetError, match="lower l_max / P_k_max"):
        inside.compute()


class _InflatedMatterSources(ClassSourceProvider):
    """CLASS's sources with delta_m and delta_cb inflated 1e4 times: HMcode fails on them."""

    def sources_for(self, cosmo, prepared):
        from cosmicnet_cobaya.sources import SourceGrid

        grid = super().sources_for(cosmo, prepared)
        values = {name: grid.values[name] * (1e4 if name.startswith("delta") else 1.0)
                  for name in grid.values}  # fmt: skip
        return SourceGrid(k=grid.k, values=values)


@pytest.mark.slow
def test_a_class_failure_on_provided_sources_falls_back_to_class():
    """A point inside the domain that CLASS rejects only because of the provided sources
    is computed by CLASS itself (fallback), or rejected under ``reject``."""
    point = {name: BEST_FIT[name] for name in ("omega_b", "omega_cdm", "H0", "tau_reio")}
    settings = {"output": "mPk", **LCDM_EXTRA_ARGS, "non_linear": "hmcode", "z_max_pk": 1.0,
                "P_k_max_1/Mpc": 1.0, "A_s": 2.1e-9, "n_s": 0.966, **point}  # fmt: skip
    hooked = HookedClass()
    hooked.source_provider = _InflatedMatterSources()
    hooked.set(settings)
    hooked.compute()
    assert not hooked.last_served and hooked.declined_count == 1
    reference = classy_module.Class()
    reference.set(settings)
    reference.compute()
    assert hooked.sigma8() == reference.sigma8()
    rejecting = HookedClass()
    rejecting.source_provider = _InflatedMatterSources()
    rejecting.on_decline = "reject"
    rejecting.set(settings)
    with pytest.raises(classy_module.CosmoComputationError, match="CLASS failed on the provided"):
        rejecting.compute()
    for cosmo in (hooked, reference, rejecting):
        cosmo.struct_cleanup()
