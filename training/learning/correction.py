"""Fitting residual corrections (:mod:`cosmicnet_cobaya.networks.correction`).

For each generated cosmology the network's prediction (averaged over its
references, as at inference) is subtracted from CLASS's source on the rows the
network serves; the residual is interpolated onto a fixed grid of x = tau / tau_rec
and regressed, pixel by pixel, on the monomials of the scaled parameters (least
squares through accumulated normal equations, so memory does not grow with the
number of cosmologies).  The normal equations can be saved and added to a later
fit, so data generated on several machines is fitted together without moving it.
The coefficients are stored as a truncated singular-value factorisation.  Every
``holdout_every``-th cosmology is left out of the fit and measures what the
correction removes, on CLASS's own rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from cosmicnet_cobaya.features import k_bases
from cosmicnet_cobaya.networks.correction import (
    CORRECTION_SUFFIX,
    MODES,
    LinearInterpolation,
    ResidualCorrection,
    monomial_powers,
    monomials,
)
from cosmicnet_cobaya.networks.network_set import NetworkSet
from training.generation.dataset import Cosmology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorrectionSettings:
    """What ``cosmicnet correct`` fits."""

    parameters: tuple[str, ...] = ("omega_b", "omega_cdm")
    degree: int = 3
    x_size: int = 200
    k_max: float = 0.4
    max_rank: int = 128
    tolerance: float = 1e-4
    """Rank: the smallest keeping all but this fraction of the coefficients' squared norm."""
    holdout_every: int = 10
    ridge: float = 1e-10
    """Relative ridge term on the normal equations (keeps them solvable)."""
    mode: str = "additive"
    """What is fitted (:data:`~cosmicnet_cobaya.networks.correction.MODES`): CLASS minus
    network, CLASS / network - 1, or ln|CLASS| (an emulator of the source itself)."""
    x_spacing: str = "linear"
    """``linear`` or ``geometric`` spacing of the x grid."""
    x_min: float = 0.0
    """The x grid starts no earlier than this (rows before it are not corrected)."""
    end_margin: float = 0.1
    """For networks serving up to today: the x grid ends this fraction beyond the
    first cosmology's last row (x = tau_0 / tau_rec varies across the box)."""


SUMS_SUFFIX = ".sums.npz"


@dataclass(frozen=True)
class HeldOut:
    """A cosmology left out of a fit: its rows' x, CLASS's source and the network's."""

    params: dict[str, float]
    x: np.ndarray
    truth: np.ndarray
    predicted: np.ndarray


@dataclass
class NormalEquations:
    """One network's accumulated normal equations, and its held-out residuals.

    The Gram matrix of the monomials is shared by every pixel of the (x, k)
    grid; ``moments`` holds, per pixel, the monomials times the residual.
    ``save`` / ``load`` keep everything but the held-out residuals.
    """

    x: np.ndarray
    k_size: int
    n_terms: int
    gram: np.ndarray = field(init=False)
    moments: np.ndarray = field(init=False)
    fitted: int = 0
    held_out: list[HeldOut] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    """The saved files these sums were loaded from (:meth:`load`, :meth:`add`)."""

    def __post_init__(self) -> None:
        self.gram = np.zeros((self.n_terms, self.n_terms))
        self.moments = np.zeros((self.n_terms, self.x.size, self.k_size))

    def save(self, path: Path, fingerprint: Mapping[str, Any]) -> None:
        """Write the sums to ``path`` (NumPy format) with the fit's ``fingerprint``."""
        np.savez(
            path,
            x=self.x,
            gram=self.gram,
            moments=self.moments,
            fitted=np.array(self.fitted),
            fingerprint=np.array(json.dumps(fingerprint, sort_keys=True)),
        )

    def add(self, other: NormalEquations) -> None:
        """Add another fit's sums (same kind of fit, same x grid) to these."""
        if other.moments.shape != self.moments.shape or not np.allclose(
            other.x, self.x, rtol=1e-12, atol=0.0
        ):
            raise ValueError(f"sums of another grid: {'; '.join(other.sources) or 'unsaved'}")
        self.gram += other.gram
        self.moments += other.moments
        self.fitted += other.fitted
        self.sources.extend(other.sources)

    @classmethod
    def load(cls, path: Path, fingerprint: Mapping[str, Any]) -> NormalEquations:
        """Read sums written by :meth:`save`; they must come from the same kind of fit."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                saved = json.loads(str(stored["fingerprint"]))
                x, gram, moments = stored["x"], stored["gram"], stored["moments"]
                fitted = int(stored["fitted"])
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"cannot read the sums {path}: {error}") from error
        expected = json.loads(json.dumps(fingerprint, sort_keys=True))
        if saved != expected:
            differ = sorted(k for k in {*saved, *expected} if saved.get(k) != expected.get(k))
            raise ValueError(f"the sums {path} come from another fit (differs in {differ})")
        equations = cls(x, moments.shape[2], gram.shape[0])
        if moments.shape != equations.moments.shape or not np.all(np.isfinite(moments)):
            raise ValueError(f"the sums {path} are corrupt (shape {moments.shape})")
        equations.gram, equations.moments, equations.fitted = gram, moments, fitted
        equations.sources.append(f"{path} ({fitted} cosmologies)")
        return equations


def sums_fingerprint(
    network_set: NetworkSet, name: str, settings: CorrectionSettings
) -> dict[str, Any]:
    """What must agree between sums that are added together."""
    centre, scale = _centre_and_scale(network_set.metadata.domain, settings.parameters)
    return {
        "network": name,
        "parameters": list(settings.parameters),
        "degree": settings.degree,
        "x_size": settings.x_size,
        "x_min": settings.x_min,
        "k_max": settings.k_max,
        "mode": settings.mode,
        "x_spacing": settings.x_spacing,
        "end_margin": settings.end_margin,
        "k": [float(v) for v in network_set.k],
        "centre": [float(v) for v in centre],
        "scale": [float(v) for v in scale],
    }


def save_sums(
    directory: Path,
    network_set: NetworkSet,
    equations: Mapping[str, NormalEquations],
    settings: CorrectionSettings,
) -> None:
    """Write each network's sums to ``directory/<name>.sums.npz``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, sums in equations.items():
        sums.save(directory / f"{name}{SUMS_SUFFIX}", sums_fingerprint(network_set, name, settings))


def load_sums(
    directories: Sequence[Path],
    network_set: NetworkSet,
    names: Sequence[str],
    settings: CorrectionSettings,
) -> dict[str, NormalEquations]:
    """The sums of ``names`` saved in each of ``directories``, added together."""
    total: dict[str, NormalEquations] = {}
    for directory in directories:
        for name in names:
            path = directory / f"{name}{SUMS_SUFFIX}"
            if not path.exists():
                raise ValueError(f"{directory} has no sums of {name} ({path.name})")
            sums = NormalEquations.load(path, sums_fingerprint(network_set, name, settings))
            if name in total:
                total[name].add(sums)
            else:
                total[name] = sums
    return total


def network_rows(
    network_set: NetworkSet, name: str, cosmology: Cosmology, bases: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = tau / tau_rec of the rows network ``name`` serves, CLASS's source and the network's."""
    entry = network_set.metadata.networks[name]
    mask, predicted = network_set.predict(name, cosmology.features, bases)
    truth = cosmology.targets[entry.source][mask]
    x = cosmology.features.tau[mask] / cosmology.features.scalars["tau_rec"]
    return x, truth, predicted


def fitted_quantity(mode: str, truth: np.ndarray, predicted: np.ndarray, name: str) -> np.ndarray:
    """What a correction of ``mode`` fits: CLASS - network, CLASS / network - 1, ln|CLASS|."""
    if mode == "additive":
        return truth - predicted
    zeros = truth if mode == "log" else predicted
    if np.any(zeros == 0.0):
        which = "CLASS's source" if mode == "log" else "the network"
        raise ValueError(f"{which} of {name} has zeros: a {mode} correction cannot fit it")
    if mode == "relative":
        return truth / predicted - 1.0
    if mode == "log":
        wrong = np.count_nonzero(np.sign(truth) != np.sign(predicted))
        if wrong:
            raise ValueError(
                f"the network {name} has the wrong sign at {wrong} pixels, and a log "
                "correction takes its sign from the network: raise --x-min"
            )
        return np.log(np.abs(truth))
    raise ValueError(f"unknown correction mode {mode!r}: use one of {MODES}")


def _x_grid(end: float | None, rows_x: np.ndarray, settings: CorrectionSettings) -> np.ndarray:
    """The x grid of a network's correction: its first row to its range's end.

    A network serving up to today has no end: its grid runs ``end_margin`` beyond
    the last row of the cosmology at hand.
    """
    last = float(end) if end is not None else float(rows_x[-1]) * (1.0 + settings.end_margin)
    first = max(float(rows_x[0]), settings.x_min)
    if first >= last:
        raise ValueError(f"x_min = {settings.x_min} lies beyond the rows the network serves")
    if settings.x_spacing == "geometric":
        return np.geomspace(first, last, settings.x_size)
    if settings.x_spacing == "linear":
        return np.linspace(first, last, settings.x_size)
    raise ValueError(f"unknown x spacing {settings.x_spacing!r}: use linear or geometric")


def _on_grid(
    rows_x: np.ndarray, values: np.ndarray, grid: np.ndarray, extend: bool, cubic: bool = False
) -> np.ndarray:
    """``values`` on the rows interpolated onto ``grid`` (linearly, or with ``cubic`` by a
    cubic spline, which leaves no kinks at the rows): zero beyond the rows, or with
    ``extend`` continued linearly from the last two rows (grid points past today in a
    network that serves up to today)."""
    if cubic:
        inside = (grid >= rows_x[0]) & (grid <= rows_x[-1])
        result = np.zeros((grid.size, *values.shape[1:]))
        result[inside] = CubicSpline(rows_x, values, axis=0)(grid[inside])
    else:
        result = LinearInterpolation.between(rows_x, grid)(values)
    if extend:
        beyond = grid > rows_x[-1]
        slope = (values[-1] - values[-2]) / (rows_x[-1] - rows_x[-2])
        result[beyond] = values[-1] + np.outer(grid[beyond] - rows_x[-1], slope)
    return result


def accumulate(
    network_set: NetworkSet,
    names: Sequence[str],
    cosmologies: Iterable[Cosmology],
    settings: CorrectionSettings,
    progress: Callable[[Iterable[Cosmology]], Iterable[Cosmology]] = lambda items: items,
    start: Mapping[str, NormalEquations] | None = None,
) -> dict[str, NormalEquations]:
    """Normal equations of a correction for each network in ``names``.

    The x grid of each runs from the first row the network serves in the first
    cosmology to the end of its tau range (:func:`_x_grid`); sums in ``start``
    (from :meth:`NormalEquations.load`) are added to, on their grid.
    """
    metadata = network_set.metadata
    for name in names:
        if name not in metadata.networks:
            known = sorted(metadata.networks)
            raise ValueError(f"the set has no network {name!r} (it has {known})")
        if name in network_set.corrections:
            raise ValueError(f"network {name!r} already has a correction: fit on a set without")
    missing = [p for p in settings.parameters if p not in metadata.param_names]
    if missing:
        raise ValueError(f"parameters {missing} are not among the set's {metadata.param_names}")
    k_size = int(np.searchsorted(network_set.k, settings.k_max, side="right"))
    n_terms = len(monomial_powers(len(settings.parameters), settings.degree))
    accumulators = {name: sums for name, sums in (start or {}).items() if name in names}
    centre, scale = _centre_and_scale(metadata.domain, settings.parameters)
    for count, cosmology in enumerate(progress(cosmologies)):
        features = cosmology.features
        values = np.array([features.params[p] for p in settings.parameters])
        terms = monomials((values - centre) / scale, settings.degree)
        bases = k_bases(features, network_set.k)
        for name in names:
            rows_x, truth, predicted = network_rows(network_set, name, cosmology, bases)
            if rows_x.size < 2:
                continue  # the network serves (almost) no slice of this cosmology
            truth, predicted = truth[:, :k_size], predicted[:, :k_size]
            end = metadata.networks[name].tau_range[1]
            if name not in accumulators:
                x = _x_grid(end, rows_x, settings)
                accumulators[name] = NormalEquations(x, k_size, n_terms)
            acc = accumulators[name]
            # rows before the grid are not corrected (one is kept to interpolate from)
            first = max(int(np.searchsorted(rows_x, acc.x[0], side="right")) - 1, 0)
            rows_x, truth, predicted = rows_x[first:], truth[first:], predicted[first:]
            if settings.holdout_every and count % settings.holdout_every == 0:
                kept = rows_x >= acc.x[0]
                acc.held_out.append(
                    HeldOut(dict(features.params), rows_x[kept], truth[kept], predicted[kept])
                )
                continue
            quantity = fitted_quantity(settings.mode, truth, predicted, name)
            on_grid = _on_grid(
                rows_x, quantity, acc.x, extend=end is None, cubic=settings.mode == "log"
            )
            acc.gram += np.outer(terms, terms)
            acc.moments += terms[:, None, None] * on_grid
            acc.fitted += 1
    if not accumulators:
        raise ValueError("no cosmologies to fit on")
    return accumulators


def solve(
    network_set: NetworkSet,
    equations: Mapping[str, NormalEquations],
    settings: CorrectionSettings,
) -> dict[str, ResidualCorrection]:
    """The correction of each network from its normal equations."""
    centre, scale = _centre_and_scale(network_set.metadata.domain, settings.parameters)
    return {name: _solve(name, acc, settings, centre, scale) for name, acc in equations.items()}


def fit_corrections(
    network_set: NetworkSet,
    names: Sequence[str],
    cosmologies: Iterable[Cosmology],
    settings: CorrectionSettings,
    progress: Callable[[Iterable[Cosmology]], Iterable[Cosmology]] = lambda items: items,
) -> dict[str, ResidualCorrection]:
    """Fit a correction for each network in ``names`` on ``cosmologies``."""
    equations = accumulate(network_set, names, cosmologies, settings, progress)
    return solve(network_set, equations, settings)


def _centre_and_scale(
    domain: dict[str, list[float]], parameters: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-width of the training domain in each parameter."""
    if any(p not in domain for p in parameters):
        raise ValueError(f"the set's domain lacks bounds for some of {list(parameters)}")
    bounds = np.array([domain[p] for p in parameters], dtype=float)
    return bounds.mean(axis=1), 0.5 * (bounds[:, 1] - bounds[:, 0])


def _solve(
    name: str,
    acc: NormalEquations,
    settings: CorrectionSettings,
    centre: np.ndarray,
    scale: np.ndarray,
) -> ResidualCorrection:
    if acc.fitted < 2 * acc.n_terms:
        raise ValueError(
            f"{acc.fitted} cosmologies cannot fit {acc.n_terms} terms for {name}: "
            "generate more, or lower --degree"
        )
    gram = acc.gram + settings.ridge * np.trace(acc.gram) * np.eye(acc.n_terms)
    coefficients = np.linalg.solve(gram, acc.moments.reshape(acc.n_terms, -1))
    matrix = coefficients.reshape(acc.n_terms * acc.x.size, acc.k_size)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    kept = 1.0 - np.cumsum(s**2) / np.sum(s**2)
    rank = int(min(settings.max_rank, np.searchsorted(-kept, -settings.tolerance) + 1))
    left = (u[:, :rank] * s[:rank]).reshape(acc.n_terms, acc.x.size, rank)
    correction = ResidualCorrection(
        parameters=tuple(settings.parameters),
        centre=tuple(float(v) for v in centre),
        scale=tuple(float(v) for v in scale),
        degree=settings.degree,
        x=acc.x,
        left=left.astype(np.float32),
        right=vt[:rank].astype(np.float32),
        file=f"{name}{CORRECTION_SUFFIX}",
        mode=settings.mode,
    )
    before, after = _held_out_rms(correction, acc.held_out)
    fitted = {
        "cosmologies": acc.fitted,
        "held_out": len(acc.held_out),
        "degree": settings.degree,
        "rank": rank,
        "truncated_fraction": float(kept[rank - 1]),
        "x_range": [float(acc.x[0]), float(acc.x[-1])],
        "k_max": float(settings.k_max),
        "mode": settings.mode,
        "held_out_rms_before": before if acc.held_out else None,
        "held_out_rms_after": after if acc.held_out else None,
        **({"sums_added": acc.sources} if acc.sources else {}),
    }
    log.info(
        "%s: %d cosmologies, rank %d; held-out residual rms %.3g -> %.3g (%.0f %% left)",
        name, acc.fitted, rank, before, after, 100 * after / before if before else 0.0,
    )  # fmt: skip
    return dataclasses.replace(correction, fitted=fitted)


def _held_out_rms(correction: ResidualCorrection, held_out: list[HeldOut]) -> tuple[float, float]:
    """rms error of the held-out cosmologies without and with the correction (CLASS's
    rows): absolute for an additive correction, relative otherwise."""
    if not held_out:
        return float("nan"), float("nan")
    scale = 1.0 if correction.mode == "additive" else None
    squares, count = np.zeros(2), 0
    for cosmology in held_out:
        corrected = np.array(cosmology.predicted, dtype=float)
        correction.add_to(corrected, cosmology.params, cosmology.x)
        norm = cosmology.truth if scale is None else scale
        for slot, values in enumerate((cosmology.predicted, corrected)):
            squares[slot] += float(np.sum(((cosmology.truth - values) / norm) ** 2))
        count += cosmology.truth.size
    before, after = np.sqrt(squares / count)
    return float(before), float(after)
