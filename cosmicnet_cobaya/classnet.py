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


ACCURACY_FIGURES: tuple[tuple[str, str, str, bool], ...] = (
    ("tt_fraction_within_0.3pct_l30_2500", "TT within 0.3% for {} of them", "{:.0%}", True),
    (
        "max_abs_error_in_planck_sigma",
        "largest binned error {} of the plik_lite error",
        "{:.3f}",
        False,
    ),
    (
        "max_abs_error_in_per_l_planck_sigma",
        "largest per-l error {} of the Planck error",
        "{:.3f}",
        False,
    ),
    ("max_abs_shift_in_sigma", "largest Fisher shift {} sigma", "{:.3f}", False),
)
"""Recorded accuracy figures: key, wording, number format, whether larger is better."""


def describe_accuracy(report: dict) -> str:
    """The recorded figures of one validation, each with its target and whether it is met."""
    targets = report.get("targets", {})
    parts = []
    for key, wording, number, larger_is_better in ACCURACY_FIGURES:
        if key not in report:
            continue
        text = wording.format(number.format(report[key]))
        if key in targets:
            target = targets[key]
            met = report[key] >= target if larger_is_better else report[key] < target
            relation = ">=" if larger_is_better else "<"
            verdict = "met" if met else "MISSED"
            text += f" (target {relation} {number.format(target)}: {verdict})"
        parts.append(text)
    return ", ".join(parts)


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
        """Log the set's recorded validation; warn, naming the missed targets, if any."""
        for mode, report in accuracy.items():
            figures = describe_accuracy(report)
            header = f"{report.get('n_cosmologies')} test cosmologies ({mode} non-linear)"
            if report.get("meets_targets"):
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
