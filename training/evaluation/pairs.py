"""CLASS and ClassNet side by side: the settings of a comparison and the runner of pairs.

A plain classy object and a HookedClass (sources from a provider) compute
lensed C_l at identical settings for each point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc

from cosmicnet_cobaya.classnet import ClassNet
from cosmicnet_cobaya.hook.bridge import classy, read_sources
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.networks.accuracy import (
    L_MAX,
)
from cosmicnet_cobaya.networks.domain import LinearConstraint
from cosmicnet_cobaya.planck import BEST_FIT
from cosmicnet_cobaya.sources import SourceProvider
from training.evaluation.bao import BaoLike

SPECTRA = ("tt", "te", "ee", "pp")


OUTPUT_ONLY_KEYS = ("output", "lensing", "l_max_scalars", "non_linear")


@dataclass
class Spectra:
    """Lensed D_l = l(l+1)C_l/2pi [muK^2] for TT, TE, EE, and C_l^pp, from l = 0."""

    dl: dict[str, np.ndarray]
    bao: np.ndarray | None = None
    """BAO observables (``ValidationSettings.bao``), when asked for."""

    @classmethod
    def from_classy(cls, cosmo: Any, l_max: int, bao: BaoLike | None = None) -> Spectra:
        """Read a computed classy object's lensed spectra (and BAO observables)."""
        raw = cosmo.lensed_cl(l_max)
        ell = np.arange(l_max + 1)
        factor = ell * (ell + 1) / (2 * np.pi) * (cosmo.T_cmb() * 1e6) ** 2
        dl = {name: raw[name][: l_max + 1] * factor for name in ("tt", "te", "ee")}
        dl["pp"] = np.array(raw["pp"][: l_max + 1])
        return cls(dl, None if bao is None else bao.observables(cosmo))


@dataclass
class ValidationSettings:
    """What the comparison computes."""

    extra_args: dict[str, Any]
    """Fixed CLASS settings (those the networks were trained with)."""
    l_max: int = L_MAX
    non_linear: str = "hmcode"
    hmcode_stride: int = field(default_factory=lambda: ClassNet.get_defaults()["hmcode_stride"])
    """HMcode on every n-th source time before the output redshifts (ClassNet's default)."""
    primordial: dict[str, float] = field(
        default_factory=lambda: {"A_s": 1e-10 * np.exp(BEST_FIT["logA"]), "n_s": BEST_FIT["n_s"]}
    )
    bao: BaoLike | None = None
    """A BAO-like likelihood joined to plik_lite in the Fisher estimates (None: CMB only)."""

    @classmethod
    def for_network_set(
        cls,
        metadata: Any,
        non_linear: str,
        l_max: int | None = None,
        hmcode_stride: int | None = None,
    ) -> ValidationSettings:
        """The fixed CLASS settings and l_max a network set was trained with."""
        settings = cls(
            extra_args=dict(metadata.provenance.get("class_precision", {})),
            l_max=l_max or int(metadata.provenance.get("l_max", L_MAX)),
            non_linear=non_linear,
        )
        if hmcode_stride is not None:
            settings.hmcode_stride = hmcode_stride
        return settings

    def class_settings(self, point: Mapping[str, float]) -> dict[str, Any]:
        """Complete CLASS input for one point (A_s from logA when given)."""
        settings = {k: v for k, v in self.extra_args.items() if k not in OUTPUT_ONLY_KEYS}
        settings.update(
            output="tCl,pCl,lCl",
            lensing="yes",
            l_max_scalars=self.l_max,
            non_linear=self.non_linear,
        )
        settings.update(self.primordial)
        return with_point(settings, point)


def with_point(settings: Mapping[str, Any], point: Mapping[str, float]) -> dict[str, Any]:
    """CLASS input: ``settings`` with the point's parameters (A_s from logA when given)."""
    inputs = dict(settings)
    values = dict(point)
    if "logA" in values:
        inputs["A_s"] = 1e-10 * np.exp(values.pop("logA"))
    inputs.update(values)
    return inputs


MAX_DRAW_ROUNDS = 100
"""Hypercubes :func:`draw_points` draws before it gives up on the constraints."""


def draw_points(
    domain: Mapping[str, Sequence[float]],
    count: int,
    seed: int,
    constraints: Sequence[LinearConstraint] = (),
) -> list[dict[str, float]]:
    """Latin-hypercube points inside a box domain that meet its linear ``constraints``.

    Hypercubes of ``count`` points are drawn in rounds from one seeded sampler
    and the points breaking a constraint dropped; without constraints the
    first hypercube is the result.
    """
    names = list(domain)
    sampler = qmc.LatinHypercube(d=len(names), seed=seed)
    lows = np.array([domain[name][0] for name in names])
    highs = np.array([domain[name][1] for name in names])
    points: list[dict[str, float]] = []
    for _ in range(MAX_DRAW_ROUNDS):
        for row in qmc.scale(sampler.random(count), lows, highs):
            point = dict(zip(names, map(float, row), strict=True))
            if all(constraint.holds(point) for constraint in constraints):
                points.append(point)
        if len(points) >= count:
            return points[:count]
    raise ValueError(
        f"{MAX_DRAW_ROUNDS} hypercubes gave {len(points)} of {count} points meeting "
        f"{[constraint.describe() for constraint in constraints]}"
    )


def computed_spectra(
    cosmo: Any, settings: ValidationSettings, point: Mapping[str, float]
) -> Spectra:
    """Lensed spectra of a classy (or hooked) object run at ``point``."""
    cosmo.empty()
    cosmo.set(settings.class_settings(point))
    cosmo.compute()
    return Spectra.from_classy(cosmo, settings.l_max, settings.bao)


class FullClass:
    """Full CLASS spectra at a validation's settings (for derivatives)."""

    def __init__(self, settings: ValidationSettings) -> None:
        self.settings = settings
        self.cosmo = classy.Class()

    def class_spectra(self, point: Mapping[str, float]) -> Spectra:
        """Lensed spectra of full CLASS at ``point``."""
        return computed_spectra(self.cosmo, self.settings, point)

    def close(self) -> None:
        """Free CLASS's memory."""
        self.cosmo.struct_cleanup()
        self.cosmo.empty()


class PairRunner:
    """Computes one point with full CLASS and with the provider's sources."""

    def __init__(self, provider: SourceProvider, settings: ValidationSettings) -> None:
        self.settings = settings
        self.reference = FullClass(settings)
        self.hooked = HookedClass()
        self.hooked.source_provider = provider
        self.hooked.on_decline = "reject"
        self.hooked.hmcode_stride = settings.hmcode_stride

    def spectra(self, point: Mapping[str, float], keep_sources: bool = False) -> dict[str, Any]:
        """Spectra of both codes at ``point`` (and their sources when asked)."""
        result: dict[str, Any] = {}
        for label, cosmo in (("class", self.reference.cosmo), ("network", self.hooked)):
            result[label] = computed_spectra(cosmo, self.settings, point)
            if keep_sources:
                k, tau, sources = read_sources(getattr(cosmo, "cosmo", cosmo))
                result[f"{label}_sources"] = {"k": k, "tau": tau, **sources}
        return result

    def class_spectra(self, point: Mapping[str, float]) -> Spectra:
        """Full CLASS spectra only (for derivatives)."""
        return self.reference.class_spectra(point)

    def network_spectra(self, point: Mapping[str, float]) -> Spectra:
        """The provider's spectra only (when the full-CLASS ones are already known)."""
        return computed_spectra(self.hooked, self.settings, point)

    def close(self) -> None:
        """Free both objects' CLASS memory."""
        self.reference.close()
        self.hooked.struct_cleanup()
        self.hooked.empty()
