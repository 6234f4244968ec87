"""Comparison of two posteriors (e.g. ClassNet vs classy chains) with getdist."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
from getdist import loadMCSamples, plots


@dataclass(frozen=True)
class ParameterShift:
    """Mean and width of one parameter in both chains, and their difference."""

    name: str
    mean_a: float
    mean_b: float
    sigma_a: float
    sigma_b: float

    @property
    def mean_shift_in_sigma(self) -> float:
        """(mean_a - mean_b) / sigma_b."""
        return (self.mean_a - self.mean_b) / self.sigma_b

    @property
    def sigma_ratio(self) -> float:
        """sigma_a / sigma_b."""
        return self.sigma_a / self.sigma_b


def load_samples(root: str | Path, burn_in: float) -> Any:
    """getdist samples of a Cobaya chain root (``chains/name``)."""
    return loadMCSamples(str(root), settings={"ignore_rows": burn_in})


def common_parameters(samples_a: Any, samples_b: Any) -> list[str]:
    """Sampled (non-derived) parameters present in both chains, in chain order."""
    names_b = {p.name for p in samples_b.getParamNames().names}
    return [
        p.name for p in samples_a.getParamNames().names if not p.isDerived and p.name in names_b
    ]


def compare(samples_a: Any, samples_b: Any, names: list[str]) -> list[ParameterShift]:
    """Mean and sigma of each parameter in both chains."""
    shifts = []
    for name in names:
        shifts.append(
            ParameterShift(
                name,
                float(samples_a.mean(name)),
                float(samples_b.mean(name)),
                float(samples_a.std(name)),
                float(samples_b.std(name)),
            )
        )
    return shifts


def triangle_plot(samples: list[Any], labels: list[str], names: list[str], path: Path) -> Path:
    """Triangle plot of the posteriors over ``names``."""
    plotter = plots.get_subplot_plotter(width_inch=9)
    for sample, label in zip(samples, labels, strict=True):
        sample.label = label
    plotter.triangle_plot(
        samples,
        names,
        filled=[True, False],
        legend_labels=labels,
        contour_colors=["tab:blue", "black"],
        contour_lws=[1.0, 1.5],
    )
    plotter.export(str(path))
    return path


def format_shifts(shifts: list[ParameterShift], label_a: str, label_b: str) -> str:
    """Plain-text table of the shifts."""
    lines = [
        f"{'parameter':<12}{'mean ' + label_a:>16}{'mean ' + label_b:>16}"
        f"{'shift/sigma':>13}{'sigma ratio':>13}"
    ]
    for s in shifts:
        lines.append(
            f"{s.name:<12}{s.mean_a:>16.6g}{s.mean_b:>16.6g}"
            f"{s.mean_shift_in_sigma:>13.3f}{s.sigma_ratio:>13.3f}"
        )
    return "\n".join(lines)
