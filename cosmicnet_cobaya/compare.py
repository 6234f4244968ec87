"""Agreement measures between two sets of CMB spectra."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def max_relative_differences(
    reference: Mapping[str, np.ndarray],
    other: Mapping[str, np.ndarray],
    l_min: int = 2,
    l_max: int | None = None,
) -> dict[str, float]:
    """Largest |other/reference - 1| per spectrum over l_min <= l <= l_max.

    TE crosses zero, so its difference is taken relative to sqrt(TT * EE).
    """
    result: dict[str, float] = {}
    for name in ("tt", "ee", "pp", "te"):
        if name not in reference or name not in other:
            continue
        top = len(reference[name]) - 1 if l_max is None else l_max
        window = slice(l_min, top + 1)
        ref = np.asarray(reference[name])[window]
        diff = np.asarray(other[name])[window] - ref
        if name == "te":
            scale = np.sqrt(
                np.asarray(reference["tt"])[window] * np.asarray(reference["ee"])[window]
            )
        else:
            scale = np.abs(ref)
        result[name] = float(np.max(np.abs(diff) / scale))
    return result
