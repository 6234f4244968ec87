"""The Cobaya theory ``cosmicnet_cobaya.ClassNet``.

A subclass of Cobaya's ``classy`` theory: CLASS still computes background,
thermodynamics, transfer, harmonic and lensing (so every classy product and
derived parameter works); only the perturbation step takes its sources from a
provider: trained networks (``sources: network``) or a private full CLASS run
(``sources: class``, the validation mode).
"""

from __future__ import annotations

from pathlib import Path

from cobaya.log import LoggedError
from cobaya.theories.classy import classy

from cosmicnet_cobaya.hooked_class import SERVED_PARAMETER, HookedClass
from cosmicnet_cobaya.networks.network_set import NetworkSetError
from cosmicnet_cobaya.networks.provider import NetworkSourceProvider
from cosmicnet_cobaya.sources import ClassSourceProvider, SourceProvider

SOURCE_MODES = ("network", "class")
OUT_OF_DOMAIN_POLICIES = ("fallback", "reject", "force")
DEFAULT_NETWORKS = Path(__file__).resolve().parent / "data" / "default_networks"
"""The network set used with ``networks: null`` (not shipped yet)."""


class ClassNet(classy):
    """CLASS with neural-network source functions, as a Cobaya theory."""

    sources: str
    networks: str | None
    out_of_domain: str

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
        provider = self._make_source_provider()
        super().initialize()
        self.classy = HookedClass()
        self.classy.source_provider = provider
        self.classy.on_decline = "reject" if self.out_of_domain == "reject" else "fallback"
        self.log.info("Source functions from: %s", self.sources)

    def _make_source_provider(self) -> SourceProvider:
        if self.sources == "class":
            return ClassSourceProvider()
        directory = Path(self.networks) if self.networks else DEFAULT_NETWORKS
        if not self.networks and not (directory / "metadata.json").is_file():
            raise LoggedError(
                self.log,
                "sources: network with networks: null uses the default network set "
                "%s, which is not installed. Train one with `cosmicnet train CONFIG "
                "--data DIR --out NETDIR` and set `networks: NETDIR`, or use "
                "`sources: class`.",
                directory,
            )
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
        self._report_accuracy(provider.networks.metadata.provenance.get("accuracy", {}))
        return provider

    def _report_accuracy(self, accuracy: dict) -> None:
        """Log the set's recorded validation; warn when it misses the accuracy targets."""
        for mode, report in accuracy.items():
            within = 100 * report.get("tt_fraction_within_0.3pct_l30_2500", 0.0)
            parts = [
                f"{report.get('n_cosmologies')} test cosmologies ({mode} non-linear): TT within "
                f"0.3% for {within:.0f}% of them"
            ]
            if "max_abs_error_in_per_l_planck_sigma" in report:
                per_l = report["max_abs_error_in_per_l_planck_sigma"]
                parts.append(f"largest error {per_l:.3f} of the per-l Planck error")
            if "max_abs_shift_in_sigma" in report:
                parts.append(f"largest Fisher shift {report['max_abs_shift_in_sigma']:.2f} sigma")
            figures = ", ".join(parts)
            if report.get("meets_targets"):
                self.log.info("Network set validated on %s", figures)
            else:
                self.log.warning(
                    "The network set misses its accuracy targets (%s): posteriors may be "
                    "biased; check with `cosmicnet validate` or use `sources: class`.",
                    figures,
                )

    def calculate(self, state: dict, want_derived: bool = True, **params_values_dict) -> bool:
        """Cobaya's classy calculation; a network set unfit for the request stops the run.

        Cobaya turns ordinary exceptions into a zero likelihood, which would hide
        a missing source or k range behind -inf for every point.
        """
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
        provider_close = getattr(self.classy.source_provider, "close", None)
        if provider_close is not None:
            provider_close()
        super().close()
