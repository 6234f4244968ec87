"""Accuracy of ClassNet against full CLASS on cosmologies the networks never saw.

For every test cosmology both a plain classy object and a HookedClass (sources
from the network set) compute lensed C_l at identical settings.  Measured:
per-l spectrum errors (relative, and in units of the Planck error), plik_lite
delta-chi2 with A_planck re-fitted for each model, and Fisher estimates of the
posterior shifts those errors cause.  Plots are written by ``training.evaluation.plots``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cosmicnet_cobaya.hook.bridge import classy
from cosmicnet_cobaya.networks.accuracy import (
    CMB_FIGURES,
    L_RANGE,
    TT_TOLERANCE,
    AccuracyReport,
)
from cosmicnet_cobaya.networks.domain import LinearConstraint
from cosmicnet_cobaya.planck import BEST_FIT
from cosmicnet_cobaya.sources import SourceProvider
from training.evaluation.bao import BaoLike
from training.evaluation.covmat import read_covmat
from training.evaluation.fisher import ShiftEstimate, finite_difference_jacobian, posterior_shift
from training.evaluation.pairs import (
    SPECTRA,
    PairRunner,
    Spectra,
    ValidationSettings,
)
from training.evaluation.plik import A_PLANCK_SIGMA, PlikLite

log = logging.getLogger(__name__)

FISHER_STEPS = {
    "omega_b": 1e-4,
    "omega_cdm": 1e-3,
    "H0": 0.3,
    "logA": 0.01,
    "n_s": 0.004,
    "tau_reio": 0.005,
    "w0_fld": 0.02,
    "wa_fld": 0.05,
    "m_ncdm": 0.02,
}
"""Finite-difference steps (about a quarter of the Planck 1-sigma errors; for w0, wa and
m_ncdm, small against their Planck + BAO errors)."""
REFERENCE_POINT = {**BEST_FIT, "w0_fld": -1.0, "wa_fld": 0.0, "m_ncdm": 0.06}
"""Where the Fisher shift is first estimated: the Planck 2018 LCDM best fit, extended
to w0-wa and m_ncdm families at their LCDM limit."""
PRIMORDIAL = ("logA", "n_s")
"""Parameters of every Fisher matrix beside a family's varied ones."""
LCDM_PARAMS = ("omega_b", "omega_cdm", "H0", "tau_reio")
"""The varied parameters of the Planck LCDM family."""
TAU_REIO_PRIOR_SIGMA = 0.0073
"""Gaussian tau_reio prior standing in for Planck 2018 low-l EE."""


def cosmic_variance(dl: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-l cosmic-variance standard deviation of each spectrum (same units)."""
    ell = np.arange(len(dl["tt"]))
    modes = np.maximum(2 * ell + 1, 1)
    return {
        "tt": np.sqrt(2 / modes) * np.abs(dl["tt"]),
        "ee": np.sqrt(2 / modes) * np.abs(dl["ee"]),
        "te": np.sqrt(np.abs(dl["tt"] * dl["ee"] + dl["te"] ** 2) / modes),
        "pp": np.sqrt(2 / modes) * np.abs(dl["pp"]),
    }


def spectrum_errors(reference: Spectra, other: Spectra, l_min: int = 2) -> dict[str, np.ndarray]:
    """Per-l errors: relative for TT, EE, PP; TE relative to sqrt(TT EE)."""
    errors = {}
    for name in SPECTRA:
        ref = reference.dl[name][l_min:]
        diff = other.dl[name][l_min:] - ref
        if name == "te":
            scale = np.sqrt(np.abs(reference.dl["tt"][l_min:] * reference.dl["ee"][l_min:]))
        else:
            scale = np.abs(ref)
        errors[name] = diff / scale
    return errors


def errors_in_planck_units(plik: PlikLite, reference: Spectra, other: Spectra) -> dict[str, Any]:
    """Binned D_l differences divided by the plik_lite per-bin error, per spectrum."""
    result = {}
    for name in ("tt", "te", "ee"):
        diff = plik.binning[name] @ (other.dl[name] - reference.dl[name])[: plik.l_max + 1]
        result[name] = diff / plik.diagonal_error(name)
    return result


def errors_in_per_l_planck_units(
    plik: PlikLite, reference: Spectra, other: Spectra
) -> dict[str, np.ndarray]:
    """Unbinned D_l differences divided by the per-l Planck error, per spectrum.

    The paper's measure (its figures 6 and 7); NaN where plik_lite has no bin.
    """
    result = {}
    for name in ("tt", "te", "ee"):
        diff = (other.dl[name] - reference.dl[name])[: plik.l_max + 1]
        result[name] = diff / plik.per_l_error(name)
    return result


def delta_chi2(plik: PlikLite, reference: Spectra, other: Spectra) -> dict[str, float]:
    """plik_lite chi2 of both models with A_planck re-fitted for each."""
    a_ref, chi2_ref = plik.fit_calibration(plik.binned(reference.dl))
    a_net, chi2_net = plik.fit_calibration(plik.binned(other.dl))
    return {
        "chi2_class": chi2_ref,
        "chi2_network": chi2_net,
        "delta_chi2": chi2_net - chi2_ref,
        "A_planck_class": a_ref,
        "A_planck_network": a_net,
    }


def plik_fisher_inputs(
    runner: PairRunner,
    plik: PlikLite,
    point: Mapping[str, float],
    reference: np.ndarray,
    tau_prior_sigma: float = TAU_REIO_PRIOR_SIGMA,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Names, Jacobian and Gaussian prior widths of the plik_lite Fisher matrix at ``point``.

    Derivatives of the binned plik_lite model (and, with the runner's
    ``settings.bao``, of the BAO observables: :func:`data_vector`) by central
    differences with full CLASS for every parameter of :data:`FISHER_STEPS` in
    ``point``, plus the calibration A_planck (a nuisance with its prior;
    ``reference`` is the binned plik_lite model at ``point``); tau_reio has a
    Gaussian prior.
    """
    steps = {name: FISHER_STEPS[name] for name in FISHER_STEPS if name in point}

    def model(values: Mapping[str, float]) -> np.ndarray:
        return data_vector(plik, runner.class_spectra(values))

    jacobian = finite_difference_jacobian(model, point, steps)
    # Calibration: the data are compared with model / A_planck^2, so dm/dA = -2 m at A = 1
    # (BAO distances do not depend on it).
    calibration = np.zeros(jacobian.shape[0])
    calibration[: reference.size] = -2.0 * reference
    jacobian = np.column_stack([jacobian, calibration])
    names = (*steps, "A_planck")
    priors = np.full(len(names), np.inf)
    priors[-1] = A_PLANCK_SIGMA
    if "tau_reio" in steps:
        priors[list(steps).index("tau_reio")] = tau_prior_sigma
    return names, jacobian, priors


def joint_fisher_inputs(
    runner: PairRunner,
    plik: PlikLite,
    point: Mapping[str, float],
    reference: np.ndarray,
    tau_prior_sigma: float = TAU_REIO_PRIOR_SIGMA,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """:func:`plik_fisher_inputs` for the whole data vector ``reference``
    (:func:`data_vector` at ``point``), and its inverse covariance: plik_lite's,
    joined by the BAO-like block of ``runner.settings.bao`` when there is one."""
    names, jacobian, priors = plik_fisher_inputs(
        runner, plik, point, reference[: plik.data.size], tau_prior_sigma
    )
    return names, jacobian, priors, data_inverse_covariance(plik, runner.settings.bao, reference)


def fisher_reference(varied: Sequence[str] = LCDM_PARAMS) -> dict[str, float]:
    """:data:`REFERENCE_POINT` over logA, n_s and ``varied``, in :data:`FISHER_STEPS` order."""
    unknown = [name for name in varied if name not in FISHER_STEPS]
    if unknown:
        raise ValueError(f"no Fisher step for {unknown}: known are {sorted(FISHER_STEPS)}")
    wanted = set(varied) | set(PRIMORDIAL)
    return {name: REFERENCE_POINT[name] for name in FISHER_STEPS if name in wanted}


def fisher_shift(
    runner: PairRunner,
    plik: PlikLite,
    point: Mapping[str, float],
    tau_prior_sigma: float = TAU_REIO_PRIOR_SIGMA,
) -> ShiftEstimate:
    """Posterior shift caused by the network's spectrum errors at ``point``.

    The Fisher matrix is :func:`joint_fisher_inputs`'s, at the point completed
    with the best-fit logA and n_s.
    """
    full_point = {
        "logA": BEST_FIT["logA"],
        "n_s": BEST_FIT["n_s"],
        **{k: v for k, v in point.items() if k not in ("A_s",)},
    }
    pair = runner.spectra(full_point)
    reference = data_vector(plik, pair["class"])
    delta = data_vector(plik, pair["network"]) - reference
    names, jacobian, priors, inverse = joint_fisher_inputs(
        runner, plik, full_point, reference, tau_prior_sigma
    )
    return posterior_shift(names, jacobian, inverse, delta, priors)


def data_vector(plik: PlikLite, spectra: Spectra) -> np.ndarray:
    """The binned plik_lite model, then the BAO observables when the spectra carry them."""
    binned = plik.binned(spectra.dl)
    return binned if spectra.bao is None else np.concatenate([binned, spectra.bao])


def data_inverse_covariance(
    plik: PlikLite, bao: BaoLike | None, reference: np.ndarray
) -> np.ndarray:
    """plik_lite's inverse covariance, joined block-diagonally by the BAO-like one."""
    if bao is None:
        return plik.inverse_covariance
    size = plik.data.size
    inverse = np.zeros((reference.size, reference.size))
    inverse[:size, :size] = plik.inverse_covariance
    inverse[size:, size:] = bao.inverse_covariance(reference[size:])
    return inverse


def in_l_range(errors: np.ndarray) -> np.ndarray:
    """The part of per-l errors (which start at l = 2) inside :data:`L_RANGE`."""
    return errors[..., L_RANGE[0] - 2 : L_RANGE[1] - 1]


def target_report(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's headline figures against the CMB targets, with ``meets_targets``."""
    details = {}
    if "delta_chi2" in summary:
        details["delta_chi2_median"] = summary["delta_chi2"]["median"]
    figures = dict(summary)
    for measure in ("max_abs_error_in_planck_sigma", "max_abs_error_in_per_l_planck_sigma"):
        if measure in summary:
            figures[measure] = max(block["max"] for block in summary[measure].values())
    return AccuracyReport.from_figures(figures, CMB_FIGURES, **details).to_dict()


def fisher_points(
    test_points: Sequence[Mapping[str, float]],
    count: int,
    covmat: Path | None = None,
    seed: int = 0,
    domain: Mapping[str, Sequence[float]] | None = None,
    constraints: Sequence[LinearConstraint] = (),
) -> dict[str, dict[str, float]]:
    """Where to estimate the Fisher shift: :data:`REFERENCE_POINT`, then ``count - 1`` more.

    The others are test points (``test_i``) or, with ``covmat``, typical chain
    points (``chain_i``): draws from a Gaussian around the best fit with that
    covariance (over parameters of :data:`FISHER_STEPS`), the others held at
    the best fit. A draw outside ``domain`` (the network set's training box,
    where a chain would fall back to CLASS) or breaking one of its
    ``constraints`` is replaced by the next draw, so the points of a seed whose
    draws all lie inside are unchanged.
    """
    names = [name for name in test_points[0] if name in REFERENCE_POINT]
    held = {name: REFERENCE_POINT[name] for name in names}
    chosen = {"best_fit": dict(held)} if count > 0 else {}
    extra = max(0, count - 1)
    if covmat is None:
        chosen.update({f"test_{i}": dict(point) for i, point in enumerate(test_points[:extra])})
        return chosen
    covmat_names, matrix = read_covmat(covmat)
    unknown = sorted(set(covmat_names) - set(FISHER_STEPS))
    if unknown:
        raise ValueError(f"{covmat}: {unknown} are not among the Fisher parameters {FISHER_STEPS}")
    mean = np.array([REFERENCE_POINT[name] for name in covmat_names])
    bounds = {name: domain[name] for name in covmat_names if domain and name in domain}
    rng = np.random.default_rng(seed)
    outside = 0
    while len(chosen) < extra + 1:
        draw = dict(
            zip(covmat_names, map(float, rng.multivariate_normal(mean, matrix)), strict=True)
        )
        point = {**held, **draw}
        outside_box = any(not low <= draw[name] <= high for name, (low, high) in bounds.items())
        if outside_box or not all(constraint.holds(point) for constraint in constraints):
            outside += 1
            if outside > 100 * extra:
                raise ValueError(f"{covmat}: almost every draw lies outside the domain {bounds}")
            continue
        chosen[f"chain_{len(chosen) - 1}"] = point
    if outside:
        log.info("%d chain-point draws outside the training domain were drawn again", outside)
    return chosen


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Distribution summary of a list of numbers."""
    array = np.asarray(values, dtype=float)
    return {
        "min": float(array.min()),
        "median": float(np.median(array)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
    }


def point_record(
    point: Mapping[str, float], pair: Mapping[str, Any], plik: PlikLite | None
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """One point's record, its relative errors, and its errors in Planck units."""
    errors = spectrum_errors(pair["class"], pair["network"])
    record: dict[str, Any] = {"point": dict(point)}
    record["max_abs_error_l30_2500"] = {
        name: float(np.max(np.abs(in_l_range(errors[name])))) for name in SPECTRA
    }
    units: dict[str, Any] = {}
    if plik is not None:
        units["binned"] = errors_in_planck_units(plik, pair["class"], pair["network"])
        units["per_l"] = errors_in_per_l_planck_units(plik, pair["class"], pair["network"])
        record["max_abs_error_in_planck_sigma"] = {
            name: float(np.max(np.abs(values))) for name, values in units["binned"].items()
        }
        record["max_abs_error_in_per_l_planck_sigma"] = {
            name: float(np.nanmax(np.abs(values))) for name, values in units["per_l"].items()
        }
        record.update(delta_chi2(plik, pair["class"], pair["network"]))
    return record, errors, units


def summarise_points(
    per_point: Sequence[Mapping[str, Any]],
    all_errors: Sequence[Mapping[str, np.ndarray]],
    failed: Sequence[Mapping[str, Any]],
    settings: ValidationSettings,
    with_plik: bool,
) -> dict[str, Any]:
    """Headline figures over the points; a point CLASS failed on counts as a miss."""
    total = len(per_point) + len(failed)
    summary: dict[str, Any] = {
        "n_cosmologies": total,
        "n_failed": len(failed),
        "failed": list(failed),
        "settings": {
            "l_max": settings.l_max,
            "non_linear": settings.non_linear,
            "hmcode_stride": settings.hmcode_stride,
        },
        "points": list(per_point),
    }
    within = sum(bool(np.all(np.abs(in_l_range(e["tt"])) < TT_TOLERANCE)) for e in all_errors)
    summary["tt_fraction_within_0.3pct_l30_2500"] = within / total if total else 0.0
    if not per_point:
        return summary
    summary["max_abs_error_l30_2500"] = {
        name: summarise([r["max_abs_error_l30_2500"][name] for r in per_point]) for name in SPECTRA
    }
    if with_plik:
        summary["delta_chi2"] = summarise([r["delta_chi2"] for r in per_point])
        for measure in ("max_abs_error_in_planck_sigma", "max_abs_error_in_per_l_planck_sigma"):
            summary[measure] = {
                name: summarise([r[measure][name] for r in per_point])
                for name in ("tt", "te", "ee")
            }
    return summary


def fisher_summary(
    runner: PairRunner, plik: PlikLite, fisher_at: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    """Fisher shifts at each labelled point, and the largest of them."""
    shifts = {}
    for label, point in fisher_at.items():
        estimate = fisher_shift(runner, plik, point)
        shifts[label] = {"point": dict(point), "shifts": estimate.as_dict()}
    largest = max(
        abs(entry["shift_in_sigma"])
        for block in shifts.values()
        for entry in block["shifts"].values()
    )
    return {"fisher_shifts": shifts, "max_abs_shift_in_sigma": float(largest)}


def run_validation(
    provider: SourceProvider,
    settings: ValidationSettings,
    points: Sequence[Mapping[str, float]],
    plik: PlikLite | None,
    fisher_at: Mapping[str, Mapping[str, float]] | None = None,
    progress: bool = True,
    plot: Callable[[str, Any], None] | None = None,
) -> dict[str, Any]:
    """Compare the provider with full CLASS on ``points``; returns the summary.

    A point on which CLASS fails (either code) is recorded with its message and
    counted against the set.  ``fisher_at`` labels the points of the Fisher
    shift estimate (see :func:`fisher_points`); ``plot(kind, data)`` is called
    with the material of each figure.
    """
    runner = PairRunner(provider, settings)
    per_point: list[dict[str, Any]] = []
    all_errors: list[dict[str, np.ndarray]] = []
    units: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    try:
        for point in tqdm(points, desc="validate", disable=not progress):
            first = not per_point
            try:
                pair = runner.spectra(point, keep_sources=first)
            except (classy.CosmoComputationError, classy.CosmoSevereError) as error:
                failed.append({"point": dict(point), "error": str(error)})
                log.warning("CLASS failed at %s: %s", dict(point), error)
                continue
            if first:
                reference_dl = pair["class"].dl
                if plot is not None:
                    plot("sources", {"point": dict(point), **pair})
            record, errors, in_units = point_record(point, pair, plik)
            per_point.append(record)
            all_errors.append(errors)
            units.append(in_units)
        summary = summarise_points(per_point, all_errors, failed, settings, plik is not None)
        if plik is not None and fisher_at:
            summary.update(fisher_summary(runner, plik, fisher_at))
        if plot is not None and per_point:
            plot(
                "spectra",
                {
                    "errors": all_errors,
                    "reference_dl": reference_dl,
                    "planck_units": [u["binned"] for u in units if u],
                    "per_l_planck_units": [u["per_l"] for u in units if u],
                    "plik": plik,
                },
            )
        return summary
    finally:
        runner.close()
