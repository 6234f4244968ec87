"""A ``classy.Class`` whose perturbation step takes sources from a provider."""

from __future__ import annotations

import time
from typing import Any

from cosmicnet_cobaya.hook import bridge
from cosmicnet_cobaya.sources import SourceGridError, SourceProvider

classy = bridge.classy


class HookedClass(classy.Class):
    """classy's ``Class`` with the perturbation integration replaced.

    ``compute()`` runs CLASS through thermodynamics, prepares the perturbation
    structure, asks ``source_provider`` for the sources, installs them and runs
    the remaining modules, so every classy getter works as after a full run.
    With no provider (``None``) it is plain classy.  ``last_timings`` holds the
    wall time of each step of the last computation.
    """

    def __init__(self) -> None:
        # classy's __cinit__ takes the constructor's arguments, so none are passed.
        self.source_provider: SourceProvider | None = None
        self.last_timings: dict[str, float] = {}
        self._layout_verified = False

    def compute(self, level: Any = ("distortions",)) -> None:
        levels = self._check_task_dependency(list(level) if not isinstance(level, str) else level)
        if self.source_provider is None or "perturbations" not in levels:
            super().compute(level=list(levels))
            return
        if bridge.is_computed(self, levels):
            return
        timings: dict[str, float] = {}
        start = time.perf_counter()
        super().compute(level=["thermodynamics"])
        timings["thermodynamics"] = time.perf_counter() - start
        try:
            if not self._layout_verified:
                bridge.verify_layout(self)
                self._layout_verified = True
            self._install_provided_sources(timings)
        except bridge.UnsupportedOutputError as error:
            self.struct_cleanup()
            raise classy.CosmoSevereError(str(error)) from error
        except (bridge.HookError, SourceGridError) as error:
            self.struct_cleanup()
            raise classy.CosmoComputationError(str(error)) from error
        except BaseException:
            self.struct_cleanup()
            raise
        for name, seconds in bridge.run_downstream(self, levels):
            timings[name] = seconds
        self.last_timings = timings

    def _install_provided_sources(self, timings: dict[str, float]) -> None:
        start = time.perf_counter()
        prepared = bridge.prepare_perturbations(self)
        timings["prepare"] = time.perf_counter() - start
        start = time.perf_counter()
        grid = self.source_provider.sources_for(self, prepared)
        timings["sources"] = time.perf_counter() - start
        start = time.perf_counter()
        bridge.install_sources(self, grid.on_class_grid(prepared))
        timings["install"] = time.perf_counter() - start
