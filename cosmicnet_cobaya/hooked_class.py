"""A ``classy.Class`` whose perturbation step takes sources from a provider."""

from __future__ import annotations

import logging
import time
from typing import Any

from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.sources import SourceGridError, SourceProvider, SourcesDeclinedError

classy = bridge.classy
log = logging.getLogger(__name__)

SERVED_PARAMETER = "cosmicnet_served"
"""Derived parameter: 1 when the provider served the point, 0 when CLASS did."""


PRIMORDIAL_PARAMETERS = frozenset(
    {"A_s", "ln10^{10}A_s", "ln_A_s_1e10", "n_s", "alpha_s", "beta_s", "k_pivot"}
)
"""CLASS inputs read by the primordial module alone: changing only these reuses
the sources and (without a non-linear correction) the transfer functions."""


class HookedClass:
    """A classy ``Class`` with the perturbation integration replaced.

    Every attribute other than ``compute`` and ``get_current_derived_parameters``
    is the wrapped ``classy.Class`` object's (``cosmo``): ``set``, ``lensed_cl``,
    ``get_background``, ``struct_cleanup``, ...  (A wrapper rather than a
    subclass: classy's ``__dealloc__`` cannot find its own methods on a Python
    subclass torn down at interpreter exit.)

    ``compute()`` runs CLASS through thermodynamics, prepares the perturbation
    structure, asks ``source_provider`` for the sources, installs them and runs
    the remaining modules, so every classy getter works as after a full run.
    With no provider (``None``) it is plain classy.  When the provider declines
    a point, ``on_decline`` says what happens: ``fallback`` (CLASS integrates
    the perturbations itself) or ``reject`` (CosmoComputationError).
    ``last_timings`` holds the wall time of each step of the last computation,
    ``last_served`` whether the provider's sources were used.
    """

    def __init__(self) -> None:
        self.cosmo = classy.Class()
        self.source_provider: SourceProvider | None = None
        self.on_decline = "fallback"
        self.last_timings: dict[str, float] = {}
        self.last_served = False
        self.last_fast = False
        self.hmcode_stride = 1
        self.declined_count = 0
        self._layout_verified = False
        self._held_pars: dict[str, Any] | None = None
        self._input_only: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cosmo, name)

    def compute(self, level: Any = ("distortions",)) -> None:
        """classy's ``compute``, with sources from ``source_provider``."""
        cosmo = self.cosmo
        levels = cosmo._check_task_dependency(level)
        if self.source_provider is None or "perturbations" not in levels:
            cosmo.compute(level=list(levels))
            self.last_served = False
            self._held_pars = None
            return
        if bridge.is_computed(cosmo, levels):
            return
        if self._primordial_change_only(levels):
            self._rerun_primordial(levels)
            return
        self._held_pars = None
        self.last_fast = False
        timings: dict[str, float] = {}
        start = time.perf_counter()
        cosmo.compute(level=["thermodynamics"])
        timings["thermodynamics"] = time.perf_counter() - start
        try:
            if not self._layout_verified:
                bridge.verify_layout(cosmo)
                self._layout_verified = True
            self._install_provided_sources(timings)
        except SourcesDeclinedError as reason:
            cosmo.struct_cleanup()
            self._declined(reason, levels)
            return
        except bridge.UnsupportedOutputError as error:
            cosmo.struct_cleanup()
            raise classy.CosmoSevereError(str(error)) from error
        except (bridge.HookError, SourceGridError) as error:
            cosmo.struct_cleanup()
            raise classy.CosmoComputationError(str(error)) from error
        except BaseException:
            cosmo.struct_cleanup()
            raise
        try:
            for name, seconds in bridge.run_downstream(cosmo, levels, self.hmcode_stride):
                timings[name] = seconds
        except classy.CosmoComputationError as error:
            # CLASS failed on the provided sources (say HMcode on a network's P(k)):
            # the point goes to CLASS itself, which rejects it only where classy would.
            cosmo.struct_cleanup()
            self._declined(SourcesDeclinedError(f"CLASS failed on the provided sources: {error}"),
                           levels)  # fmt: skip
            return
        self.last_timings = timings
        self.last_served = True
        self._held_pars = dict(cosmo.pars)

    def _primordial_change_only(self, levels: set[str]) -> bool:
        """True when the object holds sources for the same parameters but primordial.

        The sources may be the provider's or CLASS's own (a fallback point);
        ``last_served`` keeps saying which.
        """
        if self._held_pars is None or "perturbations" not in bridge.allocated_modules(self.cosmo):
            return False
        new = self.cosmo.pars
        changed = {
            name
            for name in set(new) | set(self._held_pars)
            if new.get(name) != self._held_pars.get(name)
        }
        return bool(changed) and changed <= PRIMORDIAL_PARAMETERS

    def _rerun_primordial(self, levels: set[str]) -> None:
        """Rerun primordial and what follows on the sources (and transfers) held."""
        if self._input_only is None:
            self._input_only = classy.Class()
        input_only = self._input_only
        input_only.struct_cleanup()
        input_only.empty()
        input_only.set(dict(self.cosmo.pars))
        try:
            input_only.compute(level=["input"])
            timings = dict(
                bridge.rerun_primordial(self.cosmo, input_only, levels, self.hmcode_stride)
            )
        except BaseException:
            self._held_pars = None
            self.cosmo.struct_cleanup()
            raise
        self.last_timings = timings
        self.last_fast = True
        self._held_pars = dict(self.cosmo.pars)

    def _install_provided_sources(self, timings: dict[str, float]) -> None:
        start = time.perf_counter()
        prepared = bridge.prepare_perturbations(self.cosmo)
        timings["prepare"] = time.perf_counter() - start
        start = time.perf_counter()
        grid = self.source_provider.sources_for(self.cosmo, prepared)
        timings["sources"] = time.perf_counter() - start
        start = time.perf_counter()
        bridge.install_sources(self.cosmo, grid.on_class_grid(prepared))
        timings["install"] = time.perf_counter() - start

    def _declined(self, reason: SourcesDeclinedError, levels: set[str]) -> None:
        self.declined_count += 1
        if self.declined_count == 1 or self.declined_count % 100 == 0:
            log.warning(
                "%d point(s) so far not served by the source provider (%s); latest: %s",
                self.declined_count,
                "integrated with CLASS" if self.on_decline == "fallback" else "rejected",
                reason,
            )
        if self.on_decline == "reject":
            raise classy.CosmoComputationError(f"point declined by the source provider: {reason}")
        start = time.perf_counter()
        self.cosmo.compute(level=list(levels))
        self.last_timings = {"class_fallback": time.perf_counter() - start}
        self.last_served = False
        # CLASS's own sources serve primordial-only changes as well as the networks'.
        self._held_pars = dict(self.cosmo.pars)

    def get_current_derived_parameters(self, names: list[str]) -> dict[str, float]:
        """classy's derived parameters, plus ``cosmicnet_served``."""
        own = {name: float(self.last_served) for name in names if name == SERVED_PARAMETER}
        rest = [name for name in names if name != SERVED_PARAMETER]
        values = self.cosmo.get_current_derived_parameters(rest) if rest else {}
        return {**values, **own}
