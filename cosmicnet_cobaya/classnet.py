"""The Cobaya theory ``cosmicnet_cobaya.ClassNet``.

A subclass of Cobaya's ``classy`` theory: CLASS still computes background,
thermodynamics, transfer, harmonic and lensing (so every classy product and
derived parameter works); only the perturbation step takes its sources from a
provider: trained networks (``sources: network``) or a private full CLASS run
(``sources: class``, the validation mode).
"""

from __future__ import annotations

import time
from pathlib import Path

from cobaya.log import LoggedError
from cobaya.theories.classy import classy

from cosmicnet_cobaya.hook.bridge import classy as classy_module
from cosmicnet_cobaya.hooked_class import PRIMORDIAL_PARAMETERS, SERVED_PARAMETER, HookedClass
from cosmicnet_cobaya.networks.accuracy import AccuracyReport
from cosmicnet_cobaya.networks.network_set import NetworkSetError
from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.networks.shipped import (
    DEFAULT_SET,
    SHIPPED_ROOT,
    choose_shipped_set,
    resolve_network_set,
)
from cosmicnet_cobaya.sources import ClassSourceProvider, SourceProvider
from cosmicnet_cobaya.transfers import TRANSFERS_PRODUCT, ClassNetTransfers

SOURCE_MODES = ("network", "class")
PRIMORDIAL_SPEEDUP = 5.0
"""Declared speed of the primordial half relative to the slow half (a floor:
measured ratios are 8-30)."""
OUT_OF_DOMAIN_POLICIES = ("fallback", "reject", "force")
DEFAULT_NETWORKS = SHIPPED_ROOT / DEFAULT_SET
"""The shipped LCDM set (``networks: null`` picks it unless another shipped set fits)."""


class ClassNet(classy):
    """CLASS with neural-network source functions, as a Cobaya theory."""

    sources: str
    networks: str | None
    out_of_domain: str
    hmcode_stride: int
    fast_primordial: bool

    def initialize(self) -> None:
        """Load classy as Cobaya's classy does, then hook its perturbation step."""
        for option, value, allowed in (
            ("sources", self.sources, SOURCE_MODES),
            ("out_of_domain", self.out_of_domain, OUT_OF_DOMAIN_POLICIES),
        ):
            if value not in allowed:
                raise LoggedError(
                    self.log,
                    "Unknown value %s=%r: use one of %s.",
                    option,
                    value,
                    ", ".join(allowed),
                )
        if not isinstance(self.hmcode_stride, int) or self.hmcode_stride < 1:
            raise LoggedError(
                self.log,
                "hmcode_stride=%r: use a whole number >= 1 (1: HMcode at every time, "
                "as CLASS does).",
                self.hmcode_stride,
            )
        self._provider = self._make_source_provider()
        self._transfers: ClassNetTransfers | None = None
        super().initialize()
        self.classy = self.new_class_object()
        self.log.info("Source functions from: %s", self.sources)

    def new_class_object(self) -> HookedClass:
        """A CLASS object with this theory's source provider and settings."""
        cosmo = HookedClass()
        cosmo.source_provider = self._provider
        cosmo.on_decline = "reject" if self.out_of_domain == "reject" else "fallback"
        cosmo.hmcode_stride = self.hmcode_stride
        return cosmo

    def get_helper_theories(self) -> dict[str, ClassNetTransfers]:
        """With ``fast_primordial``, the slow parameters go to ``<name>.transfers``."""
        if not self.fast_primordial:
            return {}
        name = f"{self.get_name()}.transfers"
        self._transfers = ClassNetTransfers(
            self, name, {"stop_at_error": self.stop_at_error}, timing=self.timer
        )
        # Declared speeds until Cobaya's MCMC measures them: the slow half takes the
        # theory's speed, the primordial half runs several times faster.
        self._transfers.speed = self.speed
        self.speed = self.speed * PRIMORDIAL_SPEEDUP
        return {name: self._transfers}

    def set_measured_speed(self, speed: float) -> None:
        """Cobaya's measured speed; with the split, that of a primordial-only step.

        Cobaya measures speeds at points that change every parameter, where the
        helper has computed everything and this theory does nothing; its real
        cost is that of a step changing only its own parameters, timed here once
        on the object the last evaluation used.
        """
        seconds = self._time_primordial_step() if self._transfers is not None else None
        super().set_measured_speed(1.0 / seconds if seconds else speed)
        if seconds:
            self.log.info(
                "Primordial-only step: %.3g s (speed %.3g per second).", seconds, 1 / seconds
            )

    def _time_primordial_step(self) -> float | None:
        """Wall time of a primordial-only rerun, or None where it cannot be timed."""
        cosmo = self.classy
        name = next((n for n in PRIMORDIAL_PARAMETERS if n in cosmo.pars), None)
        if name is None:
            return None
        value = cosmo.pars[name]
        try:
            cosmo.set({name: value * (1 + 1e-6)})
            start = time.perf_counter()
            cosmo.compute()
            seconds = time.perf_counter() - start
            fast = cosmo.last_fast
        except classy_module.CosmoComputationError:
            return None
        finally:
            cosmo.set({name: value})
        return seconds if fast else None

    def get_can_support_params(self) -> list[str]:
        """classy's list, but H0 goes to the helper when the split is on."""
        return [] if self.fast_primordial else super().get_can_support_params()

    def must_provide(self, **requirements) -> dict:
        """classy's requirements, plus the helper's sources when the split is on."""
        needs = super().must_provide(**requirements) or {}
        if self._transfers is not None:
            needs = {**needs, TRANSFERS_PRODUCT: None}
        return needs

    def compute_slow_part(self, cosmo: HookedClass) -> bool:
        """Compute everything for the helper; False rejects the point.

        The helper sets this theory's own (primordial) parameters of the
        current point too, so that this theory then finds the object computed
        and does nothing: Cobaya's speed measurement sees the slow part in the
        helper, and a fast step reruns only what the primordial ones touch.
        """
        try:
            cosmo.compute()
        except classy_module.CosmoComputationError as error:
            if self.stop_at_error:
                raise
            self.log.debug("Computation of the sources failed (%s): zero likelihood.", error)
            return False
        except NetworkSetError as error:
            raise LoggedError(
                self.log, "The network set cannot serve this request: %s", error
            ) from error
        return True

    def _make_source_provider(self) -> SourceProvider:
        if self.sources == "class":
            return ClassSourceProvider()
        directory = self._network_set_folder()
        try:
            provider = NetworkSourceProvider(directory, check_domain=self.out_of_domain != "force")
        except NetworkSetError as error:
            raise LoggedError(self.log, "Cannot use network set: %s", error) from error
        # The damping-envelope input needs CLASS's damping scale r_d.
        self.extra_args["compute damping scale"] = "yes"
        self.log.info(
            "Network set %s: sources %s on %d k values in [%.3g, %.3g] 1/Mpc",
            directory,
            ", ".join(provider.networks.metadata.sources),
            provider.k.size,
            provider.k[0],
            provider.k[-1],
        )
        provenance = provider.networks.metadata.provenance
        if provenance.get("experimental"):
            self.log.warning(
                "The network set is experimental: %s. Check a chain with "
                "`cosmicnet verify-chain`, or use `sources: class`.",
                provenance["experimental"],
            )
        self._report_accuracy(provenance.get("accuracy", {}))
        return provider

    def _network_set_folder(self) -> Path:
        """The set named by ``networks``, or with ``networks: null`` the fitting shipped set."""
        try:
            if self.networks:
                return resolve_network_set(self.networks)
            name, directory, rejected = choose_shipped_set(self.extra_args)
        except NetworkSetError as error:
            raise LoggedError(self.log, "Cannot use network set: %s", error) from error
        for other, reasons in rejected.items():
            self.log.info("Shipped set %r not taken: %s", other, "; ".join(reasons[:3]))
        fits = name not in rejected
        self.log.info(
            "networks: null: the shipped set %r%s",
            name,
            " (trained with these extra_args)"
            if fits
            else " (no shipped set fits these extra_args: its points fall back to CLASS)",
        )
        return directory

    def _report_accuracy(self, accuracy: dict) -> None:
        """Log the set's recorded validation; warn, naming the missed targets, if any."""
        for mode, report in accuracy.items():
            recorded = AccuracyReport.from_dict(report)
            figures = recorded.describe()
            what = "matter power" if mode == "matter" else f"{mode} non-linear"
            header = f"{recorded.n_cosmologies} test cosmologies ({what})"
            if recorded.meets_targets:
                self.log.info("Network set validated on %s: %s", header, figures)
            else:
                self.log.warning(
                    "The network set misses accuracy targets on %s: %s. Posteriors may be "
                    "biased; check with `cosmicnet validate` or use `sources: class`.",
                    header,
                    figures,
                )

    def calculate(self, state: dict, want_derived: bool = True, **params_values_dict) -> bool:
        """Cobaya's classy calculation; a network set unfit for the request stops the run.

        Cobaya turns ordinary exceptions into a zero likelihood, which would hide
        a missing source or k range behind -inf for every point.
        """
        if self._transfers is not None:
            slow_params, self.classy = self.provider.get_classnet_transfers()
            params_values_dict = {**slow_params, **params_values_dict}
        try:
            return super().calculate(state, want_derived, **params_values_dict)
        except NetworkSetError as error:
            raise LoggedError(
                self.log, "The network set cannot serve this request: %s", error
            ) from error

    def get_can_provide_params(self) -> list[str]:
        """classy's derived parameters plus ``cosmicnet_served`` (1: networks, 0: CLASS)."""
        return [*super().get_can_provide_params(), SERVED_PARAMETER]

    def get_step_timings(self) -> dict[str, float]:
        """Wall time [s] of each step of the last CLASS evaluation."""
        return dict(self.classy.last_timings)

    def close(self) -> None:
        """Free CLASS memory held by the theory and its source provider."""
        provider_close = getattr(self._provider, "close", None)
        if provider_close is not None:
            provider_close()
        super().close()
