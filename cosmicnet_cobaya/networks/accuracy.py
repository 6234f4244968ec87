"""Accuracy targets of a network set, and the typed report of one validation against them.

``cosmicnet validate`` builds an :class:`AccuracyReport` and records it in the
set's metadata; ClassNet reads it back and logs :meth:`AccuracyReport.describe`.
Both sides take the figures, their wording and their targets from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

L_MAX = 2508
"""Highest multipole of the Planck 2018 likelihoods, served by the shipped set."""
L_RANGE = (30, 2500)
"""Multipoles of the per-l CMB measures."""
TT_TOLERANCE = 3e-3
"""Relative lensed-TT error every multipole of :data:`L_RANGE` must stay within."""
PK_LIN_TOLERANCE = 5e-3
"""Relative linear P(k, z) error (k <= 1/Mpc, z <= 2)."""
PK_NL_TOLERANCE = 1e-2
"""Relative non-linear P(k, z) error (k <= 1/Mpc, z <= 2)."""


@dataclass(frozen=True)
class Figure:
    """One headline figure of a validation: its key, wording and target."""

    key: str
    wording: str
    number: str
    target: float
    larger_is_better: bool = False

    def met(self, value: float) -> bool:
        """Whether ``value`` reaches the target."""
        return value >= self.target if self.larger_is_better else value < self.target

    def words(self, value: float) -> str:
        """The figure in words."""
        return self.wording.format(self.number.format(value))

    def describe(self, value: float) -> str:
        """The figure in words, with its target and whether it is met."""
        relation = ">=" if self.larger_is_better else "<"
        verdict = "met" if self.met(value) else "MISSED"
        target = self.number.format(self.target)
        return f"{self.words(value)} (target {relation} {target}: {verdict})"


CMB_FIGURES: tuple[Figure, ...] = (
    Figure(
        "tt_fraction_within_0.3pct_l30_2500",
        "TT within 0.3% for {} of them",
        "{:.0%}",
        0.95,
        larger_is_better=True,
    ),
    Figure(
        "max_abs_error_in_planck_sigma",
        "largest binned error {} of the plik_lite error",
        "{:.3f}",
        0.05,
    ),
    Figure(
        "max_abs_error_in_per_l_planck_sigma",
        "largest per-l error {} of the Planck error",
        "{:.3f}",
        0.05,
    ),
    Figure("max_abs_shift_in_sigma", "largest Fisher shift {} sigma", "{:.3f}", 0.1),
)
"""The CMB figures a set must reach to be fit for chains (paper, section 4)."""

MATTER_FIGURES: tuple[Figure, ...] = (
    Figure(
        "pk_lin_fraction_within_0.5pct",
        "linear P(k, z) within 0.5% for {} of them",
        "{:.0%}",
        0.95,
        larger_is_better=True,
    ),
    Figure(
        "pk_nl_fraction_within_1pct",
        "non-linear P(k, z) within 1% for {} of them",
        "{:.0%}",
        0.95,
        larger_is_better=True,
    ),
    Figure("sigma8_max_abs_rel_error", "largest sigma8 error {}", "{:.1e}", 5e-4),
    Figure("S8_max_abs_rel_error", "largest S8 error {}", "{:.1e}", 5e-4),
)
"""The matter-power figures (k <= 1/Mpc, z <= 2)."""

FIGURES: dict[str, Figure] = {figure.key: figure for figure in (*CMB_FIGURES, *MATTER_FIGURES)}
_FRAME_KEYS = ("n_cosmologies", "n_failed", "settings", "targets", "meets_targets")


@dataclass(frozen=True)
class AccuracyReport:
    """A validation's headline figures against their targets (JSON: one flat mapping)."""

    n_cosmologies: int
    figures: dict[str, float]
    targets: dict[str, float]
    n_failed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    """Further entries of the recorded mapping (e.g. the median delta-chi2)."""

    @classmethod
    def from_figures(
        cls, summary: Mapping[str, Any], figures: tuple[Figure, ...], **details: Any
    ) -> AccuracyReport:
        """The report of ``summary``: every figure of ``figures`` it holds, with its target."""
        return cls(
            n_cosmologies=int(summary["n_cosmologies"]),
            n_failed=int(summary.get("n_failed", 0)),
            settings=dict(summary.get("settings", {})),
            figures={f.key: float(summary[f.key]) for f in figures if f.key in summary},
            targets={figure.key: figure.target for figure in figures},
            details=details,
        )

    @property
    def meets_targets(self) -> bool:
        """Every target the report has a figure for is met, and at least one figure exists."""
        checked = [key for key in self.targets if key in self.figures]
        return bool(checked) and all(
            replace(FIGURES[key], target=self.targets[key]).met(self.figures[key])
            for key in checked
        )

    def describe(self) -> str:
        """The figures in words, each with its target and whether it is met."""
        parts = []
        for key, value in self.figures.items():
            figure = FIGURES[key]
            if key in self.targets:
                parts.append(replace(figure, target=self.targets[key]).describe(value))
            else:
                parts.append(figure.words(value))
        if self.n_failed:
            parts.append(f"{self.n_failed} cosmologies on which CLASS failed")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping recorded in a set's metadata."""
        return {
            "n_cosmologies": self.n_cosmologies,
            "n_failed": self.n_failed,
            "settings": dict(self.settings),
            **self.figures,
            **self.details,
            "targets": dict(self.targets),
            "meets_targets": self.meets_targets,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccuracyReport:
        """Read a recorded mapping back (unknown entries are kept as details)."""
        figures = {key: float(data[key]) for key in FIGURES if key in data}
        details = {
            key: value
            for key, value in data.items()
            if key not in figures and key not in _FRAME_KEYS
        }
        return cls(
            n_cosmologies=int(data.get("n_cosmologies", 0)),
            n_failed=int(data.get("n_failed", 0)),
            settings=dict(data.get("settings", {})),
            figures=figures,
            targets=dict(data.get("targets", {})),
            details=details,
        )
