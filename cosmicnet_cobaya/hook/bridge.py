"""Python face of the C bridge into a live ``classy.Class`` object.

The compiled module ``_bridge`` leaves CLASS's functions unresolved; they are
taken from classy's own extension module, made globally visible here before
``_bridge`` is imported, so that both share one copy of CLASS.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import math
import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from cosmicnet_cobaya.errors import CosmicNetError

SUPPORTED_CLASSY_VERSION = "3.4.1.0"
"""The classy release whose object layout the bridge mirrors."""


class UnsupportedClassyError(CosmicNetError, ImportError):
    """The installed classy is not the release the bridge was built for."""


def _load_compiled_bridge() -> tuple[ModuleType, ModuleType]:
    import classy

    try:
        version = importlib.metadata.version("classy")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(classy, "__version__", "unknown")
    if version != SUPPORTED_CLASSY_VERSION:
        raise UnsupportedClassyError(
            f"cosmicnet_cobaya needs classy {SUPPORTED_CLASSY_VERSION} (found {version}): "
            f"run `pip install classy=={SUPPORTED_CLASSY_VERSION}`, then reinstall "
            "cosmicnet_cobaya so that its bridge is compiled against it."
        )
    library = getattr(importlib.import_module("classy._classy"), "__file__", None)
    if library is None or not os.path.exists(library):
        raise UnsupportedClassyError("cannot locate classy's compiled module")
    # Promote the already loaded CLASS symbols to the global namespace.
    ctypes.CDLL(library, mode=os.RTLD_GLOBAL | getattr(os, "RTLD_NOLOAD", 0))
    from cosmicnet_cobaya.hook import _bridge

    return classy, _bridge


classy, _compiled = _load_compiled_bridge()
HookError = _compiled.HookError
UnsupportedOutputError = _compiled.UnsupportedOutputError
DOWNSTREAM_MODULES: tuple[str, ...] = _compiled.DOWNSTREAM_MODULES


class LayoutMismatchError(UnsupportedClassyError):
    """Values read through the mirrored struct differ from classy's own."""


def verify_layout(cosmo: Any) -> None:
    """Check the mirrored layout on an object computed up to thermodynamics.

    Raises LayoutMismatchError naming the supported classy when any value read
    through the mirror differs from what classy's own methods return.
    """
    probe = _compiled.layout_probe(cosmo)
    expected = cosmo.get_current_derived_parameters(["conformal_age", "tau_reio", "z_rec"])
    expected["h"] = cosmo.h()
    mismatched = [
        name
        for name, value in expected.items()
        if not math.isclose(probe[name], value, rel_tol=1e-12, abs_tol=0.0)
    ]
    if not probe["pars_is_same"]:
        mismatched.append("_pars")
    if probe["computed"] != 1 or probe["allocated"] != 1:
        mismatched.append("computed/allocated flags")
    if not {"input", "background", "thermodynamics"} <= probe["ncp"]:
        mismatched.append("ncp")
    if mismatched:
        raise LayoutMismatchError(
            f"the classy.Class layout differs from classy {SUPPORTED_CLASSY_VERSION} "
            f"(mismatched: {', '.join(mismatched)}): install classy=="
            f"{SUPPORTED_CLASSY_VERSION} and rebuild cosmicnet_cobaya"
        )


@dataclass(frozen=True)
class PreparedPerturbations:
    """What CLASS decided for one cosmology before integrating perturbations."""

    k: np.ndarray
    """CLASS's own k list for this cosmology [1/Mpc]."""
    tau: np.ndarray
    """The tau sampling of the sources [Mpc]."""
    k_min: float
    k_max: float
    k_max_cl: float
    """Largest k the CMB line-of-sight integrals use for the requested l_max."""
    k_size_cl: int
    source_names: tuple[str, ...]
    """Every source type the requested output needs (t0, t1, t2, p, ...)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(tau_size, k_size) of every source array CLASS expects."""
        return (self.tau.size, self.k.size)


def prepare_perturbations(cosmo: Any) -> PreparedPerturbations:
    """Set up CLASS's perturbation structure (indices, k list, tau sampling)."""
    info = _compiled.prepare_perturbations(cosmo)
    return PreparedPerturbations(
        k=info["k"],
        tau=info["tau"],
        k_min=info["k_min"],
        k_max=info["k_max"],
        k_max_cl=info["k_max_cl"],
        k_size_cl=info["k_size_cl"],
        source_names=info["source_names"],
    )


def read_sources(cosmo: Any) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Copy (k, tau, sources) of an object computed with perturbations.

    ``sources`` maps each source name to an array of shape (tau_size, k_size).
    """
    return _compiled.read_sources(cosmo)


def output_table(cosmo: Any, which: str) -> dict[str, np.ndarray]:
    """CLASS's ``background`` or ``thermodynamics`` table: column name -> values.

    Identical to classy's ``get_background()`` / ``get_thermodynamics()``, but
    read in one copy (classy's getters copy element by element in Python).
    """
    names, table = _compiled.output_table(cosmo, which)
    return {name: table[:, index] for index, name in enumerate(names)}


def install_sources(cosmo: Any, sources: dict[str, np.ndarray]) -> None:
    """Install sources on CLASS's own (tau, k) grid and spline them in ln(tau)."""
    arrays = {
        name: np.ascontiguousarray(value, dtype=np.float64) for name, value in sources.items()
    }
    _compiled.install_sources(cosmo, arrays)


def run_downstream(
    cosmo: Any, levels: set[str], hmcode_stride: int = 1, mark: set[str] | None = None
) -> list[tuple[str, float]]:
    """Run the CLASS modules after perturbations that ``levels`` asks for.

    Leaves the object as a full ``compute()`` would.  With ``hmcode_stride``
    above 1, HMcode runs on sparse times before the output redshifts (see
    :func:`run_fourier_sparse`).  On a CLASS failure the object is cleaned up
    and classy's CosmoComputationError is raised.  Returns the wall time of
    each module run.  The object is marked as computed for ``mark`` (default
    ``levels``).
    """
    timings = []
    for name in DOWNSTREAM_MODULES:
        if name not in levels:
            continue
        start = time.perf_counter()
        try:
            if name == "fourier" and _compiled.sparse_fourier_applies(cosmo, hmcode_stride):
                _compiled.run_fourier_sparse(cosmo, hmcode_stride)
            else:
                _compiled.run_module(cosmo, name)
        except HookError as error:
            cosmo.struct_cleanup()
            raise classy.CosmoComputationError(str(error)) from error
        timings.append((name, time.perf_counter() - start))
    _compiled.set_computed(cosmo, set(levels if mark is None else mark))
    return timings


def run_fourier_sparse(cosmo: Any, stride: int) -> list[int]:
    """CLASS's fourier step with HMcode on every ``stride``-th time before z_max_pk.

    The linear spectra and the non-linear P(k, z) at the output redshifts are
    CLASS's own; the correction that the transfer step applies to the lensing
    potential at earlier times is splined in ln(tau) between the times HMcode
    ran at (returned as rows of the source time sampling).
    """
    return _compiled.run_fourier_sparse(cosmo, stride)


def allocated_modules(cosmo: Any) -> set[str]:
    """Names of the CLASS modules whose structures the object holds."""
    return _compiled.allocated_modules(cosmo)


def rerun_primordial(
    cosmo: Any, input_only: Any, levels: set[str], hmcode_stride: int = 1
) -> list[tuple[str, float]]:
    """Rerun the modules from primordial on with ``input_only``'s primordial settings.

    ``cosmo`` holds sources (and perhaps transfer functions) computed for the
    same non-primordial parameters; ``input_only`` is a classy object with the
    new parameters computed to the input level.  Transfer functions are kept
    where held; with a non-linear correction, which depends on the primordial
    spectrum and enters the lensing potential, the lensing transfer functions
    alone are recomputed.  Returns the wall time of each module run.
    """
    keep_transfer = "transfer" in allocated_modules(cosmo)
    non_linear = has_non_linear(cosmo)
    _compiled.free_after_perturbations(cosmo, keep_transfer)
    _compiled.take_primordial_input(cosmo, input_only)
    timings = run_downstream(cosmo, levels & {"primordial", "fourier"}, hmcode_stride)
    if keep_transfer and non_linear:
        start = time.perf_counter()
        try:
            keep_transfer = _compiled.refresh_lensing_transfers(cosmo)
        except HookError as error:
            cosmo.struct_cleanup()
            raise classy.CosmoComputationError(str(error)) from error
        timings.append(("lensing transfer", time.perf_counter() - start))
        if not keep_transfer:
            _compiled.free_transfer(cosmo)
    rest = levels - {"primordial", "fourier"} - ({"transfer"} if keep_transfer else set())
    return timings + run_downstream(cosmo, rest, hmcode_stride, mark=levels)


def has_non_linear(cosmo: Any) -> bool:
    """True when the object's CLASS input asks for a non-linear correction."""
    return _compiled.uses_non_linear(cosmo)


def read_nl_corrections(cosmo: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """sqrt(P_nl / P_lin) of total matter on (tau sampling, k list), tau, first computed row."""
    return _compiled.read_nl_corrections(cosmo)


def is_computed(cosmo: Any, levels: set[str]) -> bool:
    """True when the object already holds a computation covering ``levels``."""
    return _compiled.is_computed(cosmo, set(levels))
