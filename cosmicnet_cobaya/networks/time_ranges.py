"""Which tau slices a network serves: a range of tau / tau_rec.

A source may be served by several networks, each on its own range of
conformal time in units of the recombination time (e.g. ``t0`` on
[0, 1.5) and ``t0_late`` on [1.5, open)).  Late-time sources are hundreds of
times smaller than at recombination; a network of their own, with its own
output normalisation, keeps its absolute error proportionate.  Training
and inference select rows with the same function, :func:`rows_in_range`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

TauRange = tuple[float, float | None]
"""(low, high) in units of tau_rec; low <= tau / tau_rec < high, high None = open."""

FULL_RANGE: TauRange = (0.0, None)


def parse_tau_range(value: Any, where: str) -> TauRange:
    """Validate ``[low, high]`` (high null for open-ended) from YAML or JSON."""
    if value is None:
        return FULL_RANGE
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{where} must be [low, high] in units of tau_rec (high null for open)")
    low, high = value
    if not isinstance(low, int | float) or low < 0:
        raise ValueError(f"{where}: low end must be a number >= 0, got {low!r}")
    if high is not None and (not isinstance(high, int | float) or high <= low):
        raise ValueError(f"{where}: high end must be null or a number above {low}, got {high!r}")
    return float(low), None if high is None else float(high)


def rows_in_range(tau: np.ndarray, tau_rec: float, tau_range: TauRange) -> np.ndarray:
    """Boolean mask of the tau slices inside ``tau_range``."""
    ratio = np.asarray(tau, dtype=float) / float(tau_rec)
    low, high = tau_range
    mask = ratio >= low
    if high is not None:
        mask &= ratio < high
    return mask


def consecutive_rows(mask: np.ndarray) -> slice:
    """The rows of a non-empty :func:`rows_in_range` mask as one slice.

    The tau slices increase (``CosmologyFeatures`` checks), so the rows of a
    range are consecutive and a slice selects them without copies.
    """
    first, last = np.flatnonzero(mask)[[0, -1]]
    return slice(int(first), int(last) + 1)


def check_no_overlap(ranges: Mapping[str, TauRange]) -> None:
    """Raise ValueError when two ranges (network name -> range) overlap."""
    ordered: Sequence[tuple[str, TauRange]] = sorted(ranges.items(), key=lambda item: item[1][0])
    for (name, (_, high)), (next_name, (next_low, _)) in pairwise(ordered):
        if high is None or next_low < high - 1e-12:
            raise ValueError(
                f"networks {name} and {next_name} both serve tau/tau_rec = {next_low}: "
                "the ranges of one source must not overlap"
            )


def covers_all(ranges: Sequence[TauRange]) -> bool:
    """Whether the ranges follow each other from 0 to open without a gap."""
    edge: float | None = 0.0
    for low, high in sorted(ranges, key=lambda item: item[0]):
        if edge is None or abs(low - edge) > 1e-12:
            return False
        edge = high
    return edge is None
