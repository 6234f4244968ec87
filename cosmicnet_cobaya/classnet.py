"""The Cobaya theory ``cosmicnet_cobaya.ClassNet``.

A subclass of Cobaya's ``classy`` theory: CLASS still computes background,
thermodynamics, transfer, harmonic and lensing (so every classy product and
derived parameter works); only the perturbation step takes its sources from a
provider: trained networks (``sources: network``) or a private full CLASS run
(``sources: class``, the validation mode).
"""

from __future__ import annotations

from cobaya.log import LoggedError
from cobaya.theories.classy import classy as CobayaClassy

from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.sources import ClassSourceProvider, SourceProvider

SOURCE_MODES = ("network", "class")


class ClassNet(CobayaClassy):
    """CLASS with neural-network source functions, as a Cobaya theory."""

    sources: str
    networks: str | None

    def initialize(self) -> None:
        """Load classy as Cobaya's classy does, then hook its perturbation step."""
        if self.sources not in SOURCE_MODES:
            raise LoggedError(
                self.log,
                "Unknown value sources=%r: use one of %s.",
                self.sources,
                ", ".join(SOURCE_MODES),
            )
        provider = self._make_source_provider()
        super().initialize()
        self.classy = HookedClass()
        self.classy.source_provider = provider
        self.log.info("Source functions from: %s", self.sources)

    def _make_source_provider(self) -> SourceProvider:
        if self.sources == "class":
            return ClassSourceProvider()
        raise LoggedError(
            self.log,
            "sources: network needs a trained network set, and none ships with this "
            "version yet. Use `sources: class` (exact CLASS sources through the hook) "
            "until a network set is available.",
        )

    def get_step_timings(self) -> dict[str, float]:
        """Wall time [s] of each step of the last CLASS evaluation."""
        return dict(self.classy.last_timings)

    def close(self) -> None:
        """Free CLASS memory held by the theory and its source provider."""
        provider_close = getattr(self.classy.source_provider, "close", None)
        if provider_close is not None:
            provider_close()
        super().close()
