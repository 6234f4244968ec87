"""Matter-power accuracy of a network set against full CLASS: P(k, z), sigma8, S8.

The CMB validation never evaluates the matter sources (delta_m, delta_cb)
unless HMcode reads them; this one compares what users of large-scale
structure get: linear and non-linear P(k, z) on a k-z grid, sigma8 and
S8 = sigma8 sqrt(Omega_m / 0.3), the last two also in units of Planck's errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cosmicnet_cobaya.hook.bridge import classy
from cosmicnet_cobaya.hooked_class import HookedClass
from cosmicnet_cobaya.networks.accuracy import (
    MATTER_FIGURES,
    PK_LIN_TOLERANCE,
    PK_NL_TOLERANCE,
    AccuracyReport,
)
from cosmicnet_cobaya.sources import SourceProvider
from training.evaluation.pairs import OUTPUT_ONLY_KEYS, with_point

log = logging.getLogger(__name__)

PLANCK_SIGMA8 = (0.8111, 0.0060)
"""Planck 2018 TT,TE,EE+lowE+lensing sigma8: mean, standard deviation."""
PLANCK_S8 = (0.832, 0.013)
"""Planck 2018 TT,TE,EE+lowE+lensing S8: mean, standard deviation."""


@dataclass
class MatterSettings:
    """Where the matter power is compared."""

    extra_args: dict[str, Any]
    """Fixed CLASS settings (those the networks were trained with)."""
    non_linear: str = "hmcode"
    hmcode_stride: int = 1
    redshifts: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    k: np.ndarray = field(default_factory=lambda: np.geomspace(1e-4, 1.0, 60))
    """Wavenumbers [1/Mpc]."""
    primordial: dict[str, float] = field(default_factory=dict)

    def class_settings(self, point: Mapping[str, float]) -> dict[str, Any]:
        """Complete CLASS input for one point: P(k) to the largest k and redshift."""
        kept = {k: v for k, v in self.extra_args.items() if k not in OUTPUT_ONLY_KEYS}
        settings = {
            **kept,
            "output": "mPk",
            "P_k_max_1/Mpc": float(self.k[-1]) * 1.05,
            "z_max_pk": max(self.redshifts),
            "non_linear": self.non_linear,
            **self.primordial,
        }
        return with_point(settings, point)


def matter_products(cosmo: Any, settings: MatterSettings) -> dict[str, Any]:
    """P_lin and P_nl on (redshift, k), sigma8 and S8 of a computed object."""
    grid = [(z, k) for z in settings.redshifts for k in settings.k]
    shape = (len(settings.redshifts), settings.k.size)
    linear = np.array([cosmo.pk_lin(k, z) for z, k in grid]).reshape(shape)
    non_linear = np.array([cosmo.pk(k, z) for z, k in grid]).reshape(shape)
    sigma8 = float(cosmo.sigma8())
    omega_m = float(cosmo.Omega_m())
    return {
        "pk_lin": linear,
        "pk_nl": non_linear,
        "sigma8": sigma8,
        "S8": sigma8 * np.sqrt(omega_m / 0.3),
    }


def compare_point(reference: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Relative errors of one point's matter products."""
    errors = {
        name: other[name] / reference[name] - 1.0 for name in ("pk_lin", "pk_nl", "sigma8", "S8")
    }
    return {
        "errors": errors,
        "max_abs_pk_lin": float(np.max(np.abs(errors["pk_lin"]))),
        "max_abs_pk_nl": float(np.max(np.abs(errors["pk_nl"]))),
        "sigma8_rel_error": float(errors["sigma8"]),
        "S8_rel_error": float(errors["S8"]),
        "sigma8_in_planck_sigma": float((other["sigma8"] - reference["sigma8"]) / PLANCK_SIGMA8[1]),
        "S8_in_planck_sigma": float((other["S8"] - reference["S8"]) / PLANCK_S8[1]),
    }


def run_matter_validation(
    provider: SourceProvider,
    settings: MatterSettings,
    points: Sequence[Mapping[str, float]],
    progress: bool = True,
    out: Path | None = None,
) -> dict[str, Any]:
    """Compare P(k, z), sigma8 and S8 of the provider with full CLASS on ``points``.

    A point on which either code fails is recorded with CLASS's message and
    counted against the set.  With ``out``, the error figure is written there.
    """
    reference, hooked = classy.Class(), HookedClass()
    hooked.source_provider = provider
    hooked.on_decline = "reject"
    hooked.hmcode_stride = settings.hmcode_stride
    records, failed = [], []
    try:
        for point in tqdm(points, desc="validate matter", disable=not progress):
            try:
                products = [_computed(cosmo, settings, point) for cosmo in (reference, hooked)]
            except (classy.CosmoComputationError, classy.CosmoSevereError) as error:
                failed.append({"point": dict(point), "error": str(error)})
                log.warning("CLASS failed at %s: %s", dict(point), error)
                continue
            records.append({"point": dict(point), **compare_point(*products)})
    finally:
        for cosmo in (reference, hooked):
            cosmo.struct_cleanup()
    summary = summarise_matter(records, failed, settings)
    if out is not None and records:
        path = plot_matter_errors([r["errors"] for r in records], settings, out)
        summary["figures"] = [path.name]
    return summary


def _computed(cosmo: Any, settings: MatterSettings, point: Mapping[str, float]) -> dict:
    cosmo.empty()
    cosmo.set(settings.class_settings(point))
    cosmo.compute()
    return matter_products(cosmo, settings)


def summarise_matter(
    records: Sequence[Mapping[str, Any]],
    failed: Sequence[Mapping[str, Any]],
    settings: MatterSettings,
) -> dict[str, Any]:
    """Headline figures (failures count against the fractions) and per-z error envelopes."""
    total = len(records) + len(failed)
    lin = np.array([r["max_abs_pk_lin"] for r in records])
    nl = np.array([r["max_abs_pk_nl"] for r in records])
    summary: dict[str, Any] = {
        "n_cosmologies": total,
        "n_failed": len(failed),
        "failed": list(failed),
        "redshifts": list(settings.redshifts),
        "k_range": [float(settings.k[0]), float(settings.k[-1])],
        "non_linear": settings.non_linear,
        "pk_lin_fraction_within_0.5pct": float(np.sum(lin < PK_LIN_TOLERANCE) / max(total, 1)),
        "pk_nl_fraction_within_1pct": float(np.sum(nl < PK_NL_TOLERANCE) / max(total, 1)),
    }
    if records:
        summary.update(
            {
                "pk_lin_max_abs_rel_error": {
                    "median": float(np.median(lin)),
                    "max": float(lin.max()),
                },
                "pk_nl_max_abs_rel_error": {"median": float(np.median(nl)), "max": float(nl.max())},
                "sigma8_max_abs_rel_error": max(abs(r["sigma8_rel_error"]) for r in records),
                "S8_max_abs_rel_error": max(abs(r["S8_rel_error"]) for r in records),
                "sigma8_max_abs_in_planck_sigma": max(
                    abs(r["sigma8_in_planck_sigma"]) for r in records
                ),
                "S8_max_abs_in_planck_sigma": max(abs(r["S8_in_planck_sigma"]) for r in records),
            }
        )
    summary["points"] = [
        {key: value for key, value in record.items() if key != "errors"} for record in records
    ]
    report = AccuracyReport.from_figures(summary, MATTER_FIGURES)
    summary["targets"] = report.targets
    summary["meets_targets"] = report.meets_targets
    return summary


def plot_matter_errors(
    records_errors: Sequence[Mapping[str, np.ndarray]], settings: MatterSettings, out: Path
) -> Path:
    """dP/P against k per redshift, linear and non-linear, every cosmology."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(settings.redshifts), figsize=(14, 6), sharex=True, sharey="row")
    for row, (name, limit) in enumerate((("pk_lin", 5e-3), ("pk_nl", 1e-2))):
        for column, z in enumerate(settings.redshifts):
            ax = axes[row, column]
            for errors in records_errors:
                ax.plot(settings.k, errors[name][column], lw=0.5, alpha=0.6, color="C0")
            ax.axhspan(-limit, limit, color="0.85", zorder=0)
            ax.set_xscale("log")
            ax.set_title(f"{'linear' if row == 0 else 'non-linear'} P(k), z = {z:g}")
            if column == 0:
                ax.set_ylabel("ClassNet / CLASS - 1")
            if row == 1:
                ax.set_xlabel("k [1/Mpc]")
    fig.tight_layout()
    path = out / "matter_power_errors.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
